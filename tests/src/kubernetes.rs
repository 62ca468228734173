//! The Kubernetes manifests (deploy/kubernetes) as the tests read them, and the one place that
//! turns the DaemonSet's pod template into a Pod that `podman kube play` runs on this machine.
//!
//! The translation keeps the template as it is — image, arguments, environment, security
//! context (user, capabilities, read-only root, no privilege escalation), hostPID, volumes and
//! mounts, resources — except where Podman has no equivalent:
//! - `env[].valueFrom.fieldRef: spec.nodeName` (the downward API) becomes the node name given;
//! - `ports` are dropped (the pod runs without a network: `--network none`) and the probes
//!   name the port by number;
//! - `seccompProfile: Unconfined` becomes Podman's annotation for it (Podman 4.3 reads only
//!   the annotation);
//! - the ConfigMap that kustomize generates from policy.toml is written out for
//!   `--configmap`.
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

/// The DaemonSet's pod template as a Pod named `name`, for `podman kube play` (module docs).
pub fn daemonset_pod(name: &str, node_name: &str, extra_args: &[String]) -> Value {
    let daemonset = manifest("DaemonSet");
    let template = &daemonset["spec"]["template"];
    let mut spec = template["spec"].clone();
    let mut annotations = template["metadata"]["annotations"].clone();
    let containers = spec["containers"]
        .as_array_mut()
        .expect("the pod template has containers");
    for container in containers {
        if let Some(args) = container["args"].as_array_mut() {
            args.extend(extra_args.iter().map(|a| json!(a)));
        }
        if let Some(env) = container["env"].as_array_mut() {
            for var in env {
                if var.pointer("/valueFrom/fieldRef/fieldPath") == Some(&json!("spec.nodeName")) {
                    *var = json!({ "name": var["name"], "value": node_name });
                }
            }
        }
        let ports = container
            .as_object_mut()
            .and_then(|c| c.remove("ports"))
            .unwrap_or_default();
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let port = &mut container[probe]["httpGet"]["port"];
            if let Some(named) = port.as_str() {
                let number = ports
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == named)
                    .map(|p| p["containerPort"].clone())
                    .unwrap_or_else(|| panic!("{probe} names an unknown port {named}"));
                *port = number;
            }
        }
        if container.pointer("/securityContext/seccompProfile/type") == Some(&json!("Unconfined")) {
            annotations["seccomp.security.alpha.kubernetes.io/pod"] = json!("unconfined");
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": daemonset["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
        },
        "spec": spec,
    })
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
