//! The bodies of the fuzz targets: one function per parser that reads untrusted bytes, called
//! with what the fuzzer makes up by the libFuzzer targets in `fuzz/fuzz_targets/` and, in the
//! unit tests below, with every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! (see docs/development.md, "Fuzzing"). Each body calls the entry point the daemon calls on
//! those bytes and asserts what must hold of its result, not only that it returns: a panic
//! here is a bug the fuzzer reports.
//!
//! Compiled for the unit tests and with the `fuzz` feature (the fuzz crate's); never in the
//! daemon.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use detector_common as kernel;

use crate::{
    daemon,
    decode::decode,
    engine::{Engine, Record},
    events::{Inbound, InboundKind},
    policy::Policy,
    protocols::{self, dns, jndi, jrmp, ldap},
    rules::inbound::{find_jndi_in, Windows, MAX_JOINED},
    sensors::{encode, Scope},
};

/// A target's body: any bytes in, a panic if something that must hold does not.
pub type Body = fn(&[u8]);

/// Every target, by the name of its libFuzzer target (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[(&str, Body)] = &[
    ("decode", decode_event),
    ("jndi", jndi_find),
    ("deobfuscate", deobfuscate),
    ("ldap", ldap),
    ("jrmp", jrmp),
    ("dns", dns),
    ("inbound", inbound),
    ("policy", policy),
    ("record", record),
];

/// A ring-buffer record (`decode::decode`, on every record the kernel delivers). A decoded
/// event must survive the trip through a `--record` line unchanged, as `replay` reads it.
pub fn decode_event(data: &[u8]) {
    match decode(data) {
        Ok(event) => {
            let record = Record {
                boot_epoch_ns: 1,
                seeded: false,
                event,
            };
            let line = serde_json::to_string(&record).expect("a decoded event serializes");
            let back: Record = serde_json::from_str(&line).expect("a recorded event parses");
            assert_eq!(back, record, "recorded as {line}");
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

/// The lookups in what a JVM was sent (`jndi::find_jndi` and, for a window inside a request
/// head, `find_jndi_in_head`): the HTTP request splitting, the decoding rounds and the
/// substitution. Findings are bounded in number and size and safe for a log line.
pub fn jndi_find(data: &[u8]) {
    for findings in [jndi::find_jndi(data), jndi::find_jndi_in_head(data)] {
        check_findings(&findings);
    }
}

fn check_findings(findings: &[jndi::JndiFinding]) {
    assert!(findings.len() <= jndi::MAX_FINDINGS, "{findings:?}");
    for f in findings {
        // An escaped character takes at most 10 (`\u{10ffff}`); `...` marks a cut.
        assert!(
            f.raw.chars().count() <= 10 * jndi::MAX_RAW_CHARS + 3,
            "{f:?}"
        );
        for field in [&f.normalized, &f.target] {
            assert!(
                field.chars().count() <= 10 * jndi::MAX_FIELD_CHARS + 3,
                "{f:?}"
            );
        }
        for field in [&f.raw, &f.normalized, &f.target, &f.scheme, &f.location] {
            assert_line_safe(field);
        }
        assert!(
            f.scheme.is_empty() || f.normalized.starts_with("${jndi:"),
            "{f:?}"
        );
        assert!(
            f.scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
            "{f:?}"
        );
    }
}

/// `jndi::deobfuscate` on text: Log4j's substitution replayed, within its depth and work
/// limits, so the output is bounded whatever the input.
pub fn deobfuscate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let out = jndi::deobfuscate(&text);
    // Text is scanned once and values are charged to the budget; `$` may be written as the
    // 3-byte placeholder while resolving, then restored.
    let bound = 3 * text.len() + jndi::WORK_BUDGET;
    assert!(
        out.len() <= bound,
        "{} bytes from {}",
        out.len(),
        text.len()
    );
}

/// A payload sample the kernel classified as LDAP (`protocols::indicator`, for an alert).
pub fn ldap(data: &[u8]) {
    let parsed = ldap::parse_request(data);
    let indicator = protocols::indicator(kernel::PROTO_LDAP, data, false);
    assert_eq!(indicator, parsed.map(|r| r.to_string()));
    if let Some(line) = indicator {
        assert_line_safe(&line);
    }
}

/// A payload sample the kernel classified as Java RMI (the JRMP header, and the call after it).
pub fn jrmp(data: &[u8]) {
    let header = jrmp::parse_header(data);
    if let Some(header) = &header {
        assert!(data.starts_with(&jrmp::MAGIC));
        assert_line_safe(&header.to_string());
    }
    if let Some(call) = jrmp::parse_call(data) {
        let _ = call.is_registry_lookup();
    }
    let indicator = protocols::indicator(kernel::PROTO_RMI, data, false);
    assert_eq!(indicator, header.map(|h| h.to_string()));
}

/// A payload sample the kernel classified as DNS, over UDP and over TCP (length-prefixed).
pub fn dns(data: &[u8]) {
    for udp in [true, false] {
        let Some(query) = dns::parse_query(data, !udp) else {
            continue;
        };
        // Presentation format: printable ASCII only, each wire byte at most 4 (`\DDD`).
        assert!(
            query.name.bytes().all(|b| b.is_ascii_graphic()),
            "{query:?}"
        );
        assert!(query.name.len() <= 4 * 255, "{query:?}");
        let line = protocols::indicator(kernel::PROTO_DNS, data, udp).expect("parsed above");
        assert_line_safe(&line);
    }
}

/// Probe windows of requests, joined per connection (`rules::inbound::Windows`), then judged
/// (`find_jndi_in`), as `inbound::evaluate` does. The input is a sequence of windows, each
/// a 9-byte header: connection (1 byte), request (1), offset in the head (u32, little
/// endian), cut (1), sample length (u16, little endian); then the sample.
pub fn inbound(data: &[u8]) {
    let mut windows = Windows::default();
    let mut rest = data;
    while let Some((header, tail)) = rest.split_first_chunk::<9>() {
        let [cookie, request, o0, o1, o2, o3, cut, l0, l1] = *header;
        let len = usize::from(u16::from_le_bytes([l0, l1])).min(tail.len());
        let (sample, tail) = tail.split_at(len);
        rest = tail;
        let event = Inbound {
            time_ns: 0,
            kind: InboundKind::Probe,
            lineage: None,
            tgid: 1,
            cgroup_id: 1,
            cookie: u64::from(cookie),
            remote: IpAddr::V4(Ipv4Addr::LOCALHOST),
            remote_port: 40_000,
            local_port: 8080,
            blocked: false,
            match_at: 0,
            offset: u32::from_le_bytes([o0, o1, o2, o3]),
            request: u32::from(request),
            cut: cut & 1 != 0,
            continued: false,
            sample: sample.to_vec(),
        };
        let (text, offset) = windows.join(&event);
        assert!(text.len() <= MAX_JOINED.max(sample.len()));
        assert!(
            offset as usize + text.len() >= event.offset as usize,
            "the joined text ends before the sample starts"
        );
        check_findings(&find_jndi_in(text, offset, event.cut));
    }
}

/// A policy file (`Policy::from_toml`, as `detector run --config` and a reload read it). A
/// policy that validates validates again to the same, and fits the kernel maps it is loaded
/// into.
pub fn policy(data: &[u8]) {
    // `Policy::load` reads the file as UTF-8: other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz.toml");
    let policy = match Policy::from_toml(text, origin) {
        Ok(policy) => policy,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    let again = Policy::from_toml(text, origin).expect("a valid policy validates again");
    // `dns.entropy_bits` is a float: compare what is not, and its bits.
    assert_eq!(
        format!("{again:?}"),
        format!("{policy:?}"),
        "the same text gave two policies"
    );
    let _ = policy.summary();
    let scope = Scope {
        dir: "/sys/fs/cgroup".into(),
        path: "/".to_owned(),
        id: 1,
        level: 0,
        mount: "/sys/fs/cgroup".into(),
    };
    let _ = encode::config(&policy, &scope);
    let _ = encode::PolicyMaps::of(&policy);
    encode::net_entries(&policy, 0, None).expect("a validated policy fits NET_ALLOW");
    for app in policy.egress.allow.iter().filter_map(|r| r.app.as_deref()) {
        encode::net_entries(&policy, 1, Some(app))
            .expect("a validated policy fits NET_ALLOW for each app");
        let _ = encode::app_programs(&policy, app);
    }
    for sink in &policy.sinks {
        let _ = sink.delivery(&policy.delivery.defaults);
    }
}

/// A `--record` file (`daemon::replay_line`, one line at a time, through one engine with the
/// built-in policy), as `detector replay` reads it. A line that parses re-serializes to the
/// same record, and every alert it raises serializes.
pub fn record(data: &[u8]) {
    // `replay` reads lines of UTF-8: other bytes are an error before any parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut engine = Engine::new(
        Policy::builtin(),
        vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))],
        "fuzz",
    );
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Ok(alerts) = daemon::replay_line(&mut engine, "fuzz", line) else {
            assert!(serde_json::from_str::<Record>(line).is_err());
            continue;
        };
        let record: Record = serde_json::from_str(line).expect("replayed above");
        let again = serde_json::to_string(&record).expect("a record serializes");
        let back: Record = serde_json::from_str(&again).expect("a written record parses");
        assert_eq!(back, record, "{line} written as {again}");
        for alert in alerts {
            serde_json::to_string(&alert).expect("an alert serializes");
        }
    }
}

/// `text` can go in a log line as it is: no line breaks, no other control characters.
fn assert_line_safe(text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
        "not safe for a log line: {text:?}"
    );
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeSet,
        fs,
        path::{Path, PathBuf},
    };

    use super::TARGETS;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    /// The files directly in `dir`, sorted; none when it does not exist.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("reading a directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    }

    /// Every crash the fuzzer found (`fuzz/regressions/<target>/`) and every seed
    /// (`fuzz/corpus/<target>/`), through the target's body: none may panic again.
    #[test]
    fn regressions_and_seeds_pass() {
        let mut ran = 0;
        for (name, body) in TARGETS {
            for kind in ["regressions", "corpus"] {
                for file in files(&fuzz_dir().join(kind).join(name)) {
                    let data = fs::read(&file).expect("reading an input");
                    let result = std::panic::catch_unwind(|| body(&data));
                    assert!(result.is_ok(), "{} panics again", file.display());
                    ran += 1;
                }
            }
        }
        assert!(ran > 0, "no input found under {}", fuzz_dir().display());
    }

    /// Each libFuzzer target has a body here and seeds; each body has a libFuzzer target.
    #[test]
    fn every_target_has_a_fuzz_target_and_seeds() {
        let on_disk: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets"))
            .iter()
            .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
            .collect();
        let here: BTreeSet<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(on_disk, here);
        for name in &here {
            assert!(
                !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
                "no seeds for {name}"
            );
        }
    }
}
