//! Reading and checking alert records against the contract's schema (see `docs/alerts.md`).
//!
//! Accessors return `None`/empty on a missing field so they can be used in predicates; the
//! `assert_*` functions fail with the whole alert in the message.

use std::path::Path;

use serde_json::Value;

use crate::{Detector, ProgramRun, ALERT_TIMEOUT, SETTLE_TIME};

/// The rule this slice of the detector raises for a JVM (or its descendant) exec'ing a shell,
/// interpreter, downloader, or anything from a writable directory or a memfd.
pub const SHELL_SPAWN: &str = "jvm_shell_spawn";

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
    move |alert| is_shell_spawn(alert) && jvm_pid(alert) == Some(jvm)
}

/// Whether `process.exe` or any `process.argv` element contains `needle`.
pub fn process_mentions(alert: &Value, needle: &str) -> bool {
    process_exe(alert).contains(needle) || process_argv(alert).iter().any(|a| a.contains(needle))
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
    if rule(alert) != Some(SHELL_SPAWN) {
        fail(&format!("`rule` is not {SHELL_SPAWN:?}"));
    }
    if !matches!(
        alert.get("severity").and_then(Value::as_str),
        Some("critical" | "high")
    ) {
        fail("`severity` is not \"critical\" or \"high\"");
    }
    if alert.get("action").and_then(Value::as_str) != Some(action) {
        fail(&format!("`action` is not {action:?}"));
    }
    if !class(alert).is_some_and(|c| CLASSES.contains(&c)) {
        fail(&format!("`class` is not one of {CLASSES:?}"));
    }
    for (key, with_uid) in [("process", true), ("jvm", false)] {
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
    let Some(ancestry) = alert.get("ancestry").and_then(Value::as_array) else {
        fail("`ancestry` is not an array");
    };
    let well_formed = |e: &Value| {
        e.get("pid").is_some_and(Value::is_u64) && e.get("exe").is_some_and(Value::is_string)
    };
    if !ancestry.iter().all(well_formed) {
        fail("an `ancestry` entry is not {pid, exe}");
    }
    if alert.get("container").is_some_and(|c| !c.is_object()) {
        fail("`container` is present but not an object");
    }
}

/// Checks that the alert names the JVM of `run` (a `tests/java` program): `jvm.pid` is the pid
/// it printed, `jvm.exe` is a `java` binary and `jvm.argv` names the scenario `class`; and that
/// the offending process ran with this test's uid.
pub fn assert_from_jvm(alert: &Value, run: &ProgramRun, class: &str) {
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
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = u64::from(unsafe { libc::geteuid() });
    assert_eq!(
        alert.pointer("/process/uid").and_then(Value::as_u64),
        Some(uid),
        "`process.uid`:\n{}",
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
