//! The service manager's side of the daemon: systemd's notification protocol (`sd_notify(3)`).
//!
//! With `Type=notify` the unit is started once the daemon says `READY=1` (every program
//! attached, running JVMs tracked), shows the `STATUS=` line in `systemctl status`, and with
//! `WatchdogSec=` is restarted when `WATCHDOG=1` stops arriving. The pings come from the event
//! loop's own tick, so a loop that is stuck (not just a process that is alive) gets restarted.
//! `STOPPING=1` tells systemd the stop is under way while the sinks drain.
//!
//! Without `NOTIFY_SOCKET` every call does nothing. The protocol is one datagram per message
//! to a Unix socket, a path or (a leading `@`) an abstract name; the `sd-notify` crate does not
//! reach abstract sockets, so it is written here.

use std::{
    ffi::OsString,
    io,
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixDatagram},
    },
    time::{Duration, Instant},
};

/// The shortest watchdog timeout the one-second event-loop tick can serve reliably.
pub const MIN_WATCHDOG: Duration = Duration::from_secs(3);

/// Where to send, and how often the watchdog wants to hear from us.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Half the watchdog timeout (`WATCHDOG_USEC`), as `sd_watchdog_enabled(3)` advises.
    watchdog_every: Option<Duration>,
    last_ping: Option<Instant>,
    /// Messages that could not be sent (logged once, then counted).
    pub failures: u64,
}

/// The watchdog interval systemd set for this process: `WATCHDOG_USEC`, when
/// `WATCHDOG_PID` is absent or names this process.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(me)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The socket address of a `NOTIFY_SOCKET` value.
fn address(path: &OsString) -> io::Result<SocketAddr> {
    let bytes = path.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name),
        None => SocketAddr::from_pathname(path),
    }
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        let target = socket.and_then(|path| {
            let connected = address(&path).and_then(|addr| Ok((UnixDatagram::unbound()?, addr)));
            match connected {
                Ok(target) => Some(target),
                Err(e) => {
                    tracing::warn!(
                        "NOTIFY_SOCKET {}: {e}; systemd will not be told",
                        path.display()
                    );
                    None
                }
            }
        });
        if target.is_some() {
            if let Some(timeout) = watchdog {
                if timeout < MIN_WATCHDOG {
                    tracing::warn!(
                        "WatchdogSec={timeout:?} is shorter than {MIN_WATCHDOG:?}: the event loop \
                         ticks once a second, so systemd may restart a healthy daemon"
                    );
                }
                tracing::info!("systemd watchdog: {timeout:?}, pinged from the event loop");
            }
        }
        Notifier {
            watchdog_every: target.as_ref().and(watchdog).map(|d| d / 2),
            target,
            last_ping: None,
            failures: 0,
        }
    }

    /// A notifier that says nothing (for `learn` and tests).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog_every: None,
            last_ping: None,
            failures: 0,
        }
    }

    fn send(&mut self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
            self.failures += 1;
            if self.failures == 1 {
                tracing::warn!("could not notify systemd (NOTIFY_SOCKET): {e}");
            }
        }
    }

    /// Start-up is complete.
    pub fn ready(&mut self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
        self.last_ping = Some(Instant::now());
    }

    /// What `systemctl status` shows.
    pub fn status(&mut self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// Pings the watchdog if about half its interval has passed since the last ping. Call it
    /// from the event loop's tick.
    pub fn watchdog(&mut self) {
        let Some(every) = self.watchdog_every else {
            return;
        };
        // The tick is not exact: a ping due in a few milliseconds goes out now rather than a
        // whole tick late.
        if self.last_ping.is_some_and(|t| t.elapsed() < every * 3 / 4) {
            return;
        }
        self.send("WATCHDOG=1");
        self.last_ping = Some(Instant::now());
    }

    /// The daemon is stopping (draining the sinks).
    pub fn stopping(&mut self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }
}

/// A status is one line: a newline would start a new assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_ours_only() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(watchdog_interval(Some("5000000"), None, 42), five);
        assert_eq!(watchdog_interval(Some("5000000"), Some("42"), 42), five);
        assert_eq!(watchdog_interval(Some("5000000"), Some("41"), 42), None);
        assert_eq!(watchdog_interval(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 42), None);
        assert_eq!(watchdog_interval(None, Some("42"), 42), None);
    }

    #[test]
    fn messages_reach_a_socket_and_pings_are_paced() {
        let dir = std::env::temp_dir().join(format!("detector-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind");
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut n = Notifier {
            target: Some((
                UnixDatagram::unbound().expect("socket"),
                address(&path.clone().into_os_string()).expect("address"),
            )),
            watchdog_every: Some(Duration::from_secs(3600)),
            last_ping: None,
            failures: 0,
        };
        let mut buf = [0u8; 256];
        let mut next = || {
            let len = listener.recv(&mut buf).expect("a message");
            String::from_utf8_lossy(&buf[..len]).into_owned()
        };
        n.ready("watching\n2 JVMs");
        assert_eq!(next(), "READY=1\nSTATUS=watching 2 JVMs");
        // Ready counts as a ping: the next one is due an interval later.
        n.watchdog();
        n.status("ok");
        assert_eq!(next(), "STATUS=ok");
        n.last_ping = None;
        n.watchdog();
        assert_eq!(next(), "WATCHDOG=1");
        n.stopping("draining");
        assert_eq!(next(), "STOPPING=1\nSTATUS=draining");
        assert_eq!(n.failures, 0);
        let _ = std::fs::remove_dir_all(&dir);

        // Nothing listens any more: counted, not fatal.
        n.status("gone");
        assert_eq!(n.failures, 1);
        Notifier::disabled().ready("nothing happens");
    }

    #[test]
    fn abstract_names_are_abstract() {
        let addr = address(&OsString::from("@detector/test")).expect("address");
        assert_eq!(addr.as_abstract_name(), Some(&b"detector/test"[..]));
        let addr = address(&OsString::from("/run/systemd/notify")).expect("address");
        assert_eq!(
            addr.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
    }
}
