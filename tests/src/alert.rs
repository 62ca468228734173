//! Reading and checking alert records against the contract's schema (see `docs/alerts.md` and
//! `docs/contract.md`): `jvm_shell_spawn` and the egress rules.
//!
//! Accessors return `None`/empty on a missing field so they can be used in predicates; the
//! `assert_*` functions fail with the whole alert in the message.

use std::path::Path;

use serde_json::Value;

use crate::{
    Detector, JavaProgram, ProgramRun, ScratchDir, TestCgroup, ALERT_TIMEOUT, SETTLE_TIME,
};

/// The rule this slice of the detector raises for a JVM (or its descendant) exec'ing a shell,
/// interpreter, downloader, or anything from a writable directory or a memfd.
pub const SHELL_SPAWN: &str = "jvm_shell_spawn";

/// Outbound LDAP from a JVM, recognised by port or by payload (severity high).
pub const LDAP_EGRESS: &str = "jvm_ldap_egress";

/// Outbound RMI (JRMP) from a JVM, recognised by port or by payload (severity high).
pub const RMI_EGRESS: &str = "jvm_rmi_egress";

/// A suspicious DNS query from a JVM: a JNDI-driven lookup to a server that is not a
/// configured resolver, or a query name carrying a high-entropy or secret-looking label
/// (severity high).
pub const DNS_EXFIL: &str = "jvm_dns_exfil";

/// An outbound connect from a JVM outside the egress allowlist (severity medium).
pub const UNEXPECTED_EGRESS: &str = "jvm_unexpected_egress";

/// The `severity` of each egress rule.
pub fn egress_severity(rule: &str) -> &'static str {
    match rule {
        UNEXPECTED_EGRESS => "medium",
        _ => "high",
    }
}

/// The values of a `jvm_shell_spawn` alert's `class`.
pub const CLASSES: [&str; 5] = [
    "shell",
    "interpreter",
    "downloader",
    "writable_dir",
    "memfd",
];

/// Basenames a `/bin/sh` may resolve to.
const SHELLS: [&str; 3] = ["sh", "dash", "bash"];

pub fn rule(alert: &Value) -> Option<&str> {
    alert.get("rule")?.as_str()
}

pub fn is_shell_spawn(alert: &Value) -> bool {
    rule(alert) == Some(SHELL_SPAWN)
}

/// `class` of a `jvm_shell_spawn` alert.
pub fn class(alert: &Value) -> Option<&str> {
    alert.get("class")?.as_str()
}

pub fn jvm_pid(alert: &Value) -> Option<u64> {
    alert.pointer("/jvm/pid")?.as_u64()
}

pub fn process_pid(alert: &Value) -> Option<u64> {
    alert.pointer("/process/pid")?.as_u64()
}

/// `process.exe`, or `""` when missing.
pub fn process_exe(alert: &Value) -> &str {
    alert
        .pointer("/process/exe")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `process.argv`, or empty when missing.
pub fn process_argv(alert: &Value) -> Vec<&str> {
    string_array(alert.pointer("/process/argv"))
}

/// The pids in `ancestry`, nearest ancestor first.
pub fn ancestry_pids(alert: &Value) -> Vec<u64> {
    alert
        .get("ancestry")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.get("pid")?.as_u64()).collect())
        .unwrap_or_default()
}

/// A `jvm_shell_spawn` alert attributed to the JVM with this pid.
pub fn shell_spawn_from(jvm: u64) -> impl Fn(&Value) -> bool {
    rule_from(SHELL_SPAWN, jvm)
}

/// An alert of `rule` attributed to the JVM with this pid.
pub fn rule_from(rule_name: &'static str, jvm: u64) -> impl Fn(&Value) -> bool {
    move |alert| rule(alert) == Some(rule_name) && jvm_pid(alert) == Some(jvm)
}

/// `action`.
pub fn action(alert: &Value) -> Option<&str> {
    alert.get("action")?.as_str()
}

/// A string field of the `network` object (`transport`, `dst_ip`, `protocol`, ...).
pub fn network_str<'a>(alert: &'a Value, key: &str) -> Option<&'a str> {
    alert.get("network")?.get(key)?.as_str()
}

/// `network.dst_port`.
pub fn dst_port(alert: &Value) -> Option<u64> {
    alert.pointer("/network/dst_port")?.as_u64()
}

/// Whether `process.exe` or any `process.argv` element contains `needle`.
pub fn process_mentions(alert: &Value, needle: &str) -> bool {
    process_exe(alert).contains(needle) || process_argv(alert).iter().any(|a| a.contains(needle))
}

/// Waits for one alert matching each of `preds`, listens [`SETTLE_TIME`] longer, and asserts
/// those are all the alerts the daemon raised (one per predicate). Returns them in the order
/// of `preds`.
pub fn expect_only_alerts(detector: &Detector, preds: &[&dyn Fn(&Value) -> bool]) -> Vec<Value> {
    for pred in preds {
        detector.wait_for_alerts(pred, 1, ALERT_TIMEOUT);
    }
    let alerts = detector.alerts_after(SETTLE_TIME);
    let found: Vec<Value> = preds
        .iter()
        .filter_map(|pred| alerts.iter().find(|a| pred(a)).cloned())
        .collect();
    assert!(
        alerts.len() == preds.len() && found.len() == preds.len(),
        "expected exactly {} alerts, the ones this test caused; the detector raised {}:\n{}",
        preds.len(),
        alerts.len(),
        detector.logs()
    );
    found
}

/// Waits for the alert `pred` picks out, listens [`SETTLE_TIME`] longer, and asserts it is the
/// only alert of any rule the daemon raised. Returns it.
///
/// For negative scenarios `pred` picks out the marker that ran after them: the marker's alert
/// shows the detector was watching, so the absence of any other alert means something.
pub fn expect_only_alert(detector: &Detector, pred: impl Fn(&Value) -> bool) -> Value {
    detector.wait_for_alerts(&pred, 1, ALERT_TIMEOUT);
    let mut alerts = detector.alerts_after(SETTLE_TIME);
    assert!(
        alerts.len() == 1 && pred(&alerts[0]),
        "expected exactly one alert, the one this test caused; the detector raised {}:\n{}",
        alerts.len(),
        detector.logs()
    );
    alerts.remove(0)
}

/// Checks every field the contract gives a `jvm_shell_spawn` alert, plus `action`.
pub fn assert_shell_spawn_alert(alert: &Value, action: &str) {
    let fail = |what: &str| -> ! { panic!("{what} in alert:\n{}", pretty(alert)) };

    assert_envelope(alert, SHELL_SPAWN, &["critical", "high"], action);
    if !class(alert).is_some_and(|c| CLASSES.contains(&c)) {
        fail(&format!("`class` is not one of {CLASSES:?}"));
    }
    assert_process_object(alert, "process", true);
    assert_process_object(alert, "jvm", false);
    let Some(ancestry) = alert.get("ancestry").and_then(Value::as_array) else {
        fail("`ancestry` is not an array");
    };
    let well_formed = |e: &Value| {
        e.get("pid").is_some_and(Value::is_u64) && e.get("exe").is_some_and(Value::is_string)
    };
    if !ancestry.iter().all(well_formed) {
        fail("an `ancestry` entry is not {pid, exe}");
    }
}

/// Checks the fields the contract gives every egress alert (`jvm_ldap_egress`,
/// `jvm_rmi_egress`, `jvm_dns_exfil`, `jvm_unexpected_egress`): the common ones, `rule`, the
/// rule's `severity`, `action`, a well-formed `jvm` (the JVM made the connection) and a
/// `network` object whose keys have the contract's types and values. `process`, `ancestry`
/// and `container` are checked only when present.
pub fn assert_egress_alert(alert: &Value, rule_name: &str, action: &str) {
    let fail = |what: &str| -> ! { panic!("{what} in alert:\n{}", pretty(alert)) };

    assert_envelope(alert, rule_name, &[egress_severity(rule_name)], action);
    assert_process_object(alert, "jvm", false);
    if alert.get("process").is_some() {
        assert_process_object(alert, "process", false);
    }
    if alert
        .get("ancestry")
        .is_some_and(|a| !a.as_array().is_some_and(|a| a.iter().all(Value::is_object)))
    {
        fail("`ancestry` is present but not an array of objects");
    }
    let Some(network) = alert.get("network").and_then(Value::as_object) else {
        fail("`network` is not an object");
    };
    let one_of = |key: &str, allowed: &[&str], required: bool| match network.get(key) {
        None | Some(Value::Null) if !required => {}
        Some(Value::String(v)) if allowed.is_empty() || allowed.contains(&v.as_str()) => {}
        _ => fail(&format!(
            "`network.{key}` is not {}{allowed:?}",
            if required { "" } else { "absent or one of " }
        )),
    };
    one_of("transport", &["tcp", "udp"], true);
    one_of("dst_ip", &[], true);
    one_of("protocol", &["ldap", "rmi", "dns"], false);
    one_of("recognised_by", &["port", "payload"], false);
    one_of("indicator", &[], false);
    one_of("dns_name", &[], false);
    if network
        .get("dst_ip")
        .and_then(Value::as_str)
        .is_none_or(|ip| ip.parse::<std::net::IpAddr>().is_err())
    {
        fail("`network.dst_ip` is not an IP address");
    }
    if network
        .get("dst_port")
        .and_then(Value::as_u64)
        .is_none_or(|p| p == 0 || p > 65535)
    {
        fail("`network.dst_port` is not a port number");
    }
    if network.get("protocol").is_some_and(Value::is_string)
        != network.get("recognised_by").is_some_and(Value::is_string)
    {
        fail("`network.recognised_by` must be present exactly when `network.protocol` is");
    }
}

/// The destination and classification an egress alert's `network` should carry.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// `"tcp"` or `"udp"`.
    pub transport: &'a str,
    /// `"127.0.0.1"`, `"::1"` (IPv4-mapped addresses are shown as IPv4).
    pub dst_ip: &'a str,
    pub dst_port: u16,
    /// `"ldap"`, `"rmi"`, `"dns"`; `None`: the key must be absent.
    pub protocol: Option<&'a str>,
    /// `"port"` or `"payload"`; `None`: the key must be absent.
    pub recognised_by: Option<&'a str>,
}

/// Checks `network.transport`, `dst_ip`, `dst_port`, `protocol` and `recognised_by` against
/// `expected` (an absent `protocol`/`recognised_by` is expected as `None`).
pub fn assert_network(alert: &Value, expected: &Network<'_>) {
    let actual = (
        network_str(alert, "transport"),
        network_str(alert, "dst_ip"),
        dst_port(alert),
        network_str(alert, "protocol"),
        network_str(alert, "recognised_by"),
    );
    let wanted = (
        Some(expected.transport),
        Some(expected.dst_ip),
        Some(u64::from(expected.dst_port)),
        expected.protocol,
        expected.recognised_by,
    );
    assert_eq!(
        actual,
        wanted,
        "`network` (transport, dst_ip, dst_port, protocol, recognised_by) is not {expected:?}:\n{}",
        pretty(alert)
    );
}

/// `network.dns_name` without a trailing dot, lower-cased: DNS names compare case-insensitively.
pub fn dns_name(alert: &Value) -> Option<String> {
    network_str(alert, "dns_name").map(|n| n.trim_end_matches('.').to_ascii_lowercase())
}

/// Checks `schema`, `time`, `host`, `incident_id`, `summary`, `rule`, `severity` (one of
/// `severities`), `action` and, if present, `container`.
fn assert_envelope(alert: &Value, rule_name: &str, severities: &[&str], action: &str) {
    let fail = |what: &str| -> ! { panic!("{what} in alert:\n{}", pretty(alert)) };

    if alert.get("schema").and_then(Value::as_str) != Some("detector.alert/v1") {
        fail("`schema` is not \"detector.alert/v1\"");
    }
    match alert.get("time").and_then(Value::as_str) {
        Some(time) if is_rfc3339(time) => {}
        _ => fail("`time` is not an RFC 3339 timestamp"),
    }
    for key in ["host", "incident_id", "summary"] {
        if alert
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            fail(&format!("`{key}` is not a non-empty string"));
        }
    }
    if rule(alert) != Some(rule_name) {
        fail(&format!("`rule` is not {rule_name:?}"));
    }
    if !alert
        .get("severity")
        .and_then(Value::as_str)
        .is_some_and(|s| severities.contains(&s))
    {
        fail(&format!("`severity` is not one of {severities:?}"));
    }
    if alert.get("action").and_then(Value::as_str) != Some(action) {
        fail(&format!("`action` is not {action:?}"));
    }
    if alert.get("container").is_some_and(|c| !c.is_object()) {
        fail("`container` is present but not an object");
    }
}

/// Checks that `alert[key]` is a process object: positive `pid`, `start_time_ns`, non-empty
/// `exe`, `argv` of strings and, `with_uid`, a `uid`.
fn assert_process_object(alert: &Value, key: &str, with_uid: bool) {
    let fail = |what: &str| -> ! { panic!("{what} in alert:\n{}", pretty(alert)) };

    let Some(p) = alert.get(key).and_then(Value::as_object) else {
        fail(&format!("`{key}` is not an object"));
    };
    if p.get("pid")
        .and_then(Value::as_u64)
        .is_none_or(|pid| pid == 0)
    {
        fail(&format!("`{key}.pid` is not a positive integer"));
    }
    if p.get("start_time_ns").and_then(Value::as_u64).is_none() {
        fail(&format!("`{key}.start_time_ns` is not an unsigned integer"));
    }
    if p.get("exe")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        fail(&format!("`{key}.exe` is not a non-empty string"));
    }
    if !p
        .get("argv")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().all(Value::is_string))
    {
        fail(&format!("`{key}.argv` is not an array of strings"));
    }
    if with_uid && p.get("uid").and_then(Value::as_u64).is_none() {
        fail(&format!("`{key}.uid` is not an unsigned integer"));
    }
}

/// Checks that the alert names the JVM of `run` (a `tests/java` program): `jvm.pid` is the pid
/// it printed, `jvm.exe` is a `java` binary and `jvm.argv` names the scenario `class`; and that
/// the offending process ran with this test's uid.
pub fn assert_from_jvm(alert: &Value, run: &ProgramRun, class: &str) {
    assert_jvm(alert, run, class);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = u64::from(unsafe { libc::geteuid() });
    assert_eq!(
        alert.pointer("/process/uid").and_then(Value::as_u64),
        Some(uid),
        "`process.uid`:\n{}",
        pretty(alert)
    );
}

/// Checks that an egress alert names the JVM of `run` as in [`assert_from_jvm`], and that the
/// `process` that made the connection, when the alert has one, is that JVM.
pub fn assert_egress_from_jvm(alert: &Value, run: &ProgramRun, class: &str) {
    assert_jvm(alert, run, class);
    if alert.get("process").is_some() {
        assert_eq!(
            process_pid(alert),
            Some(run.jvm_pid()),
            "`process.pid` is not the JVM that connected:\n{}\n{run}",
            pretty(alert)
        );
    }
}

/// `jvm.pid`, `jvm.exe` and `jvm.argv` name the JVM of `run`.
fn assert_jvm(alert: &Value, run: &ProgramRun, class: &str) {
    let pid = run.jvm_pid();
    assert_eq!(
        jvm_pid(alert),
        Some(pid),
        "`jvm.pid` is not the JVM's pid {pid}:\n{}\n{run}",
        pretty(alert)
    );
    let exe = alert
        .pointer("/jvm/exe")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(
        basename(exe),
        "java",
        "`jvm.exe` is not a java binary:\n{}",
        pretty(alert)
    );
    let argv = string_array(alert.pointer("/jvm/argv"));
    assert!(
        argv.contains(&class),
        "`jvm.argv` does not name {class}:\n{}",
        pretty(alert)
    );
}

/// Checks that the offending process is a `sh -c ...`: `process.exe` may be the resolved
/// binary (`/usr/bin/dash` for `/bin/sh` on Debian), so any of sh/dash/bash is accepted for it
/// and for `argv[0]`, and `argv` must carry `-c`.
pub fn assert_shell_process(alert: &Value) {
    let exe = process_exe(alert);
    let argv = process_argv(alert);
    assert!(
        SHELLS.contains(&basename(exe)),
        "`process.exe` is not a shell:\n{}",
        pretty(alert)
    );
    assert!(
        argv.first()
            .is_some_and(|a0| SHELLS.contains(&basename(a0))),
        "`process.argv[0]` is not a shell:\n{}",
        pretty(alert)
    );
    assert!(
        argv.contains(&"-c"),
        "`process.argv` has no -c:\n{}",
        pretty(alert)
    );
}

/// The alert as indented JSON, for failure messages.
pub fn pretty(alert: &Value) -> String {
    serde_json::to_string_pretty(alert).unwrap_or_else(|_| alert.to_string())
}

/// Every alert as one JSON line, for failure messages.
pub fn list(alerts: &[Value]) -> String {
    alerts.iter().map(|a| format!("  {a}\n")).collect()
}

fn basename(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

fn string_array(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// RFC 3339 `date-time` (section 5.6): `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`, with
/// calendar-valid dates and a leap second allowed.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            at(i + 3, b":")
                && num(i + 1..i + 3).is_some_and(|h| h <= 23)
                && num(i + 4..i + 6).is_some_and(|m| m <= 59)
                && i + 6 == b.len()
        }
        _ => false,
    }
}

/// Runs the payload `SpawnShell` (a JVM whose shell writes `canary` in `scratch`) in `cgroup`
/// and returns the one `jvm_shell_spawn` alert `detector` raises for it.
pub fn spawn_shell_alert(detector: &Detector, cgroup: &TestCgroup, scratch: &ScratchDir) -> Value {
    let run = JavaProgram::new("SpawnShell")
        .arg(scratch.file("canary"))
        .current_dir(scratch.path())
        .run_in_cgroup(cgroup);
    run.assert_success();
    expect_only_alert(detector, shell_spawn_from(run.jvm_pid()))
}

#[cfg(test)]
mod tests {
    use super::is_rfc3339;

    #[test]
    fn rfc3339_accepts_contract_timestamps() {
        for ok in [
            "2026-01-01T12:00:00.123456Z",
            "2026-01-01T12:00:00Z",
            "2024-02-29T23:59:60.5+05:30",
            "1999-12-31t00:00:00-00:00",
            "2026-01-01T12:00:00.123456789z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
    }

    #[test]
    fn rfc3339_rejects_other_formats() {
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01 12:00:00Z",
            "2026-01-01T12:00:00",
            "2026-01-01T12:00:00.Z",
            "2026-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T12:00:00+0100",
            "2026-01-01T12:00:00Zjunk",
            "1767268800",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
