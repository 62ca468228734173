//! Durations and times as text, once for the whole daemon: the durations the policy and
//! `detector learn --duration` read, and the RFC 3339 times alerts and suggested policies
//! carry. The arithmetic and the calendar are `humantime`'s.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// Now on `clock` (`Realtime`, or `Boottime`: the kernel events' clock), as time since its
/// origin.
pub fn clock_now(clock: rustix::time::ClockId) -> Duration {
    let ts = rustix::time::clock_gettime(clock);
    // Both clocks count from a point in the past: never negative.
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The units a duration may be written in, as `humantime` reads them.
const UNITS: [&str; 5] = ["ms", "s", "m", "h", "d"];

/// A duration as the policy writes it: a number and a unit, several in a row, without
/// spaces (`"500ms"`, `"10s"`, `"5m"`, `"1h30m"`, `"7d"`). `humantime` reads more spellings
/// (`"10 s"`, `"10sec"`, weeks, years); only this compact one is accepted, so that a value
/// reads the same everywhere it is written, messages included ([`format_duration`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration; write a number and a unit (ms, s, m, h, d): \"500ms\", \
             \"10s\", \"5m\", \"1h30m\""
        )
    };
    if !is_compact(text) {
        return Err(bad());
    }
    humantime::parse_duration(text).map_err(|_| bad())
}

/// `text` is one or more of digits followed by one of [`UNITS`], and nothing else.
fn is_compact(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let unit = &rest[digits..digits + unit_len];
        if digits == 0 || !UNITS.contains(&unit) {
            return false;
        }
        rest = &rest[digits + unit_len..];
    }
    true
}

/// A duration as [`parse_duration`] reads it back: in days, hours, minutes and seconds
/// (`"1h30m"`, `"7d"`, `"0s"`), or in milliseconds when it has a fraction of a second
/// (`"1500ms"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1_000) {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1_000;
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, per) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= per {
            let _ = write!(text, "{}{unit}", secs / per);
            secs %= per;
        }
    }
    text
}

/// RFC 3339 with microseconds, UTC (`2026-01-01T12:00:00.123456Z`).
pub fn rfc3339_micros(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(representable(t)).to_string()
}

/// RFC 3339 in whole seconds, UTC (`2026-11-23T01:04:22Z`).
pub fn rfc3339_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(representable(t)).to_string()
}

/// `t` within what RFC 3339 can write (years 1970 to 9999 here), since `humantime` panics
/// outside it; a clock that far off is written as the nearest end.
fn representable(t: SystemTime) -> SystemTime {
    // 10000-01-01T00:00:00Z, less a second.
    let last = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    t.clamp(SystemTime::UNIX_EPOCH, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_clamps_what_it_cannot_write() {
        let past = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339_micros(past), "1970-01-01T00:00:00.000000Z");
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(rfc3339_seconds(far), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn formatted_durations_parse_back() {
        for secs in [0, 1, 59, 60, 90, 3_600, 5_400, 86_400, 7 * 86_400 + 61] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs}");
        }
        let d = Duration::from_millis(1_500);
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
}
