//! The Kubernetes manifests (deploy/kubernetes) as the tests read them, and the one place that
//! turns the DaemonSet's pod template into a `podman run` of its container on this machine.
//!
//! `podman kube play` would be the obvious player, but Podman 4.3 (Debian 12) ignores
//! `hostPID` there, and the daemon cannot watch the node without it. So the template is
//! translated field by field, and a field this translation does not know fails the test
//! rather than being dropped: image, arguments, environment, user, capabilities, privilege
//! escalation, read-only root, seccomp, hostPID, hostPath and ConfigMap volumes with their
//! mounts, memory limit. Where Podman has no equivalent:
//! - `env[].valueFrom.fieldRef: spec.nodeName` (the downward API) becomes the node name given;
//! - ports and probes are not played (the container runs without a network: `--network none`);
//! - the ConfigMap kustomize generates from policy.toml is written to a directory that is
//!   mounted where the ConfigMap volume would be.
//!
//! Tests may add daemon arguments (a `--cgroup` scope, `--mode`): enforcement runs in this
//! machine's kernel.

use std::path::Path;

use serde::Deserialize as _;
use serde_json::{json, Value};

/// deploy/kubernetes/detector.yaml's documents, in order.
pub fn manifests() -> Vec<Value> {
    let path = crate::workspace_root().join("deploy/kubernetes/detector.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The manifest of `kind`.
pub fn manifest(kind: &str) -> Value {
    manifests()
        .into_iter()
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("deploy/kubernetes/detector.yaml has no {kind}"))
}

/// Pod-level fields the translation handles (or deliberately leaves to Kubernetes).
const POD_FIELDS: [&str; 9] = [
    "serviceAccountName",
    "automountServiceAccountToken",
    "hostPID",
    "hostNetwork",
    "priorityClassName",
    "tolerations",
    "terminationGracePeriodSeconds",
    "containers",
    "volumes",
];

/// Container-level fields the translation handles (ports and probes are not played).
const CONTAINER_FIELDS: [&str; 12] = [
    "name",
    "image",
    "imagePullPolicy",
    "args",
    "env",
    "ports",
    "startupProbe",
    "readinessProbe",
    "livenessProbe",
    "resources",
    "securityContext",
    "volumeMounts",
];

/// `podman run` arguments (after `run`) that run the DaemonSet's container as `name`, with
/// `extra_args` after the template's; ConfigMap volumes are written under `configmaps`.
pub fn daemonset_podman_run(
    name: &str,
    node_name: &str,
    extra_args: &[String],
    configmaps: &Path,
) -> Vec<String> {
    let daemonset = manifest("DaemonSet");
    let pod = &daemonset["spec"]["template"]["spec"];
    for key in pod.as_object().expect("a pod spec").keys() {
        assert!(
            POD_FIELDS.contains(&key.as_str()),
            "pod field {key} is not translated"
        );
    }
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    let c = &containers[0];
    for key in c.as_object().expect("a container").keys() {
        assert!(
            CONTAINER_FIELDS.contains(&key.as_str()),
            "container field {key} is not translated"
        );
    }
    let mut run: Vec<String> = ["--name", name, "--network", "none"]
        .map(str::to_owned)
        .to_vec();
    if pod["hostPID"] == true {
        run.extend(["--pid".to_owned(), "host".to_owned()]);
    }
    let security = &c["securityContext"];
    let user = format!(
        "{}:{}",
        security["runAsUser"].as_u64().unwrap_or(0),
        security["runAsGroup"].as_u64().unwrap_or(0)
    );
    run.extend(["--user".to_owned(), user]);
    assert_ne!(
        security["privileged"], true,
        "a privileged pod is not translated"
    );
    for cap in security["capabilities"]["drop"]
        .as_array()
        .into_iter()
        .flatten()
    {
        run.push(format!(
            "--cap-drop={}",
            cap.as_str().expect("a name").to_lowercase()
        ));
    }
    for cap in security["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
    {
        run.push(format!("--cap-add=CAP_{}", cap.as_str().expect("a name")));
    }
    if security["allowPrivilegeEscalation"] == false {
        run.push("--security-opt=no-new-privileges".to_owned());
    }
    if security["readOnlyRootFilesystem"] == true {
        run.push("--read-only".to_owned());
    }
    match security
        .pointer("/seccompProfile/type")
        .and_then(Value::as_str)
    {
        Some("Unconfined") => run.push("--security-opt=seccomp=unconfined".to_owned()),
        None | Some("RuntimeDefault") => {}
        Some(other) => panic!("seccomp profile {other} is not translated"),
    }
    if let Some(memory) = c
        .pointer("/resources/limits/memory")
        .and_then(Value::as_str)
    {
        let bytes = memory
            .strip_suffix("Mi")
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| n << 20)
            .unwrap_or_else(|| panic!("memory limit {memory} is not translated"));
        run.push(format!("--memory={bytes}"));
    }
    for var in c["env"].as_array().into_iter().flatten() {
        let value = match var
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            Some("spec.nodeName") => node_name.to_owned(),
            Some(other) => panic!("env fieldRef {other} is not translated"),
            None => var["value"].as_str().expect("a value").to_owned(),
        };
        run.push(format!(
            "--env={}={value}",
            var["name"].as_str().expect("a name")
        ));
    }
    let volumes = pod["volumes"].as_array().expect("volumes");
    for mount in c["volumeMounts"].as_array().into_iter().flatten() {
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume for {mount}"));
        let source = if let Some(path) = volume.pointer("/hostPath/path").and_then(Value::as_str) {
            if volume.pointer("/hostPath/type") == Some(&json!("DirectoryOrCreate")) {
                std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("creating {path}: {e}"));
            }
            path.to_owned()
        } else if let Some(map) = volume.pointer("/configMap/name").and_then(Value::as_str) {
            let configmap = policy_configmap();
            assert_eq!(
                configmap["metadata"]["name"], map,
                "only the policy ConfigMap is known"
            );
            let dir = configmaps.join(map);
            std::fs::create_dir_all(&dir).expect("configmap dir");
            for (file, text) in configmap["data"].as_object().expect("data") {
                std::fs::write(dir.join(file), text.as_str().expect("text"))
                    .expect("configmap file");
            }
            dir.to_string_lossy().into_owned()
        } else {
            panic!("volume {volume} is not translated")
        };
        let ro = if mount["readOnly"] == true { ":ro" } else { "" };
        run.push(format!(
            "--volume={source}:{}{ro}",
            mount["mountPath"].as_str().expect("a mount path")
        ));
    }
    run.push(c["image"].as_str().expect("an image").to_owned());
    run.extend(
        c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().expect("an argument").to_owned()),
    );
    run.extend(extra_args.iter().cloned());
    run
}

/// The ConfigMap kustomize generates from deploy/kubernetes/policy.toml
/// (kustomization.yaml's `configMapGenerator`), without its hash suffix.
pub fn policy_configmap() -> Value {
    let dir = crate::workspace_root().join("deploy/kubernetes");
    let kustomization: Value = serde_norway::from_str(&read(&dir.join("kustomization.yaml")))
        .expect("kustomization.yaml parses");
    let generator = &kustomization["configMapGenerator"][0];
    let mut data = serde_json::Map::new();
    for file in generator["files"].as_array().expect("generator files") {
        let file = file.as_str().expect("a file name");
        data.insert(file.to_owned(), json!(read(&dir.join(file))));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": generator["name"], "namespace": generator["namespace"] },
        "data": data,
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
