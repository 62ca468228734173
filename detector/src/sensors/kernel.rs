//! What the running kernel is, whether the detector supports it, and which of its hooks the
//! detector uses — said once at start-up, so an operator knows what protects the host.

use super::SensorError;

/// The oldest kernel the programs load on: BPF ring buffers and `bpf_send_signal` from BTF
/// tracepoints (5.8). Checked in CI on Debian's 5.10, 6.1 and 6.12 kernels and the newest.
pub const FLOOR: (u32, u32) = (5, 8);

/// The running kernel's release string and its major.minor version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// Major and minor version.
    pub version: (u32, u32),
}

impl Kernel {
    /// Reads the running kernel's release.
    pub fn running() -> Result<Kernel, SensorError> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .map_err(|source| SensorError::KernelUnknown {
                reason: format!("/proc/sys/kernel/osrelease: {source}"),
            })?;
        Kernel::from_release(&release)
    }

    /// Parses a release string such as `6.1.0-57-amd64` or `5.10.0-32-cloud-amd64`.
    pub fn from_release(release: &str) -> Result<Kernel, SensorError> {
        let unknown = || SensorError::KernelUnknown {
            reason: format!("cannot read a version from the kernel release {release:?}"),
        };
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(unknown)?;
        let minor = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(unknown)?;
        Ok(Kernel {
            release: release.to_owned(),
            version: (major, minor),
        })
    }

    /// Refuses kernels older than [`FLOOR`], in one line that says why.
    pub fn check_floor(&self) -> Result<(), SensorError> {
        if self.version < FLOOR {
            return Err(SensorError::KernelTooOld {
                release: self.release.clone(),
            });
        }
        Ok(())
    }

    /// Whether the exec program reads `task->comm` with plain loads (cheaper than the
    /// helper). 5.10's verifier accepts those loads but they do not read the name; 6.1,
    /// 6.12 and the newest read it (checked in CI), so the helper is kept before 6.1.
    pub fn comm_by_load(&self) -> bool {
        self.version >= (6, 1)
    }

    /// What the detector uses on this kernel, for the start-up log.
    pub fn hooks(&self) -> String {
        let exit = if self.version >= (6, 13) {
            "signal->live (the tracepoint's group_dead argument exists from 6.13 but is not needed)"
        } else {
            "signal->live (the tracepoint has no group_dead argument before 6.13)"
        };
        let comm = if self.comm_by_load() {
            "comm read with plain loads"
        } else {
            "comm read with bpf_get_current_comm (before 6.1)"
        };
        format!(
            "kernel {}: lineage on BTF tracepoints sched_process_fork/exec/exit, process exit from {exit}, {comm}; \
             enforcement: kill at exec with bpf_send_signal in sched_process_exec, deny at cgroup/connect4|6 \
             and cgroup/sendmsg4|6, drop in cgroup_skb egress/ingress of JVM cgroups; \
             fentry and BPF-LSM are not used (the same programs run on every kernel from {}.{})",
            self.release, FLOOR.0, FLOOR.1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_and_upstream_releases() {
        for (release, version) in [
            ("5.10.0-32-amd64", (5, 10)),
            ("6.1.0-57-amd64", (6, 1)),
            ("6.12.118+deb12-amd64", (6, 12)),
            ("6.18.44-fc-v1252", (6, 18)),
            ("4.19.0", (4, 19)),
        ] {
            assert_eq!(
                Kernel::from_release(release).expect("parses").version,
                version,
                "{release}"
            );
        }
        assert!(Kernel::from_release("").is_err());
        assert!(Kernel::from_release("linux").is_err());
    }

    #[test]
    fn refuses_kernels_before_5_8_in_one_line() {
        let old = Kernel::from_release("5.4.0-150-generic").expect("parses");
        let err = old.check_floor().expect_err("too old").to_string();
        assert!(
            err.contains("5.4.0-150-generic") && err.contains("5.8"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        assert!(Kernel::from_release("5.8.0").is_ok_and(|k| k.check_floor().is_ok()));
        assert!(Kernel::from_release("5.10.0-32-amd64").is_ok_and(|k| k.check_floor().is_ok()));
    }
}
