//! Decoded views of a part: what an application may undo before it logs (URL encoding,
//! `\u` escapes, HTML entities), each decoded byte mapped back to where it was sent.

use super::substitute::{Techniques, OPAQUE_DOLLAR};
use super::MAX_DECODE_ROUNDS;

// === Decoded views of a part ===

/// A part, possibly decoded, as text.
#[derive(Debug)]
pub(super) struct View {
    pub(super) text: String,
    /// For each byte of `text`, and its end, the offset in the part it came from.
    pub(super) to_part: Vec<usize>,
    /// The decodings applied.
    pub(super) techniques: Techniques,
}

/// Bytes decoded from others.
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) bytes: Vec<u8>,
    /// For each byte, and the end, the offset of what it was decoded from.
    pub(super) from: Vec<usize>,
}

impl Decoded {
    pub(super) fn with_capacity(len: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(len),
            from: Vec::with_capacity(len + 1),
        }
    }

    pub(super) fn push(&mut self, byte: u8, from: usize) {
        self.bytes.push(byte);
        self.from.push(from);
    }

    pub(super) fn push_char(&mut self, c: char, from: usize) {
        let mut utf8 = [0; 4];
        for &byte in c.encode_utf8(&mut utf8).as_bytes() {
            self.push(byte, from);
        }
    }

    /// Ends the decoding of `len` bytes: `Some` if anything was decoded.
    pub(super) fn finish(mut self, len: usize, changed: bool) -> Option<Self> {
        self.from.push(len);
        changed.then_some(self)
    }

    /// Offsets in what `earlier` was decoded from.
    pub(super) fn through(mut self, earlier: &[usize]) -> Self {
        for from in &mut self.from {
            *from = earlier.get(*from).copied().unwrap_or(*from);
        }
        self
    }
}

pub(super) type Decoder = fn(&[u8]) -> Option<Decoded>;

/// The decodings an application may apply before it logs, each with its technique.
pub(super) const DECODERS: [(Decoder, Techniques); 3] = [
    (percent_decode, Techniques::URL_ENCODING),
    (unicode_unescape, Techniques::UNICODE_ESCAPE),
    (html_unescape, Techniques::HTML_ENTITY),
];

/// The part as sent; URL-decoded once, twice and three times; `\u`-unescaped;
/// HTML-entity-decoded; and all of these applied together until nothing changes. Only those
/// that differ and contain `${`.
pub(super) fn views(part: &[u8]) -> Vec<View> {
    let identity: Vec<usize> = (0..=part.len()).collect();
    let mut views = vec![View::new(part, &identity, Techniques::NONE)];

    let mut decoded = Decoded {
        bytes: part.to_vec(),
        from: identity.clone(),
    };
    for round in 0..MAX_DECODE_ROUNDS {
        let Some(next) = percent_decode(&decoded.bytes) else {
            break;
        };
        decoded = next.through(&decoded.from);
        let techniques = if round == 0 {
            Techniques::URL_ENCODING
        } else {
            Techniques::URL_ENCODING.union(Techniques::DOUBLE_URL_ENCODING)
        };
        views.push(View::new(&decoded.bytes, &decoded.from, techniques));
    }
    let others: [(Decoder, Techniques); 2] = [
        (unicode_unescape, Techniques::UNICODE_ESCAPE),
        (html_unescape, Techniques::HTML_ENTITY),
    ];
    for (decode, technique) in others {
        if let Some(decoded) = decode(part) {
            views.push(View::new(&decoded.bytes, &decoded.from, technique));
        }
    }

    let mut all = Decoded {
        bytes: part.to_vec(),
        from: identity,
    };
    let mut used = Techniques::NONE;
    for _ in 0..MAX_DECODE_ROUNDS {
        let mut changed = false;
        for (decode, technique) in DECODERS {
            if let Some(next) = decode(&all.bytes) {
                all = next.through(&all.from);
                if technique == Techniques::URL_ENCODING && used.contains(technique) {
                    used = used.union(Techniques::DOUBLE_URL_ENCODING);
                }
                used = used.union(technique);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let all = View::new(&all.bytes, &all.from, used);
    if !views.iter().any(|view| view.text == all.text) {
        views.push(all);
    }

    views.retain(|view| view.text.contains("${"));
    views
}

impl View {
    /// `bytes` as text, invalid UTF-8 and U+FDD0 replaced with U+FFFD; `from` maps `bytes`
    /// to the part.
    pub(super) fn new(bytes: &[u8], from: &[usize], techniques: Techniques) -> Self {
        let mut text = String::with_capacity(bytes.len());
        let mut to_part = Vec::with_capacity(bytes.len() + 1);
        let mut at = 0;
        let origin = |at: usize| from.get(at).copied().unwrap_or(0);
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                let shown = if c == OPAQUE_DOLLAR {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                };
                text.push(shown);
                to_part.extend(std::iter::repeat_n(origin(at), shown.len_utf8()));
                at += c.len_utf8();
            }
            if !chunk.invalid().is_empty() {
                text.push(char::REPLACEMENT_CHARACTER);
                to_part.extend(std::iter::repeat_n(
                    origin(at),
                    char::REPLACEMENT_CHARACTER.len_utf8(),
                ));
                at += chunk.invalid().len();
            }
        }
        to_part.push(origin(at));
        Self {
            text,
            to_part,
            techniques,
        }
    }
}

pub(super) fn hex_digit(byte: Option<&u8>) -> Option<u32> {
    char::from(*byte?).to_digit(16)
}

/// `%XX` (RFC 3986 §2.1), as servlet containers decode the query and form bodies.
pub(super) fn percent_decode(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'%') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(high), Some(low)) =
                (hex_digit(input.get(i + 1)), hex_digit(input.get(i + 2)))
            {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'), i);
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
}

pub(super) fn hex4(input: &[u8], at: usize) -> Option<u32> {
    (at..at + 4).try_fold(0, |value, i| Some(value * 16 + hex_digit(input.get(i))?))
}

/// Java and JSON escapes: `\uXXXX` (surrogate pairs joined, a lone one read as U+FFFD),
/// `\/` and `\\`.
pub(super) fn unicode_unescape(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'\\' {
            match input.get(i + 1) {
                Some(b'u') => {
                    if let Some(unit) = hex4(input, i + 2) {
                        let low = (input.get(i + 6..i + 8) == Some(b"\\u"))
                            .then(|| hex4(input, i + 8))
                            .flatten()
                            .filter(|low| (0xdc00..0xe000).contains(low));
                        let (c, len) = match low {
                            Some(low) if (0xd800..0xdc00).contains(&unit) => (
                                char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)),
                                12,
                            ),
                            _ => (char::from_u32(unit), 6),
                        };
                        out.push_char(c.unwrap_or(char::REPLACEMENT_CHARACTER), i);
                        i += len;
                        changed = true;
                        continue;
                    }
                }
                Some(&escaped @ (b'/' | b'\\')) => {
                    out.push(escaped, i);
                    i += 2;
                    changed = true;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
}

/// The character an HTML character reference at the start of `input` stands for, and its
/// length: `&#36;`, `&#x24;`, or one of the few named ones a lookup needs.
pub(super) fn entity(input: &[u8]) -> Option<(char, usize)> {
    let end = input.iter().take(12).position(|&b| b == b';')?;
    let body = input.get(1..end)?;
    let c = match body {
        [b'#', b'x' | b'X', hex @ ..] if (1..=6).contains(&hex.len()) => {
            u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16)
                .ok()
                .and_then(char::from_u32)?
        }
        [b'#', decimal @ ..]
            if (1..=7).contains(&decimal.len()) && decimal.iter().all(u8::is_ascii_digit) =>
        {
            std::str::from_utf8(decimal)
                .ok()?
                .parse()
                .ok()
                .and_then(char::from_u32)?
        }
        b"dollar" => '$',
        b"lbrace" | b"lcub" => '{',
        b"rbrace" | b"rcub" => '}',
        b"colon" => ':',
        b"sol" => '/',
        b"period" => '.',
        b"amp" => '&',
        _ => return None,
    };
    Some((c, end + 1))
}

/// HTML character references, as a templating layer may decode them.
pub(super) fn html_unescape(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'&') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'&' {
            if let Some((c, len)) = input.get(i..).and_then(entity) {
                out.push_char(c, i);
                i += len;
                changed = true;
                continue;
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
}
