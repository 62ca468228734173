//! The capabilities the daemon needs, checked instead of "is this root": a hardened unit runs
//! it with exactly these (`AmbientCapabilities=`), as any user.
//!
//! Each capability is listed with what it is for, so that an error can say which one is
//! missing and what breaks without it. `CAP_SYS_ADMIN` covers `CAP_BPF`,
//! `CAP_PERFMON` and `CAP_NET_ADMIN`, as the kernel's own checks do (`bpf_capable()`,
//! `perfmon_capable()`, `bpf_net_capable()`).

use std::fmt;

/// A capability, by its number in `linux/capability.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(pub u8);

pub const CAP_DAC_READ_SEARCH: Cap = Cap(2);
pub const CAP_KILL: Cap = Cap(5);
pub const CAP_NET_ADMIN: Cap = Cap(12);
pub const CAP_SYS_PTRACE: Cap = Cap(19);
pub const CAP_SYS_ADMIN: Cap = Cap(21);
pub const CAP_SYS_RESOURCE: Cap = Cap(24);
pub const CAP_PERFMON: Cap = Cap(38);
pub const CAP_BPF: Cap = Cap(39);

impl Cap {
    /// Its name as `capabilities(7)` and systemd spell it.
    pub fn name(self) -> &'static str {
        match self {
            CAP_DAC_READ_SEARCH => "CAP_DAC_READ_SEARCH",
            CAP_KILL => "CAP_KILL",
            CAP_NET_ADMIN => "CAP_NET_ADMIN",
            CAP_SYS_PTRACE => "CAP_SYS_PTRACE",
            CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
            CAP_SYS_RESOURCE => "CAP_SYS_RESOURCE",
            CAP_PERFMON => "CAP_PERFMON",
            CAP_BPF => "CAP_BPF",
            _ => "CAP_?",
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a capability is needed to start, or only for part of the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Without it the kernel programs cannot be loaded or attached: the daemon refuses to
    /// start.
    Start,
    /// Without it the daemon runs, with the loss named in a warning at start.
    Degraded,
}

/// One capability the daemon uses.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    pub cap: Cap,
    pub need: Need,
    /// What it is for.
    pub why: &'static str,
}

/// Everything the daemon uses, in the order an operator would grant it.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        cap: CAP_BPF,
        need: Need::Start,
        why: "load the kernel programs and create their maps",
    },
    Requirement {
        cap: CAP_PERFMON,
        need: Need::Start,
        why: "attach to tracepoints and uprobes, and read kernel memory in the programs",
    },
    Requirement {
        cap: CAP_NET_ADMIN,
        need: Need::Start,
        why: "attach the socket and packet programs to the cgroup",
    },
    Requirement {
        cap: CAP_SYS_PTRACE,
        need: Need::Start,
        why: "read other users' processes in /proc (executable, root directory, mount \
              namespace, memory map)",
    },
    Requirement {
        cap: CAP_KILL,
        need: Need::Degraded,
        why: "kill or freeze another user's JVM and its children from userspace (the \
              kernel's kill at exec does not need it)",
    },
    Requirement {
        cap: CAP_DAC_READ_SEARCH,
        need: Need::Degraded,
        why: "list another user's open files for the forensics capture (/proc/PID/fd)",
    },
];

/// The capabilities that stand in for `cap` in the kernel's own checks.
fn satisfied_by(cap: Cap) -> &'static [Cap] {
    match cap {
        CAP_BPF => &[CAP_BPF, CAP_SYS_ADMIN],
        CAP_PERFMON => &[CAP_PERFMON, CAP_SYS_ADMIN],
        CAP_NET_ADMIN => &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
        CAP_SYS_PTRACE => &[CAP_SYS_PTRACE],
        CAP_KILL => &[CAP_KILL],
        CAP_DAC_READ_SEARCH => &[CAP_DAC_READ_SEARCH],
        _ => &[],
    }
}

/// A capability set: bit `n` is capability `n`, as in `capget(2)` and `/proc/PID/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// This thread's effective set (`capget(2)`); `None` if the call fails.
    pub fn current() -> Option<CapSet> {
        rustix::thread::capabilities(None)
            .ok()
            .map(|sets| CapSet(sets.effective.bits()))
    }

    pub fn has(self, cap: Cap) -> bool {
        cap.0 < 64 && self.0 & (1 << cap.0) != 0
    }

    /// Whether the kernel would grant what `cap` is needed for.
    pub fn covers(self, cap: Cap) -> bool {
        satisfied_by(cap).iter().any(|&c| self.has(c))
    }

    /// The requirements this set does not meet.
    pub fn missing(self) -> Vec<&'static Requirement> {
        REQUIREMENTS
            .iter()
            .filter(|r| !self.covers(r.cap))
            .collect()
    }
}

/// "CAP_X (what for), CAP_Y (what for)".
pub fn describe(missing: &[&Requirement]) -> String {
    missing
        .iter()
        .map(|r| format!("{} ({})", r.cap, r.why))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(caps: &[Cap]) -> CapSet {
        CapSet(caps.iter().fold(0, |bits, c| bits | 1 << c.0))
    }

    #[test]
    fn the_effective_set_is_the_one_proc_shows() {
        let status = std::fs::read_to_string("/proc/self/status").expect("own status");
        let shown = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .expect("a CapEff line");
        assert_eq!(CapSet::current(), Some(CapSet(shown)));
        // Every capability of kernels to date (0..=40) is in a full set.
        let full = CapSet(0x1ff_ffff_ffff);
        assert!(full.missing().is_empty());
        assert!(full.has(CAP_BPF) && full.has(CAP_KILL));
    }

    #[test]
    fn names_what_is_missing_and_why() {
        let only_bpf = set(&[CAP_BPF, CAP_PERFMON, CAP_KILL, CAP_DAC_READ_SEARCH]);
        let missing: Vec<Cap> = only_bpf.missing().iter().map(|r| r.cap).collect();
        assert_eq!(missing, [CAP_NET_ADMIN, CAP_SYS_PTRACE]);
        let text = describe(&only_bpf.missing());
        assert!(
            text.starts_with("CAP_NET_ADMIN (attach the socket and packet programs"),
            "{text}"
        );
        assert!(set(&[]).missing().iter().any(|r| r.need == Need::Start));
    }

    #[test]
    fn sys_admin_stands_in_where_the_kernel_lets_it() {
        let admin = set(&[CAP_SYS_ADMIN, CAP_SYS_PTRACE]);
        let missing: Vec<Cap> = admin.missing().iter().map(|r| r.cap).collect();
        assert_eq!(missing, [CAP_KILL, CAP_DAC_READ_SEARCH]);
        assert!(missing.iter().all(|c| !admin.covers(*c)));
    }
}
