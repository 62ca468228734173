//! Killing a process safely: through a pidfd, after checking that the PID still names
//! the process we mean (its start time), so a PID reused since the event is never hit.

use std::{fs, io};

pub use rustix::process::Signal;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

use crate::{
    sensors::procfs::{clock_ticks, same_start, stat_start_ticks},
    vocab::ProcessKey,
};

/// Why a process was not killed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// It had already exited (or the PID is gone).
    #[error("process {pid} is gone")]
    Gone {
        /// The PID.
        pid: u32,
    },
    /// The PID now belongs to another process.
    #[error("pid {pid} was reused (started at tick {found}, expected {expected}); not killed")]
    Reused {
        /// The PID.
        pid: u32,
        /// Start tick of the process the PID names now.
        found: u64,
        /// Start tick of the process we meant.
        expected: u64,
    },
    /// A system call failed.
    #[error("{call} for pid {pid}: {source}")]
    Sys {
        /// Which call.
        call: &'static str,
        /// The PID.
        pid: u32,
        /// The error.
        source: io::Error,
    },
}

/// Sends `signal` to the process `key` names, if it is still that process.
pub fn signal_process(key: ProcessKey, signal: Signal) -> Result<(), KillError> {
    let pid = key.tgid;
    let sys = |call: &'static str| {
        move |e: rustix::io::Errno| {
            if e == rustix::io::Errno::SRCH {
                KillError::Gone { pid }
            } else {
                KillError::Sys {
                    call,
                    pid,
                    source: e.into(),
                }
            }
        }
    };
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(KillError::Gone { pid })?;
    let fd = pidfd_open(raw, PidfdFlags::empty()).map_err(sys("pidfd_open"))?;
    // With the pidfd held, the PID cannot be reused by another process until we close it,
    // so checking the start time now and signalling through the fd is race-free.
    let stat =
        fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| KillError::Gone { pid })?;
    let found = stat_start_ticks(&stat).ok_or(KillError::Gone { pid })?;
    let ticks = clock_ticks();
    if !same_start(key.start_ns, found, ticks) {
        return Err(KillError::Reused {
            pid,
            found,
            expected: key.start_ns / (1_000_000_000 / ticks),
        });
    }
    pidfd_send_signal(&fd, signal).map_err(sys("pidfd_send_signal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_comparison_rounds_like_proc() {
        // 1234.567 s after boot at 100 Hz is tick 123456.
        assert!(same_start(1_234_567_000_000, 123_456, 100));
        assert!(!same_start(1_234_567_000_000, 123_457, 100));
    }

    #[test]
    fn refuses_a_reused_pid() {
        // Our own process, but with a start time that is not ours.
        let me = ProcessKey {
            tgid: std::process::id(),
            start_ns: 1,
        };
        assert!(matches!(
            signal_process(me, Signal::CONT),
            Err(KillError::Reused { .. })
        ));
    }

    #[test]
    fn signals_the_right_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let stat = fs::read_to_string(format!("/proc/{}/stat", child.id())).expect("stat");
        let ticks = stat_start_ticks(&stat).expect("start");
        let key = ProcessKey {
            tgid: child.id(),
            start_ns: ticks * (1_000_000_000 / clock_ticks()),
        };
        signal_process(key, Signal::KILL).expect("killed");
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(matches!(
            signal_process(key, Signal::CONT),
            Err(KillError::Gone { .. })
        ));
    }
}
