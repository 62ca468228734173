//! When to try again: exponential backoff with jitter, the receiver's `Retry-After`, and the
//! per-sink rate limit. Pure, apart from [`jitter`]'s randomness.

use std::time::{Duration, Instant, SystemTime};

/// The wait after the first failure.
const FIRST: Duration = Duration::from_secs(1);

/// The longest wait between two attempts (a `Retry-After` may ask for more).
const LONGEST: Duration = Duration::from_secs(300);

/// The wait after the `attempt`th failed attempt (1-based): 1 s, 2 s, 4 s, ... up to 5 min,
/// each scaled by a factor from 0.5 to 1 ("equal jitter"), so that many detectors that lost
/// the same receiver do not all come back at the same instant. `jitter` is in `[0, 1)`.
pub(crate) fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let full = FIRST.saturating_mul(1 << doublings).min(LONGEST);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)`, good enough to spread retries (std has no RNG; `RandomState`
/// is seeded from the OS).
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` header value (RFC 9110 §10.2.3): seconds, or an HTTP date, read at `now`.
/// A date in the past means "now". `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// At most `per_minute` requests a minute, with bursts up to a minute's worth: a token
/// bucket. Requests over the rate wait; nothing is dropped.
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// 0: no limit.
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(per_minute: u32, now: Instant) -> Self {
        RateLimit {
            per_minute,
            tokens: f64::from(per_minute),
            last: now,
        }
    }

    /// Takes a token at `now`, or says how long to wait for one (then call again).
    pub(crate) fn take(&mut self, now: Instant) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.per_minute));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_with_jitter() {
        // Without jitter (the top of the range): 1, 2, 4, ... 256, then the cap.
        let top: Vec<u64> = (1..=11).map(|a| backoff(a, 0.999_999).as_secs()).collect();
        assert_eq!(top, [0, 1, 3, 7, 15, 31, 63, 127, 255, 299, 299]);
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(4, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(100, 0.0), Duration::from_secs(150));
        assert_eq!(backoff(u32::MAX, 0.0), Duration::from_secs(150));
        // Attempt 0 (never used) behaves as the first.
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(
            samples.iter().all(|j| (0.0..1.0).contains(j)),
            "{samples:?}"
        );
        assert!(samples.windows(2).any(|w| w[0] != w[1]), "{samples:?}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // In the past: go now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    #[test]
    fn rate_limit_allows_a_burst_then_paces() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(60, t0);
        for _ in 0..60 {
            assert_eq!(limit.take(t0), None);
        }
        let wait = limit
            .take(t0)
            .expect("the 61st request in the same instant waits");
        assert!(
            (Duration::from_millis(990)..=Duration::from_millis(1010)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(limit.take(t0 + Duration::from_secs(1)), None);
        assert!(limit.take(t0 + Duration::from_secs(1)).is_some());
        // A quiet minute refills the bucket, but never beyond a minute's worth.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..60 {
            assert_eq!(limit.take(later), None);
        }
        assert!(limit.take(later).is_some());
    }

    #[test]
    fn rate_limit_zero_is_unlimited() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(0, t0);
        for _ in 0..10_000 {
            assert_eq!(limit.take(t0), None);
        }
    }
}
