//! Pods made through containerd's CRI plugin, as kubelet makes them (src/containerd.rs starts
//! a containerd of the test's own and speaks the CRI to it).
//!
//! - Without the detector: a pod's container gets an OCI bundle whose `config.json` carries
//!   the CRI annotations (pod name, namespace and UID, container name and type, image), runc
//!   keeps its state where the harness says, and the container's process has a cgroup v2
//!   directory of its own.
//! - With the detector in enforce mode, scoped to the container's cgroup, once on the node and
//!   once from its image as the DaemonSet runs it: a JVM in the pod makes an LDAP callback
//!   (denied at connect()) and spawns a shell (killed before it acts), and the alerts name
//!   the container (id, name, image, runtime) and the pod (name, namespace, UID).

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use integration_tests::{
    alert, assert_nothing_lost, compile_java,
    containerd::{Containerd, RunningPod, APP_IMAGE},
    kubernetes,
    podman::Podman,
    require_kernel_support, Detector, Mode, Policy, ScratchDir, TcpServer, ALERT_TIMEOUT,
    EPERM_MESSAGE, LOOPBACK_V4, SETTLE_TIME,
};
use serde_json::Value;

/// The host directories the workload's programs come from, read-only (as in the Podman test:
/// the image itself is empty).
const HOST_DIRS: [&str; 5] = ["/usr", "/lib", "/lib64", "/bin", "/etc"];

fn host_mounts(extra: &[(&Path, bool)]) -> Vec<(PathBuf, bool)> {
    HOST_DIRS
        .iter()
        .map(|d| (PathBuf::from(d), true))
        .chain(extra.iter().map(|(p, ro)| (p.to_path_buf(), *ro)))
        .collect()
}

/// A pod UID in Kubernetes' form (a UUID), unique per test process.
fn pod_uid(n: u32) -> String {
    format!("6b1f2c3d-4e5f-4a6b-8c7d-{:08x}{n:04x}", std::process::id())
}

fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether any process still names `needle` on its command line (a shim of our containerd).
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(dir.as_ref()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_cri_pod_has_the_kubernetes_annotations_in_its_bundle() {
    if !require_kernel_support() {
        return;
    }
    let Some(mut containerd) = Containerd::start() else {
        return;
    };
    let (pod_name, namespace, uid, container) = ("checkout-7d9f", "shop", pod_uid(1), "app");
    let command = ["/bin/sh", "-c", "echo pod-ready; exec sleep 600"].map(str::to_owned);
    let pod = containerd.run_pod(
        pod_name,
        namespace,
        &uid,
        container,
        &command,
        &host_mounts(&[]),
    );
    containerd.wait_for_log(&pod, "pod-ready", Duration::from_secs(30));

    // The bundle, where the shim runs (its working directory).
    let bundle = containerd.bundle_dir(&pod.container_id);
    let spec = read_json(&bundle.join("config.json"));
    let annotations = &spec["annotations"];
    for (key, want) in [
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.container-name", container),
        ("io.kubernetes.cri.image-name", APP_IMAGE),
        ("io.kubernetes.cri.sandbox-id", pod.sandbox_id.as_str()),
        ("io.kubernetes.cri.sandbox-name", pod_name),
        ("io.kubernetes.cri.sandbox-namespace", namespace),
        ("io.kubernetes.cri.sandbox-uid", uid.as_str()),
    ] {
        assert_eq!(annotations[key], want, "{key}: {annotations:#}");
    }
    let sandbox_spec = read_json(&containerd.bundle_dir(&pod.sandbox_id).join("config.json"));
    assert_eq!(
        sandbox_spec["annotations"]["io.kubernetes.cri.container-type"], "sandbox",
        "{:#}",
        sandbox_spec["annotations"]
    );

    // runc's state names the bundle and the main process.
    let state_path = containerd.runc_state(&pod.container_id);
    let state = read_json(&state_path);
    let labels: Vec<&str> = state["config"]["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let bundle_label = format!("bundle={}", bundle.display());
    assert!(labels.contains(&bundle_label.as_str()), "{labels:?}");
    assert_eq!(
        state["init_process_pid"],
        pod.pid,
        "{}",
        state_path.display()
    );

    // The container's process is a child of the pod's shim (one per pod, named by the sandbox
    // id), which runs in the sandbox's bundle: the bundles' directory is the parent of the
    // shim's working directory.
    let stat = fs::read_to_string(format!("/proc/{}/stat", pod.pid)).expect("the process's stat");
    let ppid: u32 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no ppid in {stat}"));
    let shim_exe = fs::read_link(format!("/proc/{ppid}/exe")).expect("the parent's exe");
    assert!(
        shim_exe.ends_with("containerd-shim-runc-v2"),
        "parent {ppid} is {}",
        shim_exe.display()
    );
    let shim_cwd = fs::read_link(format!("/proc/{ppid}/cwd")).expect("the shim's cwd");
    assert_eq!(shim_cwd, containerd.bundle_dir(&pod.sandbox_id));
    assert_eq!(shim_cwd.parent(), bundle.parent());

    // The container's own cgroup v2 directory holds its process.
    let procs = fs::read_to_string(pod.cgroup_v2_path.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("{}: {e}", pod.cgroup_v2_path.display()));
    assert!(
        procs.lines().any(|l| l.trim() == pod.pid.to_string()),
        "pid {} not in {}: {procs}",
        pod.pid,
        pod.cgroup_v2_path.display()
    );
    assert!(
        pod.cgroup_v2_path.ends_with(&pod.container_id),
        "the cgroup is the container's: {}",
        pod.cgroup_v2_path.display()
    );
    eprintln!(
        "bundle config: {}\nrunc state: {}\ncgroup v2: {}",
        bundle.join("config.json").display(),
        state_path.display(),
        pod.cgroup_v2_path.display()
    );

    // Dropping the harness leaves no shim, no mount, no cgroup behind.
    let state_dir = containerd.state_dir();
    let socket_dir = state_dir.parent().expect("a scratch dir").to_owned();
    let cgroup = pod.cgroup_v2_path.clone();
    drop(containerd);
    assert_eq!(
        processes_naming(&socket_dir.to_string_lossy()),
        Vec::<String>::new(),
        "processes of the test's containerd are left"
    );
    assert_eq!(mounts_under(&socket_dir), Vec::<String>::new());
    assert!(!cgroup.exists(), "{} is left", cgroup.display());
    assert!(!socket_dir.exists(), "{} is left", socket_dir.display());
}

/// Where the detector runs: on the node, or from its image as the DaemonSet runs it.
enum Watcher {
    Host(Detector),
    DaemonSetPod { podman: Podman, name: String },
}

impl Watcher {
    /// The detector in enforce mode, scoped to `cgroup`, ready.
    fn start(in_image: bool, cgroup: &Path) -> Option<Watcher> {
        if !in_image {
            let policy = Policy::new(Mode::Enforce);
            return Some(Watcher::Host(Detector::start_scoped(
                &policy.to_toml(),
                Mode::Enforce,
                cgroup,
                |l| l,
            )));
        }
        let mut podman = Podman::new()?;
        let name = format!("detector-cri-{}", std::process::id());
        let args = [
            "--mode".to_owned(),
            "enforce".to_owned(),
            "--cgroup".to_owned(),
            cgroup.to_string_lossy().into_owned(),
        ];
        let configmaps = ScratchDir::new("cri-configmaps");
        let mut run = vec!["run".to_owned(), "--detach".to_owned()];
        run.extend(kubernetes::daemonset_podman_run(
            &name,
            "node-under-test",
            &args,
            configmaps.path(),
        ));
        let run: Vec<&str> = run.iter().map(String::as_str).collect();
        podman.run(&run);
        podman.containers.push(name.clone());
        podman.wait_for_log(&name, "detector ready", Duration::from_secs(60));
        Some(Watcher::DaemonSetPod { podman, name })
    }

    /// Every alert, once a shell alert came and the detector had time to say the rest.
    fn alerts_after_the_shell(&mut self) -> Vec<Value> {
        match self {
            Watcher::Host(detector) => {
                detector.wait_for_alerts(alert::is_shell_spawn, 1, ALERT_TIMEOUT);
                detector.alerts_after(SETTLE_TIME)
            }
            Watcher::DaemonSetPod { podman, name } => {
                podman.wait_for_log(name, "jvm_shell_spawn", ALERT_TIMEOUT);
                std::thread::sleep(SETTLE_TIME);
                podman
                    .logs(name)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|v| v.get("rule").is_some())
                    .collect()
            }
        }
    }

    /// Stops the detector (SIGTERM): its stats line.
    fn stop(&mut self) -> Value {
        match self {
            Watcher::Host(detector) => detector.stop(),
            Watcher::DaemonSetPod { podman, name } => {
                podman.run(&["stop", "-t", "20", name]);
                let logs = podman.logs(name);
                logs.lines()
                    .find_map(|l| l.strip_prefix("detector stats "))
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_else(|| panic!("no stats line:\n{logs}"))
            }
        }
    }
}

/// A JVM in a CRI pod, attacked: its LDAP callback is denied at connect(), its shell killed
/// before it runs, and every alert names the container (id, name, image, runtime) and the
/// pod (name, namespace, UID), read from containerd's state on the node.
fn cri_pod_attacked(in_image: bool) {
    if !require_kernel_support() {
        return;
    }
    let Some(mut containerd) = Containerd::start() else {
        return;
    };
    let scratch = ScratchDir::new("cri-victim");
    let classes = compile_java();
    let canary = scratch.file("canary");
    let go = scratch.file("go");
    let (pod_name, namespace, uid, container) = ("orders-5c8b", "shop", pod_uid(2), "app");
    let command = [
        "/usr/bin/java".to_owned(),
        "-cp".to_owned(),
        classes.to_string_lossy().into_owned(),
        "WaitThenShell".to_owned(),
        canary.to_string_lossy().into_owned(),
        go.to_string_lossy().into_owned(),
        // The pod shares the node's network (and loopback): the callback goes to a server
        // here, which must never see it.
        "ldap://127.0.0.1:1389/x".to_owned(),
    ];
    let server = TcpServer::silent(LOOPBACK_V4, 1389);
    let pod: RunningPod = containerd.run_pod(
        pod_name,
        namespace,
        &uid,
        container,
        &command,
        &host_mounts(&[(classes, true), (scratch.path(), false)]),
    );
    containerd.wait_for_log(&pod, "jvm-pid", Duration::from_secs(60));

    // The detector, scoped to the container's cgroup: the JVM was there first.
    let Some(mut watcher) = Watcher::start(in_image, &pod.cgroup_v2_path) else {
        return;
    };
    fs::write(&go, "").expect("the go file");
    let alerts = watcher.alerts_after_the_shell();
    let logs = containerd.logs(&pod);
    assert!(!canary.exists(), "the shell ran in enforce mode:\n{logs}");
    let shell: Vec<&Value> = alerts.iter().filter(|a| alert::is_shell_spawn(a)).collect();
    assert_eq!(shell.len(), 1, "{alerts:#?}");
    assert_eq!(
        shell[0]["action"],
        Mode::Enforce.expected_action(),
        "{}",
        alert::pretty(shell[0])
    );
    // The LDAP callback was denied at connect(): the JVM saw EPERM, the server nothing.
    let ldap = alerts
        .iter()
        .find(|a| a["rule"] == alert::LDAP_EGRESS)
        .unwrap_or_else(|| panic!("no {} alert: {alerts:#?}", alert::LDAP_EGRESS));
    assert_eq!(ldap["action"], "blocked", "{}", alert::pretty(ldap));
    assert!(
        logs.lines()
            .any(|l| l.starts_with("lookup-error") && l.contains(EPERM_MESSAGE)),
        "the lookup was not denied:\n{logs}"
    );
    assert_eq!(
        server.accepted(),
        0,
        "the blocked lookup reached {server:?}"
    );

    // The enrichment. This containerd keeps its state in a scratch directory, not
    // /run/containerd: the daemon finds the container's bundle from its process (the parent
    // shim's working directory is the sandbox's bundle, a sibling of the container's, see
    // the test above), as on k3s or any node with a non-default state directory. From the
    // image, through the shim's /proc/PID/root: no host mounts.
    for found in [shell[0], ldap] {
        for (pointer, want) in [
            ("/container/id", pod.container_id.as_str()),
            ("/container/name", container),
            ("/container/image", APP_IMAGE),
            ("/container/runtime", "containerd"),
            ("/kubernetes/pod", pod_name),
            ("/kubernetes/namespace", namespace),
            ("/kubernetes/uid", uid.as_str()),
        ] {
            assert_eq!(
                found.pointer(pointer).and_then(Value::as_str),
                Some(want),
                "{pointer}: {}",
                alert::pretty(found)
            );
        }
    }

    assert_nothing_lost(&watcher.stop());
}

#[test]
fn a_cri_pod_attacked_with_the_detector_on_the_node() {
    cri_pod_attacked(false);
}

/// The detector from its image (`cargo xtask image`), with the DaemonSet's pod template
/// played by Podman (src/kubernetes.rs).
#[test]
fn a_cri_pod_attacked_with_the_detector_in_its_daemonset_pod() {
    cri_pod_attacked(true);
}
