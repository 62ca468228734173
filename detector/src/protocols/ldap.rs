//! LDAP requests (RFC 4511) as JNDI's LDAP provider sends them, in BER.
//!
//! A JNDI `lookup("ldap://host:port/cn=x,dc=y")` opens a connection, sends a bind (anonymous:
//! version 3, empty DN, empty simple password) and waits for the answer before it sends the
//! search for `cn=x,dc=y` (base object scope, filter `(objectClass=*)`). The kernel samples
//! only a socket's first payload, so a sample from the JDK holds the bind; the search shows up
//! only when something else sends it first. See `testdata/ldap_*.hex` for captured messages.

use std::fmt;

use super::Quoted;

/// The first LDAP message in a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapRequest {
    /// `messageID`: JNDI numbers the messages of a connection from 1.
    pub message_id: u32,
    /// What is asked.
    pub op: LdapOp,
    /// The message is longer than the sample: strings may be cut, and fields after the cut
    /// are missing.
    pub truncated: bool,
}

/// The `protocolOp` of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LdapOp {
    /// `BindRequest`. The credentials are never kept.
    Bind {
        /// Protocol version (JNDI sends 3 unless told otherwise).
        version: u8,
        /// The bind DN; empty for an anonymous bind.
        name: String,
        /// The `simple` (password) authentication choice; false for SASL, or when the sample
        /// ends before the choice.
        simple: bool,
    },
    /// `SearchRequest`.
    Search {
        /// `baseObject`: for a JNDI lookup, the DN in the URL.
        base_dn: String,
        /// `scope`: 0 base object, 1 single level, 2 whole subtree.
        scope: Option<u8>,
        /// The filter in the string form of RFC 4515, e.g. `(objectClass=*)`; bytes outside
        /// printable ASCII are escaped as `\xx`. `None` when cut or not decodable.
        filter: Option<String>,
        /// The attributes asked for (empty: all user attributes), as far as the sample goes.
        attributes: Vec<String>,
    },
    /// `ExtendedRequest`, e.g. StartTLS (`1.3.6.1.4.1.1466.20037`).
    Extended {
        /// `requestName`.
        oid: String,
    },
    /// `UnbindRequest`.
    Unbind,
    /// Any other request (modify, add, delete, modify DN, compare, abandon).
    Other {
        /// The BER identifier octet of the operation, e.g. `0x50` for abandon.
        tag: u8,
    },
}

// BER identifier octets (universal, and LDAP's application and context-specific ones).
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const SEQUENCE: u8 = 0x30;
const BIND_REQUEST: u8 = 0x60;
const UNBIND_REQUEST: u8 = 0x42;
const SEARCH_REQUEST: u8 = 0x63;
const EXTENDED_REQUEST: u8 = 0x77;
/// `AuthenticationChoice.simple` (`[0]`, primitive).
const AUTH_SIMPLE: u8 = 0x80;
/// `ExtendedRequest.requestName` (`[0]`, primitive).
const EXTENDED_NAME: u8 = 0x80;

/// Decodes the first LDAP message of `bytes` if it is a request. Returns what the sample
/// holds of a cut message (see [`LdapRequest::truncated`]); `None` for anything that is not
/// an LDAP request (responses included), or a request cut before its first field.
pub fn parse_request(bytes: &[u8]) -> Option<LdapRequest> {
    let message = Reader::new(bytes).next().filter(|e| e.tag == SEQUENCE)?;
    let mut fields = Reader::new(message.body);
    let message_id = fields
        .next()
        .filter(|e| e.tag == INTEGER)
        .and_then(small_uint)?;
    let op = fields.next()?;
    let op = match op.tag {
        BIND_REQUEST => bind(op.body)?,
        SEARCH_REQUEST => search(op.body)?,
        EXTENDED_REQUEST => LdapOp::Extended {
            oid: text(
                Reader::new(op.body)
                    .next()
                    .filter(|e| e.tag == EXTENDED_NAME)?
                    .body,
            ),
        },
        UNBIND_REQUEST => LdapOp::Unbind,
        tag if is_request(tag) => LdapOp::Other { tag },
        _ => return None,
    };
    Some(LdapRequest {
        message_id,
        op,
        truncated: message.cut,
    })
}

/// Whether an identifier octet is one of the request operations of RFC 4511 §4.2–4.14
/// (application class; the other application numbers are responses).
fn is_request(tag: u8) -> bool {
    tag & 0xc0 == 0x40 && matches!(tag & 0x1f, 0 | 2 | 3 | 6 | 8 | 10 | 12 | 14 | 16 | 23)
}

fn bind(body: &[u8]) -> Option<LdapOp> {
    let mut fields = Reader::new(body);
    let version = fields
        .next()
        .filter(|e| e.tag == INTEGER)
        .and_then(small_uint)
        .and_then(|v| u8::try_from(v).ok())?;
    let name = fields.next().filter(|e| e.tag == OCTET_STRING)?;
    // Only the choice is looked at: the password (or SASL credentials) is not ours to keep.
    let simple = fields.next().is_some_and(|e| e.tag == AUTH_SIMPLE);
    Some(LdapOp::Bind {
        version,
        name: text(name.body),
        simple,
    })
}

fn search(body: &[u8]) -> Option<LdapOp> {
    let mut fields = Reader::new(body);
    let base = fields.next().filter(|e| e.tag == OCTET_STRING)?;
    let mut scope = None;
    let mut filter = None;
    let mut attributes = Vec::new();
    // The sample may end anywhere after the base DN: keep what came before the cut.
    let _ = search_tail(&mut fields, &mut scope, &mut filter, &mut attributes);
    Some(LdapOp::Search {
        base_dn: text(base.body),
        scope,
        filter,
        attributes,
    })
}

/// The fields of a `SearchRequest` after `baseObject`, each set as it is decoded; `None` at
/// the first one that is missing, cut or malformed.
fn search_tail(
    fields: &mut Reader<'_>,
    scope: &mut Option<u8>,
    filter: &mut Option<String>,
    attributes: &mut Vec<String>,
) -> Option<()> {
    *scope = Some(enumerated(fields.next()?)?);
    let _deref_aliases = enumerated(fields.next()?)?;
    let _size_limit = fields.next().filter(|e| e.tag == INTEGER && !e.cut)?;
    let _time_limit = fields.next().filter(|e| e.tag == INTEGER && !e.cut)?;
    let _types_only = fields.next().filter(|e| e.tag == BOOLEAN && !e.cut)?;
    *filter = Some(render_filter(fields.next()?)?);
    let list = fields.next().filter(|e| e.tag == SEQUENCE)?;
    let mut names = Reader::new(list.body);
    while let Some(name) = names.next() {
        if name.tag != OCTET_STRING || name.cut {
            return None;
        }
        attributes.push(text(name.body));
    }
    Some(())
}

/// An LDAP string (UTF-8 by RFC 4511; anything else is replaced, not rejected).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `maxInt` of RFC 4511 §4.1.1: the largest message id.
const MAX_INT: u32 = 0x7fff_ffff;

/// A whole, non-negative INTEGER no larger than [`MAX_INT`].
fn small_uint(e: Element<'_>) -> Option<u32> {
    let first = *e.body.first()?;
    if e.cut || e.body.len() > 5 || first & 0x80 != 0 {
        return None;
    }
    let value = e.body.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    u32::try_from(value).ok().filter(|&v| v <= MAX_INT)
}

/// A whole one-octet ENUMERATED (search scope and alias dereferencing are 0–3).
fn enumerated(e: Element<'_>) -> Option<u8> {
    match e.body {
        [value] if e.tag == ENUMERATED && !e.cut => Some(*value),
        _ => None,
    }
}

// === filters ===

/// Filters nest; a sample cannot hold more than ~128 levels, but nothing needs more than a few.
const MAX_FILTER_DEPTH: usize = 32;

/// Renders a BER `Filter` in the string form of RFC 4515; `None` when it is cut or malformed.
fn render_filter(filter: Element<'_>) -> Option<String> {
    let mut out = String::new();
    filter_into(filter, &mut out, 0)?;
    Some(out)
}

fn filter_into(filter: Element<'_>, out: &mut String, depth: usize) -> Option<()> {
    if filter.cut || depth > MAX_FILTER_DEPTH {
        return None;
    }
    let mut parts = Reader::new(filter.body);
    match filter.tag {
        // and, or: SET OF Filter
        0xa0 | 0xa1 => {
            out.push_str(if filter.tag == 0xa0 { "(&" } else { "(|" });
            while let Some(child) = parts.next() {
                filter_into(child, out, depth + 1)?;
            }
            if !parts.is_empty() {
                return None;
            }
            out.push(')');
        }
        // not: one Filter (explicitly tagged)
        0xa2 => {
            out.push_str("(!");
            filter_into(parts.next()?, out, depth + 1)?;
            out.push(')');
        }
        // equalityMatch, greaterOrEqual, lessOrEqual, approxMatch: AttributeValueAssertion
        0xa3 | 0xa5 | 0xa6 | 0xa8 => {
            let attribute = whole_string(parts.next()?, OCTET_STRING)?;
            let value = whole_string(parts.next()?, OCTET_STRING)?;
            let op = match filter.tag {
                0xa3 => "=",
                0xa5 => ">=",
                0xa6 => "<=",
                _ => "~=",
            };
            out.push('(');
            escape_into(attribute, out);
            out.push_str(op);
            escape_into(value, out);
            out.push(')');
        }
        // substrings: type, SEQUENCE OF { initial [0] | any [1] | final [2] }
        0xa4 => {
            let attribute = whole_string(parts.next()?, OCTET_STRING)?;
            let list = parts.next().filter(|e| e.tag == SEQUENCE && !e.cut)?;
            out.push('(');
            escape_into(attribute, out);
            out.push('=');
            let mut substrings = Reader::new(list.body);
            let mut ended = false;
            let mut first = true;
            while let Some(part) = substrings.next() {
                if ended || part.cut {
                    return None;
                }
                match part.tag {
                    0x80 if first => escape_into(part.body, out),
                    0x81 => {
                        out.push('*');
                        escape_into(part.body, out);
                    }
                    0x82 => {
                        out.push('*');
                        escape_into(part.body, out);
                        ended = true;
                    }
                    _ => return None,
                }
                first = false;
            }
            if !substrings.is_empty() {
                return None;
            }
            if !ended {
                out.push('*');
            }
            out.push(')');
        }
        // present: the attribute description itself
        0x87 => {
            out.push('(');
            escape_into(filter.body, out);
            out.push_str("=*)");
        }
        // extensibleMatch: matchingRule [1]?, type [2]?, matchValue [3], dnAttributes [4]?
        0xa9 => {
            let (mut rule, mut attribute, mut value, mut dn) = (None, None, None, false);
            while let Some(part) = parts.next() {
                match part.tag {
                    0x81 => rule = Some(whole_string(part, 0x81)?),
                    0x82 => attribute = Some(whole_string(part, 0x82)?),
                    0x83 => value = Some(whole_string(part, 0x83)?),
                    0x84 => dn = part.body.iter().any(|&b| b != 0),
                    _ => return None,
                }
            }
            if !parts.is_empty() {
                return None;
            }
            out.push('(');
            if let Some(attribute) = attribute {
                escape_into(attribute, out);
            }
            if dn {
                out.push_str(":dn");
            }
            if let Some(rule) = rule {
                out.push(':');
                escape_into(rule, out);
            }
            out.push_str(":=");
            escape_into(value?, out);
            out.push(')');
        }
        _ => return None,
    }
    Some(())
}

fn whole_string(e: Element<'_>, tag: u8) -> Option<&[u8]> {
    (e.tag == tag && !e.cut).then_some(e.body)
}

/// Appends `bytes` as an RFC 4515 value: the filter metacharacters `*()\` and every byte
/// outside printable ASCII become `\xx`, so the result is also safe in a log line.
fn escape_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'*' | b'(' | b')' | b'\\' => out.push_str(&format!("\\{b:02x}")),
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:02x}")),
        }
    }
}

// === BER ===

/// One BER element. `body` is what the sample holds of its contents; `cut` says the contents
/// run on past the end of the sample (or of the enclosing element).
#[derive(Clone, Copy, Debug)]
struct Element<'a> {
    tag: u8,
    body: &'a [u8],
    cut: bool,
}

/// Reads BER elements one after the other.
#[derive(Debug)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Whether everything was read (false after a header that could not be decoded).
    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element; `None` at the end, or when its identifier and length octets are cut
    /// or are what LDAP never uses (RFC 4511 §5.1: high tag numbers, the indefinite length,
    /// lengths of more than 4 octets).
    fn next(&mut self) -> Option<Element<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let octets = usize::from(first & 0x7f);
            if octets == 0 || octets > 4 {
                return None;
            }
            let (len, after) = rest.split_at_checked(octets)?;
            rest = after;
            len.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        };
        let (body, after) = rest.split_at(len.min(rest.len()));
        self.rest = after;
        Some(Element {
            tag,
            body,
            cut: body.len() < len,
        })
    }
}

// === display ===

impl fmt::Display for LdapRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            LdapOp::Bind { name, simple, .. } => {
                write!(f, "bind dn={}", Quoted(name))?;
                if !simple && !self.truncated {
                    f.write_str(" (sasl)")?;
                }
            }
            LdapOp::Search {
                base_dn, filter, ..
            } => {
                write!(f, "search base={}", Quoted(base_dn))?;
                if let Some(filter) = filter {
                    write!(f, " filter={filter}")?;
                }
            }
            LdapOp::Extended { oid } => write!(f, "extended oid={}", Quoted(oid))?,
            LdapOp::Unbind => f.write_str("unbind")?,
            LdapOp::Other { tag } => match tag & 0x1f {
                6 => f.write_str("modify")?,
                8 => f.write_str("add")?,
                10 => f.write_str("delete")?,
                12 => f.write_str("modify-dn")?,
                14 => f.write_str("compare")?,
                16 => f.write_str("abandon")?,
                _ => write!(f, "request 0x{tag:02x}")?,
            },
        }
        if self.truncated {
            f.write_str(" (truncated)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BER element with a definite length in the shortest form.
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match body.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n <= 0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(body);
        out
    }

    fn message(id: u8, op: &[u8]) -> Vec<u8> {
        tlv(SEQUENCE, &[&tlv(INTEGER, &[id])[..], op].concat())
    }

    fn search_request(filter: &[u8]) -> Vec<u8> {
        let body = [
            &tlv(OCTET_STRING, b"dc=example")[..],
            &tlv(ENUMERATED, &[2]),
            &tlv(ENUMERATED, &[0]),
            &tlv(INTEGER, &[0]),
            &tlv(INTEGER, &[0]),
            &tlv(BOOLEAN, &[0]),
            filter,
            &tlv(
                SEQUENCE,
                &[tlv(OCTET_STRING, b"cn"), tlv(OCTET_STRING, b"mail")].concat(),
            ),
        ]
        .concat();
        message(7, &tlv(SEARCH_REQUEST, &body))
    }

    fn filter_of(filter: &[u8]) -> Option<String> {
        match parse_request(&search_request(filter))?.op {
            LdapOp::Search { filter, .. } => filter,
            op => panic!("not a search: {op:?}"),
        }
    }

    fn ava(tag: u8, attribute: &[u8], value: &[u8]) -> Vec<u8> {
        tlv(
            tag,
            &[tlv(OCTET_STRING, attribute), tlv(OCTET_STRING, value)].concat(),
        )
    }

    #[test]
    fn search_with_every_field() {
        let request =
            parse_request(&search_request(&tlv(0x87, b"objectClass"))).expect("a search request");
        assert_eq!(
            request,
            LdapRequest {
                message_id: 7,
                op: LdapOp::Search {
                    base_dn: "dc=example".into(),
                    scope: Some(2),
                    filter: Some("(objectClass=*)".into()),
                    attributes: vec!["cn".into(), "mail".into()],
                },
                truncated: false,
            }
        );
    }

    #[test]
    fn renders_every_kind_of_filter() {
        let eq = ava(0xa3, b"uid", b"jdoe");
        assert_eq!(filter_of(&eq).as_deref(), Some("(uid=jdoe)"));
        let ge = ava(0xa5, b"age", b"18");
        let le = ava(0xa6, b"age", b"65");
        let approx = ava(0xa8, b"sn", b"smith");
        let and = tlv(0xa0, &[ge.clone(), le.clone()].concat());
        assert_eq!(filter_of(&and).as_deref(), Some("(&(age>=18)(age<=65))"));
        let or = tlv(0xa1, &[eq.clone(), approx].concat());
        assert_eq!(filter_of(&or).as_deref(), Some("(|(uid=jdoe)(sn~=smith))"));
        let not = tlv(0xa2, &eq);
        assert_eq!(filter_of(&not).as_deref(), Some("(!(uid=jdoe))"));

        let subs = |parts: &[(u8, &[u8])]| {
            let list: Vec<u8> = parts.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
            tlv(
                0xa4,
                &[tlv(OCTET_STRING, b"cn"), tlv(SEQUENCE, &list)].concat(),
            )
        };
        let f = subs(&[(0x80, b"ab"), (0x81, b"cd"), (0x82, b"ef")]);
        assert_eq!(filter_of(&f).as_deref(), Some("(cn=ab*cd*ef)"));
        let f = subs(&[(0x81, b"x")]);
        assert_eq!(filter_of(&f).as_deref(), Some("(cn=*x*)"));
        let f = subs(&[(0x80, b"x")]);
        assert_eq!(filter_of(&f).as_deref(), Some("(cn=x*)"));
        let f = subs(&[(0x82, b"x")]);
        assert_eq!(filter_of(&f).as_deref(), Some("(cn=*x)"));
        // `initial` only first, nothing after `final`.
        assert_eq!(filter_of(&subs(&[(0x81, b"x"), (0x80, b"y")])), None);
        assert_eq!(filter_of(&subs(&[(0x82, b"x"), (0x81, b"y")])), None);

        let ext = tlv(
            0xa9,
            &[
                tlv(0x81, b"2.5.13.5"),
                tlv(0x82, b"cn"),
                tlv(0x83, b"Fred"),
                tlv(0x84, &[0xff]),
            ]
            .concat(),
        );
        assert_eq!(filter_of(&ext).as_deref(), Some("(cn:dn:2.5.13.5:=Fred)"));
    }

    #[test]
    fn filter_values_are_escaped() {
        let f = ava(0xa3, b"cn", b"a*(b)\\\0\n\xc3\xa9 z");
        assert_eq!(
            filter_of(&f).as_deref(),
            Some(r"(cn=a\2a\28b\29\5c\00\0a\c3\a9 z)")
        );
    }

    #[test]
    fn bad_filters_are_dropped_but_the_search_is_kept() {
        // An unknown filter choice, and a nesting deeper than anyone writes.
        assert_eq!(filter_of(&tlv(0xaa, b"")), None);
        let mut deep = tlv(0x87, b"cn");
        for _ in 0..40 {
            deep = tlv(0xa2, &deep);
        }
        assert_eq!(filter_of(&deep), None);
    }

    #[test]
    fn bind_keeps_the_dn_and_never_the_password() {
        let body = [
            &tlv(INTEGER, &[3])[..],
            &tlv(OCTET_STRING, b"cn=admin"),
            &tlv(AUTH_SIMPLE, b"hunter2"),
        ]
        .concat();
        let request = parse_request(&message(1, &tlv(BIND_REQUEST, &body))).expect("a bind");
        assert_eq!(
            request.op,
            LdapOp::Bind {
                version: 3,
                name: "cn=admin".into(),
                simple: true
            }
        );
        assert!(!format!("{request:?}{request}").contains("hunter2"));
        assert_eq!(request.to_string(), r#"bind dn="cn=admin""#);

        // SASL.
        let sasl = tlv(0xa3, &tlv(OCTET_STRING, b"EXTERNAL"));
        let body = [&tlv(INTEGER, &[3])[..], &tlv(OCTET_STRING, b""), &sasl].concat();
        let request = parse_request(&message(1, &tlv(BIND_REQUEST, &body))).expect("a bind");
        assert_eq!(request.to_string(), r#"bind dn="" (sasl)"#);
    }

    #[test]
    fn extended_unbind_and_other_requests() {
        let starttls = tlv(
            EXTENDED_REQUEST,
            &tlv(EXTENDED_NAME, b"1.3.6.1.4.1.1466.20037"),
        );
        let request = parse_request(&message(1, &starttls)).expect("an extended request");
        assert_eq!(
            request.op,
            LdapOp::Extended {
                oid: "1.3.6.1.4.1.1466.20037".into()
            }
        );
        assert_eq!(
            request.to_string(),
            r#"extended oid="1.3.6.1.4.1.1466.20037""#
        );
        let request = parse_request(&message(9, &tlv(UNBIND_REQUEST, b""))).expect("unbind");
        assert_eq!((request.message_id, request.op), (9, LdapOp::Unbind));
        let request = parse_request(&message(3, &tlv(0x4a, b"cn=x"))).expect("delete");
        assert_eq!(request.op, LdapOp::Other { tag: 0x4a });
        assert_eq!(request.to_string(), "delete");
    }

    #[test]
    fn responses_and_malformed_messages_are_not_requests() {
        // bindResponse, searchResEntry, searchResDone, extendedResponse.
        for tag in [0x61, 0x64, 0x65, 0x78] {
            assert_eq!(parse_request(&message(1, &tlv(tag, b""))), None, "{tag:#x}");
        }
        // Negative and over-long message ids.
        let op = tlv(UNBIND_REQUEST, b"");
        let negative = tlv(SEQUENCE, &[&tlv(INTEGER, &[0xff])[..], &op].concat());
        assert_eq!(parse_request(&negative), None);
        let long = tlv(
            SEQUENCE,
            &[&tlv(INTEGER, &[1, 0, 0, 0, 0, 0])[..], &op].concat(),
        );
        assert_eq!(parse_request(&long), None);
        let big = tlv(
            SEQUENCE,
            &[&tlv(INTEGER, &[0, 0x80, 0, 0, 0])[..], &op].concat(),
        );
        assert_eq!(parse_request(&big), None);
        // The indefinite length, a high tag number, a 5-octet length.
        assert_eq!(
            parse_request(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00]),
            None
        );
        assert_eq!(parse_request(&[0x3f, 0x01, 0x00]), None);
        assert_eq!(parse_request(&[0x30, 0x85, 0, 0, 0, 0, 5, 0x02]), None);
        assert_eq!(parse_request(b""), None);
    }

    #[test]
    fn long_form_lengths() {
        let mut dn = b"cn=".to_vec();
        dn.resize(300, b'z');
        let bind = [
            &tlv(INTEGER, &[3])[..],
            &tlv(OCTET_STRING, &dn),
            &tlv(AUTH_SIMPLE, b""),
        ]
        .concat();
        let bytes = message(2, &tlv(BIND_REQUEST, &bind));
        assert_eq!(&bytes[..2], &[0x30, 0x82]);
        let request = parse_request(&bytes).expect("a bind");
        assert!(
            matches!(request.op, LdapOp::Bind { ref name, simple: true, .. } if name.len() == 300)
        );
        // A cut keeps the start of the DN.
        let request = parse_request(&bytes[..100]).expect("a cut bind");
        assert!(request.truncated);
        assert!(
            matches!(request.op, LdapOp::Bind { ref name, simple: false, .. } if name.len() == 100 - 18)
        );
        assert!(request.to_string().ends_with("zzz\" (truncated)"));
    }

    #[test]
    fn display_escapes_what_the_client_sent() {
        let body = [
            &tlv(OCTET_STRING, "cn=\"x\"\n\u{202e}é".as_bytes())[..],
            &tlv(ENUMERATED, &[0]),
        ]
        .concat();
        let request = parse_request(&message(1, &tlv(SEARCH_REQUEST, &body))).expect("search");
        assert_eq!(
            request.to_string(),
            r#"search base="cn=\"x\"\u{a}\u{202e}é""#
        );
    }
}
