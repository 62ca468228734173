//! De-duplication per incident and sink: an alert that says again what an earlier alert of the
//! same incident said (same rule, action and summary) within the sink's `dedup_window` is not
//! sent again, so a loop that spawns the same shell a thousand times pages once. An alert with
//! an id already delivered is never sent twice. Pure: the caller passes the time.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::{DefaultHasher, Hash, Hasher},
    time::{Duration, Instant},
};

use super::message::{Envelope, Message};

/// Most ids and repeat keys remembered; the oldest are forgotten first.
const REMEMBER: usize = 10_000;

#[derive(Debug)]
pub(crate) struct Dedup {
    /// Zero: nothing is suppressed.
    window: Duration,
    ids: HashSet<String>,
    id_order: VecDeque<String>,
    /// When each repeat key was last delivered.
    repeats: HashMap<u64, Instant>,
}

/// What makes two alerts of one incident "the same thing again".
fn repeat_key(message: &Message) -> Option<u64> {
    let Message::Alert(alert) = message else {
        return None;
    };
    let mut hasher = DefaultHasher::new();
    (
        &alert.incident_id,
        alert.rule.as_str(),
        alert.action,
        &alert.summary,
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

impl Dedup {
    pub(crate) fn new(window: Duration) -> Self {
        Dedup {
            window,
            ids: HashSet::new(),
            id_order: VecDeque::new(),
            repeats: HashMap::new(),
        }
    }

    /// Whether `envelope` should not be sent, at `now`.
    pub(crate) fn is_duplicate(&self, envelope: &Envelope, now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        if self.ids.contains(&envelope.id) {
            return true;
        }
        repeat_key(&envelope.message)
            .and_then(|key| self.repeats.get(&key))
            .is_some_and(|&at| now.saturating_duration_since(at) < self.window)
    }

    /// `envelope` was delivered at `now`.
    pub(crate) fn record(&mut self, envelope: &Envelope, now: Instant) {
        if self.window.is_zero() {
            return;
        }
        if self.ids.insert(envelope.id.clone()) {
            self.id_order.push_back(envelope.id.clone());
            if self.id_order.len() > REMEMBER {
                if let Some(old) = self.id_order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
        if let Some(key) = repeat_key(&envelope.message) {
            self.repeats.insert(key, now);
            if self.repeats.len() > REMEMBER {
                let window = self.window;
                self.repeats
                    .retain(|_, at| now.saturating_duration_since(*at) < window);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::sample_alert;

    fn envelope(seq: u64, summary: &str, incident: &str) -> Envelope {
        let mut alert = sample_alert();
        alert.summary = summary.to_owned();
        alert.incident_id = incident.to_owned();
        alert.time = format!("2026-01-01T12:00:{:02}.000000Z", seq % 60);
        let message = Message::Alert(Box::new(alert));
        Envelope {
            seq,
            id: crate::sinks::alert_id(&message),
            message,
        }
    }

    #[test]
    fn repeats_within_the_window_are_suppressed_per_incident() {
        let t0 = Instant::now();
        let mut dedup = Dedup::new(Duration::from_secs(600));
        let first = envelope(1, "java (pid 1) spawned a shell: sh -c id", "inc-a");
        assert!(!dedup.is_duplicate(&first, t0));
        dedup.record(&first, t0);
        // Same incident, same summary, later: suppressed.
        let again = envelope(2, "java (pid 1) spawned a shell: sh -c id", "inc-a");
        assert_ne!(again.id, first.id, "another alert (another time)");
        assert!(dedup.is_duplicate(&again, t0 + Duration::from_secs(5)));
        // Another summary, or another incident: sent.
        assert!(!dedup.is_duplicate(
            &envelope(3, "java (pid 1) spawned a shell: sh -c whoami", "inc-a"),
            t0
        ));
        assert!(!dedup.is_duplicate(
            &envelope(4, "java (pid 1) spawned a shell: sh -c id", "inc-b"),
            t0
        ));
        // After the window: sent again.
        assert!(!dedup.is_duplicate(&again, t0 + Duration::from_secs(601)));
        // The very same alert (same id) is never sent twice, window or not.
        assert!(dedup.is_duplicate(&first, t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn a_zero_window_sends_everything() {
        let t0 = Instant::now();
        let mut dedup = Dedup::new(Duration::ZERO);
        let first = envelope(1, "x", "inc");
        dedup.record(&first, t0);
        assert!(!dedup.is_duplicate(&first, t0));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut dedup = Dedup::new(Duration::from_secs(1));
        for i in 0..(REMEMBER as u64 + 50) {
            let e = envelope(i, &format!("summary {i}"), "inc");
            dedup.record(&e, t0 + Duration::from_secs(i));
        }
        assert!(dedup.ids.len() <= REMEMBER);
        assert!(dedup.repeats.len() <= REMEMBER + 1);
    }
}
