//! DNS queries (RFC 1035 §4.1): the question a JVM asks, from JNDI's `dns://` provider (TXT
//! by default, over UDP, and again over TCP when the answer is truncated) or from any name
//! lookup. Long names are how data is smuggled out over DNS, so a name cut by the end of
//! the sample is kept as far as it goes. See `testdata/dns_*.hex` for captured queries.

use std::fmt;

/// The question of a DNS query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    /// Transaction id.
    pub id: u16,
    /// The name asked about, dotted, in the case it was sent, without the final dot (`.` for
    /// the root). Bytes outside printable ASCII are written `\DDD` and a dot or backslash
    /// inside a label `\.` or `\\` (the presentation format of RFC 1035 §5.1).
    pub name: String,
    /// `QTYPE`; 0 (never sent) when the sample ends before it.
    pub qtype: u16,
    /// The mnemonic of `qtype`, e.g. `A`, `TXT`; see [`qtype_name`].
    pub qtype_name: &'static str,
    /// The sample ends inside the question: `name` is its start and `qtype` is unknown.
    pub truncated: bool,
}

/// Bytes of the DNS header.
const HEADER_LEN: usize = 12;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// The longest name on the wire, length octets and the root included (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// Decodes the question of a standard query: `QR` 0, opcode 0, no answers, and one question
/// (no server answers more, RFC 9619). `tcp` when `bytes` starts with the 2-byte length
/// prefix of DNS over TCP. A name cut by the end of `bytes` is returned as far as it goes
/// (see [`DnsQuery::truncated`]); `None` for anything else, including names that break the
/// limits of RFC 1035 or contain a compression pointer.
pub fn parse_query(bytes: &[u8], tcp: bool) -> Option<DnsQuery> {
    let message = if tcp {
        let (prefix, rest) = bytes.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*prefix));
        if len < HEADER_LEN {
            return None;
        }
        rest.get(..len).unwrap_or(rest)
    } else {
        bytes
    };
    let header = message.first_chunk::<HEADER_LEN>()?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let response = header[2] & 0x80 != 0;
    let opcode = (header[2] >> 3) & 0x0f;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    if response || opcode != 0 || questions != 1 || answers != 0 {
        return None;
    }
    let (name, end) = read_name(message)?;
    let qtype = end
        .and_then(|end| message.get(end..end + 2))
        .map(|t| u16::from_be_bytes([t[0], t[1]]));
    if name.is_empty() && qtype.is_none() {
        return None;
    }
    let qtype_value = qtype.unwrap_or(0);
    Some(DnsQuery {
        id,
        name: if name.is_empty() { ".".into() } else { name },
        qtype: qtype_value,
        qtype_name: qtype_name(qtype_value),
        truncated: qtype.is_none(),
    })
}

/// The question's name, and where it ends (`None` when `message` ends inside it).
///
/// The question is the first name of a message, so a compression pointer in it could only
/// point into the header or forward, never at an earlier name as RFC 1035 §4.1.4 requires:
/// one is rejected outright, which also rules out pointer loops.
fn read_name(message: &[u8]) -> Option<(String, Option<usize>)> {
    let mut name = String::new();
    let mut pos = HEADER_LEN;
    let mut wire_len = 0;
    loop {
        let Some(&len) = message.get(pos) else {
            return Some((name, None));
        };
        if len & 0xc0 != 0 {
            // 0xc0: a compression pointer; 0x40: the extended label type, which RFC 6891 §5
            // deprecates; 0x80: reserved (RFC 1035 §4.1.4).
            return None;
        }
        let len = usize::from(len);
        wire_len += 1 + len;
        if len > MAX_LABEL || wire_len > MAX_NAME {
            return None;
        }
        if len == 0 {
            return Some((name, Some(pos + 1)));
        }
        let label = message.get(pos + 1..).unwrap_or_default();
        let label = label.get(..len).unwrap_or(label);
        if !name.is_empty() {
            name.push('.');
        }
        push_label(&mut name, label);
        if label.len() < len {
            return Some((name, None));
        }
        pos += 1 + len;
    }
}

fn push_label(name: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                name.push('\\');
                name.push(char::from(b));
            }
            b'!'..=b'~' => name.push(char::from(b)),
            _ => name.push_str(&format!("\\{b:03}")),
        }
    }
}

/// The mnemonic of a query type (IANA "Resource Record (RR) TYPEs"), or `UNKNOWN` for types
/// not listed here.
pub fn qtype_name(qtype: u16) -> &'static str {
    match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        43 => "DS",
        46 => "RRSIG",
        48 => "DNSKEY",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => "UNKNOWN",
    }
}

impl fmt::Display for DnsQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.truncated {
            write!(f, "query ? {} (truncated)", self.name)
        } else if self.qtype_name == "UNKNOWN" {
            // The generic form of RFC 3597 §5.
            write!(f, "query TYPE{} {}", self.qtype, self.name)
        } else {
            write!(f, "query {} {}", self.qtype_name, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query with one question, RD set.
    fn query(labels: &[&[u8]], qtype: u16) -> Vec<u8> {
        let mut out = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
        out.extend(qtype.to_be_bytes());
        out.extend([0, 1]);
        out
    }

    #[test]
    fn udp_and_tcp() {
        let udp = query(&[b"Evil", b"example"], 1);
        let q = parse_query(&udp, false).expect("a query");
        assert_eq!(
            q,
            DnsQuery {
                id: 0xabcd,
                name: "Evil.example".into(),
                qtype: 1,
                qtype_name: "A",
                truncated: false,
            }
        );
        assert_eq!(q.to_string(), "query A Evil.example");
        let mut tcp = (udp.len() as u16).to_be_bytes().to_vec();
        tcp.extend(&udp);
        assert_eq!(parse_query(&tcp, true), Some(q.clone()));
        // The length prefix bounds the message; a short one is refused.
        tcp.extend(b"trailing junk");
        assert_eq!(parse_query(&tcp, true), Some(q));
        assert_eq!(parse_query(&[0, 11, 0xab, 0xcd], true), None);
    }

    #[test]
    fn unknown_types_root_and_escapes() {
        let q = parse_query(&query(&[], 65280), false).expect("a query");
        assert_eq!((q.name.as_str(), q.qtype_name), (".", "UNKNOWN"));
        assert_eq!(q.to_string(), "query TYPE65280 .");
        let q = parse_query(&query(&[b"a.b\\c d\xff"], 16), false).expect("a query");
        assert_eq!(q.to_string(), r"query TXT a\.b\\c\032d\255");
    }

    #[test]
    fn limits() {
        let l63 = [b'x'; 63];
        assert!(parse_query(&query(&[&l63], 1), false).is_some());
        let l64 = [b'x'; 64];
        assert_eq!(parse_query(&query(&[&l64], 1), false), None);
        // Labels of 63, 63, 63 and 61 bytes: 255 bytes on the wire with the root, the most.
        let long = query(&[&l63, &l63, &l63, &l63[..61]], 1);
        assert!(parse_query(&long, false).is_some());
        let too_long = query(&[&l63, &l63, &l63, &l63[..62]], 1);
        assert_eq!(parse_query(&too_long, false), None);
    }

    #[test]
    fn pointers_and_odd_label_types_are_rejected() {
        // A pointer to itself, to the header, forward, and a label then a pointer back.
        for tail in [
            &[0xc0, 12][..],
            &[0xc0, 0],
            &[0xc0, 20, 0, 0, 1, 0, 1, 1, b'a', 0],
            &[1, b'a', 0xc0, 12],
            &[0x40, 1],
            &[0x80, 1],
        ] {
            let mut bytes = query(&[], 1);
            bytes.truncate(HEADER_LEN);
            bytes.extend_from_slice(tail);
            assert_eq!(parse_query(&bytes, false), None, "{tail:?}");
        }
    }

    #[test]
    fn responses_and_other_opcodes_are_not_queries() {
        let mut bytes = query(&[b"a"], 1);
        bytes[2] |= 0x80;
        assert_eq!(parse_query(&bytes, false), None);
        let mut bytes = query(&[b"a"], 1);
        bytes[2] = 5 << 3; // UPDATE
        assert_eq!(parse_query(&bytes, false), None);
        let mut bytes = query(&[b"a"], 1);
        bytes[5] = 0; // no question
        assert_eq!(parse_query(&bytes, false), None);
        bytes[5] = 2; // two
        assert_eq!(parse_query(&bytes, false), None);
        let mut bytes = query(&[b"a"], 1);
        bytes[7] = 1; // an answer
        assert_eq!(parse_query(&bytes, false), None);
    }

    #[test]
    fn cut_names_are_kept() {
        let bytes = query(&[b"secret-data", b"evil", b"example"], 1);
        let q = parse_query(&bytes[..HEADER_LEN + 15], false).expect("a cut query");
        assert_eq!(
            (q.name.as_str(), q.truncated, q.qtype),
            ("secret-data.ev", true, 0)
        );
        assert_eq!(q.to_string(), "query ? secret-data.ev (truncated)");
        // Cut before the type.
        let q = parse_query(&bytes[..bytes.len() - 3], false).expect("a cut query");
        assert_eq!(
            (q.name.as_str(), q.truncated),
            ("secret-data.evil.example", true)
        );
        // Nothing of the name at all.
        assert_eq!(parse_query(&bytes[..HEADER_LEN + 1], false), None);
    }
}
