//! From a byte offset in the policy text to what a person looks for: the line, the column and
//! the dotted key.
//!
//! The TOML parser reports an error's span but not the key it was reading (toml 0.8 keeps the
//! key path private), so the key is found by parsing the text a second time with `toml_edit`,
//! which keeps the span of every key and value, and picking the narrowest one around the
//! offset. `toml::Spanned` cannot do this: tables implied by a dotted header (`exec` in
//! `[[exec.allow]]`) have no span, and deserializing them as spanned fails.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// 1-based line of byte `offset` in `text`.
pub(super) fn line(text: &str, offset: usize) -> usize {
    line_column(text, offset).0
}

/// Dotted path (`exec.allow[0].programs`) of the innermost key whose name or value covers
/// `offset`, or `None` when the text is not valid TOML or the offset is outside every key.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = ImDocument::parse(text).ok()?;
    let mut finder = KeyFinder { offset, best: None };
    finder.table(doc.as_table(), "");
    finder.best.map(|(_, key)| key)
}

/// Walks the document, keeping the key path whose span around `offset` is narrowest.
struct KeyFinder {
    offset: usize,
    /// Width of the span and the key path.
    best: Option<(usize, String)>,
}

impl KeyFinder {
    fn offer(&mut self, span: Option<Range<usize>>, path: &str) {
        let Some(span) = span else { return };
        // An empty span (an error at the very end of a value) still points at its start.
        if !(span.contains(&self.offset) || span.start == self.offset) {
            return;
        }
        let width = span.len();
        if self.best.as_ref().is_none_or(|(w, _)| width < *w) {
            self.best = Some((width, path.to_owned()));
        }
    }

    fn table(&mut self, table: &Table, prefix: &str) {
        for (name, _) in table.iter() {
            if let Some((key, item)) = table.get_key_value(name) {
                let path = join(prefix, key.get());
                self.offer(key.span(), &path);
                self.item(item, &path);
            }
        }
    }

    fn item(&mut self, item: &Item, path: &str) {
        self.offer(item.span(), path);
        match item {
            Item::None => {}
            Item::Value(value) => self.value(value, path),
            Item::Table(table) => self.table(table, path),
            Item::ArrayOfTables(tables) => {
                for (i, table) in tables.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    self.offer(table.span(), &path);
                    self.table(table, &path);
                }
            }
        }
    }

    fn value(&mut self, value: &Value, path: &str) {
        self.offer(value.span(), path);
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    // A table in a list is named by its index, as `[[exec.allow]]` tables are;
                    // a plain value is reported as the list's key, as a person would name it.
                    if item.is_inline_table() {
                        self.value(item, &format!("{path}[{i}]"));
                    } else {
                        self.value(item, path);
                    }
                }
            }
            Value::InlineTable(table) => {
                for (name, _) in table.iter() {
                    if let Some((key, item)) = table.get_key_value(name) {
                        let path = join(path, key.get());
                        self.offer(key.span(), &path);
                        self.item(item, &path);
                    }
                }
            }
            Value::String(_)
            | Value::Integer(_)
            | Value::Float(_)
            | Value::Boolean(_)
            | Value::Datetime(_) => {}
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}
