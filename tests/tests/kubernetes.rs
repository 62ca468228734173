//! The Kubernetes deployment (deploy/kubernetes) and the image (`cargo xtask image`).
//!
//! Offline: the manifests parse and round-trip through Kubernetes' own API types (the schema
//! check: no field the API lacks); the DaemonSet asks for exactly the capabilities `detector
//! doctor` says the daemon uses, no `privileged`, the host's PID namespace, the mounts the
//! daemon reads, the node name from the downward API, probes and metrics on the port the
//! daemon serves, every node tolerated; the policy it ships passes `check-config`.
//!
//! In a real container runtime (Podman): a JVM runs in a pod of its own (started first, as on
//! a node where the detector is deployed after the workloads); the detector runs from its
//! image with the DaemonSet's pod template (src/kubernetes.rs translates it into `podman
//! run`), scoped to the JVM's container cgroup and in enforce mode. The JVM's LDAP callback is denied at connect() and its shell is killed
//! before it runs (no canary), and the alert names the JVM's container (id, name, image and runtime,
//! from Podman's state on the node) and the node (not the
//! detector's pod).

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::Duration,
};

use integration_tests::{
    assert_nothing_lost, compile_java, detector_binary, kubernetes, podman::Podman,
    require_kernel_support, ScratchDir,
};
use serde_json::{json, Value};

fn daemonset_container() -> Value {
    kubernetes::manifest("DaemonSet")["spec"]["template"]["spec"]["containers"][0].clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `value` with the members whose value is `null` removed, at every depth (the typed model
/// writes absent optional fields as absent).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The document read as Kubernetes' own type `T` and written back: the API's fields only.
fn through_api_types<T>(doc: &Value) -> Value
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} is not a valid {}: {e}", doc["kind"], doc["kind"]));
    serde_json::to_value(typed).expect("serialises")
}

/// The schema check, offline: every manifest (and the ConfigMap kustomize generates) is read
/// as Kubernetes' own API type of its kind and written back unchanged — a field the API does
/// not have (a typo, a field in the wrong place) is dropped by the typed model and shows as a
/// difference; a value of the wrong type fails to read.
#[test]
fn the_manifests_match_the_kubernetes_api_schema() {
    use k8s_openapi::api::{
        apps::v1::DaemonSet,
        core::v1::{ConfigMap, Namespace, ServiceAccount},
    };
    let mut docs = kubernetes::manifests();
    docs.push(kubernetes::policy_configmap());
    let mut kinds = Vec::new();
    for doc in &docs {
        let kind = doc["kind"].as_str().expect("every document has a kind");
        let back = match kind {
            "Namespace" => through_api_types::<Namespace>(doc),
            "ServiceAccount" => through_api_types::<ServiceAccount>(doc),
            "DaemonSet" => through_api_types::<DaemonSet>(doc),
            "ConfigMap" => through_api_types::<ConfigMap>(doc),
            other => panic!("no schema check for kind {other}: add its API type here"),
        };
        assert_eq!(
            without_nulls(&back),
            without_nulls(doc),
            "{kind}: fields the Kubernetes API does not have were dropped (left: as the API reads it)"
        );
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "DaemonSet", "ConfigMap"]
    );

    // The check itself catches a misspelt field.
    let mut typo = kubernetes::manifest("DaemonSet");
    typo["spec"]["template"]["spec"]["hostPid"] = json!(true);
    assert_ne!(
        without_nulls(&through_api_types::<DaemonSet>(&typo)),
        without_nulls(&typo)
    );
}

#[test]
fn the_daemonset_asks_for_what_the_daemon_needs_and_no_more() {
    let daemonset = kubernetes::manifest("DaemonSet");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "it watches every process of the node");
    assert_eq!(pod["tolerations"], json!([{ "operator": "Exists" }]));
    assert_eq!(pod["automountServiceAccountToken"], false);
    let container = daemonset_container();
    let security = &container["securityContext"];
    assert_eq!(security["privileged"], false);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);

    // The capabilities doctor checks, required and optional, are exactly those added.
    let doctor = Command::new(detector_binary())
        .args(["doctor", "--json", "--no-load"])
        .output()
        .expect("detector doctor runs");
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {}",
            String::from_utf8_lossy(&doctor.stdout)
        )
    });
    let mut wanted: Vec<String> = report["checks"]
        .as_array()
        .expect("doctor's checks")
        .iter()
        .filter_map(|c| c["name"].as_str()?.strip_prefix("CAP_").map(str::to_owned))
        .collect();
    let mut added = strings(&security["capabilities"]["add"]);
    wanted.sort();
    added.sort();
    assert_eq!(
        added, wanted,
        "the pod's capabilities and doctor's disagree"
    );

    // What the daemon reads is mounted from the host.
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_owned(),
                m["mountPath"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (path, host) in [
        ("/sys/fs/cgroup", true),
        ("/sys/kernel/btf", true),
        ("/sys/fs/bpf", true),
        ("/var/lib/detector", true),
        ("/etc/detector", false),
    ] {
        let (name, _) = mounts
            .iter()
            .find(|(_, p)| p == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}: {mounts:?}"));
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no volume {name}"));
        assert_eq!(volume.get("hostPath").is_some(), host, "{path}: {volume}");
    }

    // The node's name, the metrics port, the probes.
    let env = &container["env"];
    assert!(
        env.as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == "NODE_NAME"
                && v.pointer("/valueFrom/fieldRef/fieldPath") == Some(&json!("spec.nodeName"))),
        "{env}"
    );
    let args = strings(&container["args"]);
    let port = container["ports"][0]["containerPort"]
        .as_u64()
        .expect("a port");
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--metrics" && w[1] == format!("0.0.0.0:{port}")),
        "{args:?}"
    );
    let annotations = &daemonset["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["image"],
        format!("localhost/detector:{}", env!("CARGO_PKG_VERSION")),
        "the image `cargo xtask image` builds"
    );

    // The policy the ConfigMap carries is valid, and lands where the daemon reads it.
    let configmap = kubernetes::policy_configmap();
    let scratch = ScratchDir::new("k8s-policy");
    for (file, text) in configmap["data"].as_object().expect("data") {
        let path = scratch.file(file);
        std::fs::write(&path, text.as_str().expect("text")).expect("writing the policy");
        let check = Command::new(detector_binary())
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("check-config runs");
        assert!(
            check.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(
            args.iter().any(|a| a == &format!("/etc/detector/{file}")),
            "{args:?}"
        );
    }
}

/// An image with nothing in it: the victim's programs come from the host's read-only mounts.
fn base_image(podman: &Podman) -> &'static str {
    const BASE: &str = "localhost/detector-test-base:1";
    let exists = podman
        .cmd()
        .args(["image", "exists", BASE])
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let dir = ScratchDir::new("base-image");
        let tar = dir.file("empty.tar");
        let made = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .args(["--files-from", "/dev/null"])
            .status()
            .expect("tar runs");
        assert!(made.success());
        podman.run(&["import", &tar.to_string_lossy(), BASE]);
    }
    BASE
}

fn host_path(name: &str, path: &Path, read_only: bool) -> (Value, Value) {
    (
        json!({ "name": name, "hostPath": { "path": path } }),
        json!({ "name": name, "mountPath": path, "readOnly": read_only }),
    )
}

/// The cgroup v2 directory of the container's main process, as a path under the mount.
fn container_cgroup(podman: &Podman, container: &str) -> (String, PathBuf) {
    let id = podman.run(&["inspect", container, "--format", "{{.Id}}"]);
    let pid = podman.run(&["inspect", container, "--format", "{{.State.Pid}}"]);
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroup");
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 path");
    let mount = testkit::cgroup::cgroup2_mount().expect("cgroup v2");
    (id, mount.join(path.trim_start_matches('/')))
}

#[test]
fn the_daemonset_pod_kills_a_containers_jvm_shell() {
    if !require_kernel_support() {
        return;
    }
    let Some(mut podman) = Podman::new() else {
        return;
    };
    let unique = std::process::id();
    let scratch = ScratchDir::new("k8s-victim");
    let classes = compile_java();
    let canary = scratch.file("canary");
    let go = scratch.file("go");

    // The workload: a JVM in a pod, from the host's JDK through read-only mounts.
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, dir) in ["/usr", "/lib", "/lib64", "/bin", "/etc"]
        .iter()
        .enumerate()
    {
        let (v, m) = host_path(&format!("host{i}"), Path::new(dir), true);
        volumes.push(v);
        mounts.push(m);
    }
    for (name, dir, ro) in [("classes", classes, true), ("work", scratch.path(), false)] {
        let (v, m) = host_path(name, dir, ro);
        volumes.push(v);
        mounts.push(m);
    }
    let victim_pod = format!("victim-{unique}");
    podman.play(&json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": victim_pod, "namespace": "shop" },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "app",
                "image": base_image(&podman),
                // The JNDI callback first (to the pod's own loopback: it has no network),
                // then the shell.
                "command": ["/usr/bin/java", "-cp", classes, "WaitThenShell", canary, go,
                            "ldap://127.0.0.1:1389/x"],
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    }));
    let victim = format!("{victim_pod}-app");
    podman.wait_for_log(&victim, "jvm-pid", Duration::from_secs(60));
    let (victim_id, cgroup) = container_cgroup(&podman, &victim);

    // The detector, from its image, as the DaemonSet runs it; scoped to the victim.
    let detector = format!("detector-{unique}");
    let args = [
        "--mode".to_owned(),
        "enforce".to_owned(),
        "--cgroup".to_owned(),
        cgroup.to_string_lossy().into_owned(),
    ];
    let configmaps = ScratchDir::new("k8s-configmaps");
    let mut run = vec!["run".to_owned(), "--detach".to_owned()];
    run.extend(kubernetes::daemonset_podman_run(
        &detector,
        "node-under-test",
        &args,
        configmaps.path(),
    ));
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    podman.run(&run);
    podman.containers.push(detector.clone());
    podman.wait_for_log(&detector, "detector ready", Duration::from_secs(60));

    std::fs::write(&go, "").expect("go file");
    let logs = podman.wait_for_log(&detector, "jvm_shell_spawn", Duration::from_secs(30));
    let alert: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["rule"] == "jvm_shell_spawn")
        .unwrap_or_else(|| panic!("no alert line:\n{logs}"));
    assert_eq!(alert["action"], "killed", "{alert:#}");
    assert_eq!(
        alert["host"], "node-under-test",
        "the node's name, not the pod's: {alert:#}"
    );
    // Named from Podman's own state on the node, read through /proc/1/root from the
    // detector's container. (Podman keeps pod names only in its database: no `kubernetes`.)
    let container = &alert["container"];
    assert_eq!(container["id"], victim_id.as_str(), "{alert:#}");
    assert_eq!(container["name"], victim.as_str(), "{alert:#}");
    assert_eq!(container["image"], base_image(&podman), "{alert:#}");
    assert_eq!(container["runtime"], "podman", "{alert:#}");
    thread::sleep(Duration::from_secs(1));
    assert!(!canary.exists(), "the shell ran in enforce mode:\n{logs}");
    let ldap: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["rule"] == "jvm_ldap_egress")
        .unwrap_or_else(|| panic!("no jvm_ldap_egress alert:\n{logs}"));
    assert_eq!(ldap["action"], "blocked", "{ldap:#}");
    assert_eq!(ldap["container"]["name"], victim.as_str(), "{ldap:#}");
    let victim_logs = podman.logs(&victim);
    assert!(
        victim_logs
            .lines()
            .any(|l| l.starts_with("lookup-error") && l.contains("Operation not permitted")),
        "the lookup was not denied at connect():\n{victim_logs}"
    );

    // A clean stop: SIGTERM, drain, the stats line.
    podman.run(&["stop", "-t", "20", &detector]);
    let logs = podman.logs(&detector);
    let stats: Value = logs
        .lines()
        .find_map(|l| l.strip_prefix("detector stats "))
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| panic!("no stats line:\n{logs}"));
    assert_nothing_lost(&stats);
}
