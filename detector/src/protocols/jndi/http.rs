//! Splitting a sample into what an application logs on its own: the request line, each
//! header line (folded lines joined to their header) and the body of an HTTP/1 request, or
//! the whole sample for any other protocol.

use std::ops::Range;

use super::{escape, MAX_HEADER_NAME_CHARS};

// === Parts of a request ===

/// A part of the sample an application would log on its own.
#[derive(Debug)]
pub(super) struct Part<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) location: String,
    /// The part runs to the end of the sample, so it may have been cut.
    pub(super) open_end: bool,
}

/// A line of the sample, without its line end.
#[derive(Debug)]
pub(super) struct Line {
    pub(super) text: Range<usize>,
    /// Where the next line starts.
    pub(super) next: usize,
    /// It ends with `\n`, rather than with the sample.
    pub(super) terminated: bool,
}

pub(super) fn next_line(sample: &[u8], start: usize) -> Option<Line> {
    let rest = sample.get(start..).filter(|rest| !rest.is_empty())?;
    let (end, next, terminated) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (start + at, start + at + 1, true),
        None => (sample.len(), sample.len(), false),
    };
    let end = if end > start && sample.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    };
    Some(Line {
        text: start..end,
        next,
        terminated,
    })
}

/// Splits an HTTP/1 request into its request line, header lines and body; anything else is
/// one part, `data`. A header's continuation line (obsolete line folding) is a part of its
/// own, under the header's name.
pub(super) fn parts(sample: &[u8]) -> Vec<Part<'_>> {
    let Some(first) = next_line(sample, 0) else {
        return Vec::new();
    };
    let line = |line: &Line| sample.get(line.text.clone()).unwrap_or_default();
    if !is_request_line(line(&first), first.terminated) {
        return vec![Part {
            bytes: sample,
            location: "data".to_owned(),
            open_end: true,
        }];
    }
    let mut parts = vec![Part {
        bytes: line(&first),
        location: "request-line".to_owned(),
        open_end: !first.terminated,
    }];
    header_parts(sample, first.next, &mut parts);
    parts
}

/// Splits a window from inside a request head: the line it starts in (whose header name
/// lies before the window) is a part of its own, `headers`, then each header line and
/// the body as in [`parts`].
pub(super) fn head_parts(sample: &[u8]) -> Vec<Part<'_>> {
    let Some(first) = next_line(sample, 0) else {
        return Vec::new();
    };
    let mut parts = vec![Part {
        bytes: sample.get(first.text.clone()).unwrap_or_default(),
        location: "headers".to_owned(),
        open_end: !first.terminated,
    }];
    header_parts(sample, first.next, &mut parts);
    parts
}

/// The header lines from `next` on, then the body, as parts.
fn header_parts<'a>(sample: &'a [u8], mut next: usize, parts: &mut Vec<Part<'a>>) {
    let line = |line: &Line| sample.get(line.text.clone()).unwrap_or_default();
    let mut header = "headers".to_owned();
    while let Some(current) = next_line(sample, next) {
        let text = line(&current);
        if text.is_empty() {
            if let Some(body) = sample.get(current.next..).filter(|body| !body.is_empty()) {
                parts.push(Part {
                    bytes: body,
                    location: "body".to_owned(),
                    open_end: true,
                });
            }
            break;
        }
        if !matches!(text.first(), Some(b' ' | b'\t')) {
            header = match text.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let name = String::from_utf8_lossy(text.get(..colon).unwrap_or_default());
                    format!("header:{}", escape(name.trim(), MAX_HEADER_NAME_CHARS))
                }
                None => "headers".to_owned(),
            };
        }
        parts.push(Part {
            bytes: text,
            location: header.clone(),
            open_end: !current.terminated,
        });
        next = current.next;
    }
}

/// `METHOD target HTTP/x.y` (RFC 9112 §3), the version possibly cut off with the line.
pub(super) fn is_request_line(line: &[u8], terminated: bool) -> bool {
    let mut words = line.split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let method_ok = (1..=20).contains(&method.len())
        && method
            .iter()
            .all(|b| b.is_ascii_uppercase() || matches!(b, b'-' | b'_'));
    let target_ok = matches!(target.first(), Some(b'/' | b'*'))
        || target
            .get(..4)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"http"));
    let version_ok = !terminated
        || line
            .rsplit(|&b| b == b' ')
            .next()
            .is_some_and(|v| v.starts_with(b"HTTP/"));
    method_ok && target_ok && version_ok
}
