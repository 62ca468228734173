//! `detector doctor`: what this host allows, on one screen (or as JSON) — the kernel, its BTF,
//! the cgroup v2 hierarchy, each hook the detector uses, the capabilities this process holds —
//! and, by loading and attaching every program for a moment, whether `detector run` will
//! start here, with which enforcement, and why not the alternatives.

use serde::Serialize;

use crate::{
    policy::Policy,
    sensors::{kernel::Kernel, privileges, procfs, Scope, Sensors},
};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As needed.
    Ok,
    /// `run` works, with something missing (named in the detail).
    Warn,
    /// `run` will not start.
    Fail,
    /// Not used by the detector; said for the operator comparing tools.
    Info,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Info => "info",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

fn check(name: &str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail: detail.into(),
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// What `run` uses on this kernel to follow JVMs and to enforce.
    pub enforcement: Option<String>,
    /// Whether `detector run` starts here (no check failed).
    pub runs: bool,
}

impl Report {
    /// The one-screen text.
    pub fn text(&self) -> String {
        let mut out = String::from("detector doctor: what this host allows\n\n");
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            out.push_str(&format!(
                "  {:<4}  {:<width$}  {}\n",
                c.status.as_str(),
                c.name,
                c.detail
            ));
        }
        if let Some(e) = &self.enforcement {
            out.push_str(&format!("\nwhat `run` uses: {e}\n"));
        }
        out.push_str(if self.runs {
            "\nverdict: `detector run` starts here, in monitor and in enforce mode.\n"
        } else {
            "\nverdict: `detector run` will not start here: fix the FAIL lines above.\n"
        });
        out
    }
}

fn exists(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

/// Runs every check. With `load`, the programs are loaded and attached (to the whole host,
/// with the built-in policy in monitor mode) and detached again: the one proof that the
/// kernel's verifier and hooks accept them.
pub fn examine(load: bool) -> Report {
    let mut checks = Vec::new();
    let kernel = Kernel::running();
    let mut enforcement = None;
    match &kernel {
        Ok(k) => match k.check_floor() {
            Ok(()) => {
                checks.push(check(
                    "kernel",
                    Status::Ok,
                    format!(
                        "{} (the floor is {}.{})",
                        k.release,
                        crate::sensors::kernel::FLOOR.0,
                        crate::sensors::kernel::FLOOR.1
                    ),
                ));
                enforcement = Some(k.hooks());
            }
            Err(e) => checks.push(check("kernel", Status::Fail, e.to_string())),
        },
        Err(e) => checks.push(check("kernel", Status::Fail, e.to_string())),
    }
    checks.push(if exists("/sys/kernel/btf/vmlinux") {
        check("btf", Status::Ok, "/sys/kernel/btf/vmlinux")
    } else {
        check(
            "btf",
            Status::Fail,
            "/sys/kernel/btf/vmlinux is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y",
        )
    });
    checks.push(match procfs::cgroup2_mount() {
        Some(mount) => check(
            "cgroup v2",
            Status::Ok,
            format!("mounted at {}", mount.display()),
        ),
        None => check(
            "cgroup v2",
            Status::Fail,
            "no cgroup2 mount in /proc/mounts: mount one at /sys/fs/cgroup",
        ),
    });

    match privileges::CapSet::current() {
        Some(held) => {
            for r in privileges::REQUIREMENTS {
                let (status, detail) = match (held.covers(r.cap), r.need) {
                    (true, _) => (Status::Ok, format!("held: {}", r.why)),
                    (false, privileges::Need::Start) => {
                        (Status::Fail, format!("missing, needed to {}", r.why))
                    }
                    (false, privileges::Need::Degraded) => {
                        (Status::Warn, format!("missing: cannot {}", r.why))
                    }
                };
                checks.push(check(r.cap.name(), status, detail));
            }
        }
        None => checks.push(check(
            "capabilities",
            Status::Warn,
            "capget failed: cannot tell which capabilities this process holds",
        )),
    }

    checks.push(if exists("/sys/bus/event_source/devices/uprobe/type") {
        check("uprobes", Status::Ok, "the uprobe event source exists")
    } else {
        check(
            "uprobes",
            Status::Warn,
            "no uprobe event source (CONFIG_UPROBE_EVENTS): JVMs are recognised by launcher name only",
        )
    });
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    checks.push(check(
        "BPF-LSM",
        Status::Info,
        if lsm.split(',').any(|m| m.trim() == "bpf") {
            "enabled, not used: the same tracepoint and cgroup programs enforce on every kernel \
             from 5.8, and many hosts do not enable it"
        } else {
            "not enabled (needs lsm=...,bpf at boot); not used: tracepoints and cgroup programs \
             enforce instead"
        },
    ));
    checks.push(check(
        "fentry/kprobes",
        Status::Info,
        "not used: BTF tracepoints give the same events and load on every kernel from 5.8, \
         also where fentry or kprobes are refused",
    ));

    let runs_so_far = !checks.iter().any(|c| c.status == Status::Fail);
    if load {
        checks.push(if !runs_so_far {
            check(
                "programs",
                Status::Fail,
                "not tried: fix the lines above first",
            )
        } else {
            let started = Scope::resolve(None)
                .map_err(|e| e.to_string())
                .and_then(|scope| {
                    Sensors::start(&Policy::builtin(), &scope).map_err(|e| e.to_string())
                });
            match started {
                Ok(sensors) => {
                    drop(sensors);
                    check(
                        "programs",
                        Status::Ok,
                        "every program loaded and attached, then detached",
                    )
                }
                Err(e) => check("programs", Status::Fail, e),
            }
        });
    }
    let runs = !checks.iter().any(|c| c.status == Status::Fail);
    Report {
        checks,
        enforcement,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_lines_up_and_gives_a_verdict() {
        let report = Report {
            checks: vec![
                check("kernel", Status::Ok, "6.1.0 (the floor is 5.8)"),
                check("CAP_NET_ADMIN", Status::Fail, "missing"),
            ],
            enforcement: Some("tracepoints".into()),
            runs: false,
        };
        let text = report.text();
        assert!(text.contains("  ok    kernel         6.1.0"), "{text}");
        assert!(text.contains("  FAIL  CAP_NET_ADMIN  missing"), "{text}");
        assert!(text.contains("will not start here"), "{text}");
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["runs"], false);
    }

    #[test]
    fn without_loading_this_host_is_examined() {
        let report = examine(false);
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        for name in [
            "kernel",
            "btf",
            "cgroup v2",
            "CAP_BPF",
            "uprobes",
            "BPF-LSM",
        ] {
            assert!(names.contains(&name), "{names:?}");
        }
        assert!(!names.contains(&"programs"), "loading was not asked for");
    }
}
