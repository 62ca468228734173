//! Podman on this machine, for the tests that run the detector's image as the DaemonSet does
//! (see `kubernetes::daemonset_podman_run`) or play Pod manifests.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{find_on_path, skip, ScratchDir};

/// Podman, configured for this machine: runc (crun refuses a hybrid cgroup layout), the
/// cgroupfs manager (no systemd), and rlimits within what this process may set (no
/// CAP_SYS_RESOURCE in some sandboxes). Removes its pods on drop.
#[derive(Debug)]
pub struct Podman {
    conf: ScratchDir,
    pods: Vec<String>,
    /// Containers removed on drop.
    pub containers: Vec<String>,
}

impl Podman {
    pub fn new() -> Option<Podman> {
        let missing = if find_on_path("podman").is_none() {
            Some("podman is not installed (cargo xtask setup installs it)".to_owned())
        } else {
            let image = format!("localhost/detector:{}", env!("CARGO_PKG_VERSION"));
            let exists = Command::new("podman")
                .args(["image", "exists", &image])
                .status()
                .is_ok_and(|s| s.success());
            (!exists).then(|| format!("no image {image}: run `cargo xtask image`"))
        };
        if let Some(reason) = missing {
            skip(&reason);
            return None;
        }
        let conf = ScratchDir::new("podman-conf");
        // SAFETY: getrlimit writes only the struct it is given.
        let hard = |resource| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let ok = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
            if ok {
                limit.rlim_max.min(4096)
            } else {
                4096
            }
        };
        std::fs::write(
            conf.file("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={n}:{n}\", \"nproc={p}:{p}\"]\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
                n = hard(libc::RLIMIT_NOFILE),
                p = hard(libc::RLIMIT_NPROC),
            ),
        )
        .expect("containers.conf");
        Some(Podman {
            conf,
            pods: Vec::new(),
            containers: Vec::new(),
        })
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.conf.file("containers.conf"));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("podman runs");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `podman kube play --network none` of `pod`, remembered for removal.
    pub fn play(&mut self, pod: &Value) {
        let name = pod["metadata"]["name"]
            .as_str()
            .expect("a pod name")
            .to_owned();
        let file = self.conf.file(&format!("{name}.json"));
        std::fs::write(&file, pod.to_string()).expect("pod file");
        let out = self
            .cmd()
            .args(["kube", "play", "--network", "none"])
            .arg(&file)
            .output()
            .expect("podman runs");
        self.pods.push(name.clone());
        assert!(
            out.status.success(),
            "podman kube play {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn logs(&self, container: &str) -> String {
        let out = self
            .cmd()
            .args(["logs", container])
            .output()
            .expect("podman runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn wait_for_log(&self, container: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs(container);
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "{container} never logged {needle:?}:\n{logs}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = self.cmd().args(["rm", "-f", container]).output();
        }
        for pod in &self.pods {
            let _ = self
                .cmd()
                .args(["pod", "rm", "-f", "-t", "5", pod])
                .output();
        }
    }
}
