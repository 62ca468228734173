//! Who a container is: its name, image and runtime, and the Kubernetes pod it belongs to,
//! read from the container runtime's own state on the node — never from the API server.
//!
//! The cgroup path gives a container id (see `alert::container_from_cgroup`); the runtime
//! keeps, per container id, the OCI bundle it started the container from. Every runtime in
//! use runs containers through runc or crun, which keep a state file per container naming the
//! bundle (`bundle=<dir>` among the `labels` of runc's `state.json`, `bundle` in crun's
//! `status`). The bundle's `config.json` carries the annotations the runtime wrote:
//!
//! - containerd's CRI plugin: `io.kubernetes.cri.{container-name,image-name,sandbox-name,
//!   sandbox-namespace,sandbox-uid}`;
//! - CRI-O (and Docker under kubelet): `io.kubernetes.{container.name,pod.name,pod.namespace,
//!   pod.uid}` and `io.kubernetes.cri-o.ImageName`;
//! - Podman writes no names into the bundle: its container store's `containers.json`, next to
//!   the bundle, holds the container's name and image; Podman keeps pod names only in its
//!   database, so a Podman container has no `kubernetes` part;
//! - Docker: its `config.v2.json` (name, image, labels).
//!
//! Lookups happen when an alert is built (rare), one per container id: found entries are kept
//! (a container id never changes its name or image), misses are retried after
//! [`RETRY_MISS`], and the cache is bounded.
//!
//! The files are read where the runtime sees them: through `/proc/PID/root` of the JVM's
//! nearest ancestor outside the JVM's mount namespace — the runtime's shim (conmon,
//! containerd-shim), which runs in the runtime's own mount namespace — then through
//! `/proc/1/root`, then in the daemon's own namespace. From a DaemonSet pod this needs
//! hostPID and `CAP_SYS_PTRACE` (to open another mount namespace's root), no host mounts.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Deserialize;

/// The container runtime that runs a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
    /// runc or crun driven by something we do not recognise.
    Oci,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Oci => "oci",
        }
    }
}

/// The Kubernetes pod a container belongs to, as its runtime was told by kubelet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
}

impl Pod {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.namespace.is_none() && self.uid.is_none()
    }
}

/// What the runtime says about one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerMeta {
    pub runtime: Runtime,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<Pod>,
}

/// The annotation keys each family of runtimes writes, in the order they are tried.
const NAME_KEYS: &[&str] = &[
    "io.kubernetes.cri.container-name",
    "io.kubernetes.container.name",
    "nerdctl/name",
];
const IMAGE_KEYS: &[&str] = &[
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
    "io.kubernetes.cri-o.Image",
];
const POD_NAME_KEYS: &[&str] = &["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"];
const POD_NAMESPACE_KEYS: &[&str] = &[
    "io.kubernetes.cri.sandbox-namespace",
    "io.kubernetes.pod.namespace",
];
const POD_UID_KEYS: &[&str] = &["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"];

fn first(annotations: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| annotations.get(*k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Which runtime wrote these annotations, when they say so.
fn runtime_of(annotations: &BTreeMap<String, String>) -> Option<Runtime> {
    if annotations.get("io.container.manager").map(String::as_str) == Some("libpod") {
        // Podman borrows CRI-O's annotation names, so it is recognised first.
        Some(Runtime::Podman)
    } else if annotations
        .keys()
        .any(|k| k.starts_with("io.kubernetes.cri."))
    {
        Some(Runtime::Containerd)
    } else if annotations
        .keys()
        .any(|k| k.starts_with("io.kubernetes.cri-o."))
    {
        Some(Runtime::CriO)
    } else {
        None
    }
}

/// What a set of annotations (or Docker labels) says; `hint` is the runtime the state file's
/// location implies, used when the annotations do not say.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
    hint: Option<Runtime>,
) -> ContainerMeta {
    let pod = Pod {
        name: first(annotations, POD_NAME_KEYS),
        namespace: first(annotations, POD_NAMESPACE_KEYS),
        uid: first(annotations, POD_UID_KEYS),
    };
    ContainerMeta {
        runtime: runtime_of(annotations).or(hint).unwrap_or(Runtime::Oci),
        name: first(annotations, NAME_KEYS),
        image: first(annotations, IMAGE_KEYS),
        pod: (!pod.is_empty()).then_some(pod),
    }
}

/// The annotations of an OCI runtime-spec `config.json`.
pub fn bundle_annotations(config_json: &str) -> Result<BTreeMap<String, String>, String> {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    serde_json::from_str::<Spec>(config_json)
        .map(|s| s.annotations)
        .map_err(|e| e.to_string())
}

/// The bundle directory a runc `state.json` (`config.labels` has `bundle=<dir>`) or a crun
/// `status` file (`bundle`) names.
pub fn bundle_of_state(state_json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        labels: Vec<String>,
    }
    #[derive(Deserialize)]
    struct State {
        config: Option<Config>,
        bundle: Option<String>,
    }
    let state: State = serde_json::from_str(state_json).ok()?;
    state.bundle.or_else(|| {
        state
            .config?
            .labels
            .into_iter()
            .find_map(|l| l.strip_prefix("bundle=").map(str::to_owned))
    })
}

/// The name and image a Podman (containers/storage) `containers.json` records for `id`.
pub fn podman_names(containers_json: &str, id: &str) -> Option<(Option<String>, Option<String>)> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        names: Vec<String>,
        /// A JSON document in a string: `{"image-name": ..., "name": ...}`.
        #[serde(default)]
        metadata: String,
    }
    #[derive(Deserialize, Default)]
    struct Metadata {
        name: Option<String>,
        #[serde(rename = "image-name")]
        image_name: Option<String>,
    }
    let entries: Vec<Entry> = serde_json::from_str(containers_json).ok()?;
    let entry = entries.into_iter().find(|e| e.id == id)?;
    let metadata: Metadata = serde_json::from_str(&entry.metadata).unwrap_or_default();
    let name = metadata.name.or_else(|| entry.names.into_iter().next());
    Some((name, metadata.image_name))
}

/// What Docker's `config.v2.json` says: its name (without the leading `/`), its image, and
/// the pod its kubelet labels name.
pub fn docker_meta(config_v2_json: &str) -> Option<ContainerMeta> {
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Image")]
        image: Option<String>,
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Name")]
        name: Option<String>,
        #[serde(rename = "Config")]
        config: Option<Inner>,
    }
    let config: Config = serde_json::from_str(config_v2_json).ok()?;
    let inner = config.config;
    let labels = inner
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let mut meta = from_annotations(&labels, Some(Runtime::Docker));
    meta.runtime = Runtime::Docker;
    meta.name = meta.name.or_else(|| {
        config
            .name
            .map(|n| n.trim_start_matches('/').to_owned())
            .filter(|n| !n.is_empty())
    });
    meta.image = meta.image.or_else(|| inner.and_then(|c| c.image));
    Some(meta)
}

/// Where the runtimes keep a container's state: `{ns}` stands for any one directory (a
/// containerd namespace), `{id}` for the container id.
const STATE_FILES: &[(&str, Option<Runtime>)] = &[
    (
        "/run/containerd/runc/{ns}/{id}/state.json",
        Some(Runtime::Containerd),
    ),
    (
        "/run/docker/runtime-runc/moby/{id}/state.json",
        Some(Runtime::Docker),
    ),
    ("/run/runc/{id}/state.json", None),
    ("/run/crun/{id}/status", None),
];

/// Bundles at their runtimes' usual places, for a state file we could not find.
const BUNDLES: &[(&str, Option<Runtime>)] = &[
    (
        "/run/containerd/io.containerd.runtime.v2.task/{ns}/{id}",
        Some(Runtime::Containerd),
    ),
    (
        "/run/containers/storage/overlay-containers/{id}/userdata",
        None,
    ),
    (
        "/var/lib/containers/storage/overlay-containers/{id}/userdata",
        None,
    ),
];

/// Reads the runtimes' files below a root: `/` on the host, `/proc/PID/root` from a container.
#[derive(Clone, Debug)]
pub struct RuntimeFiles {
    root: PathBuf,
    /// The working directory of the runtime's shim (seen below `root`): containerd's shim
    /// works in the bundle of the pod's sandbox, the container's bundle beside it — wherever
    /// the runtime keeps its state (k3s, a non-default `--state`).
    shim_cwd: Option<String>,
}

impl RuntimeFiles {
    /// Where to look for the runtime files of the container JVM `jvm` runs in, best first:
    /// the root of its nearest ancestor (`ancestors`, nearest first) in another mount
    /// namespace, PID 1's root, this process's.
    pub fn for_jvm(jvm: u32, ancestors: &[u32]) -> Vec<RuntimeFiles> {
        let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        let mut roots = Vec::new();
        if let Some(jvm_ns) = ns(&jvm.to_string()) {
            if let Some(outside) = ancestors
                .iter()
                .find(|a| **a != jvm && ns(&a.to_string()).is_some_and(|their| their != jvm_ns))
            {
                let cwd = std::fs::read_link(format!("/proc/{outside}/cwd"))
                    .ok()
                    .and_then(|p| p.into_os_string().into_string().ok());
                roots.push(RuntimeFiles {
                    root: PathBuf::from(format!("/proc/{outside}/root")),
                    shim_cwd: cwd,
                });
            }
        }
        roots.push(RuntimeFiles::below("/proc/1/root"));
        roots.push(RuntimeFiles::below("/"));
        roots
    }

    pub fn below(root: impl Into<PathBuf>) -> RuntimeFiles {
        RuntimeFiles {
            root: root.into(),
            shim_cwd: None,
        }
    }

    /// The same, with the shim's working directory known.
    pub fn with_shim_cwd(mut self, cwd: &str) -> RuntimeFiles {
        self.shim_cwd = Some(cwd.to_owned());
        self
    }

    /// Bundles the shim's working directory points at: itself, when it is the container's
    /// own bundle, or its sibling named by the container id.
    fn shim_bundles(&self, id: &str) -> Vec<(String, Option<Runtime>)> {
        let Some(cwd) = self.shim_cwd.as_deref() else {
            return Vec::new();
        };
        let sibling = Path::new(cwd)
            .parent()
            .map(|p| p.join(id).display().to_string());
        [Some(cwd.to_owned()), sibling]
            .into_iter()
            .flatten()
            .filter(|dir| dir.contains(id))
            .map(|dir| (dir, None))
            .collect()
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn read(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.path(absolute)).ok()
    }

    /// The paths `pattern` stands for with `id`, `{ns}` expanded over the directories there.
    fn expand(&self, pattern: &str, id: &str) -> Vec<String> {
        let pattern = pattern.replace("{id}", id);
        let Some((before, after)) = pattern.split_once("{ns}") else {
            return vec![pattern];
        };
        let Ok(dirs) = std::fs::read_dir(self.path(before)) else {
            return Vec::new();
        };
        dirs.flatten()
            .filter_map(|d| d.file_name().into_string().ok())
            .map(|ns| format!("{before}{ns}{after}"))
            .collect()
    }

    /// What the runtime that runs container `id` says about it; `None` when no runtime we
    /// know has it.
    pub fn lookup(&self, id: &str) -> Option<ContainerMeta> {
        // An id is 64 hex digits (see container_from_cgroup): never a path.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let found = STATE_FILES
            .iter()
            .flat_map(|(pattern, hint)| self.expand(pattern, id).into_iter().map(|p| (p, *hint)))
            .find_map(|(path, hint)| Some((bundle_of_state(&self.read(&path)?)?, hint)))
            .or_else(|| {
                let usual = BUNDLES.iter().flat_map(|(pattern, hint)| {
                    self.expand(pattern, id).into_iter().map(|p| (p, *hint))
                });
                self.shim_bundles(id)
                    .into_iter()
                    .chain(usual)
                    .find(|(dir, _)| self.path(dir).join("config.json").is_file())
            });
        let docker = || {
            self.read(&format!("/var/lib/docker/containers/{id}/config.v2.json"))
                .and_then(|text| docker_meta(&text))
        };
        let Some((bundle, hint)) = found else {
            return docker();
        };
        if hint == Some(Runtime::Docker) {
            if let Some(meta) = docker() {
                return Some(meta);
            }
        }
        let annotations = self
            .read(&format!("{bundle}/config.json"))
            .and_then(|text| bundle_annotations(&text).ok())
            .unwrap_or_default();
        let mut meta = from_annotations(&annotations, hint);
        if meta.runtime == Runtime::Podman {
            // containers/storage keeps `containers.json` beside the containers' directories:
            // <graph root>/overlay-containers/<id>/userdata is the bundle.
            let store = Path::new(&bundle).parent().and_then(Path::parent);
            if let Some((name, image)) = store
                .and_then(|s| self.read(&format!("{}/containers.json", s.display())))
                .and_then(|text| podman_names(&text, id))
            {
                meta.name = meta.name.or(name);
                meta.image = meta.image.or(image);
            }
        }
        Some(meta)
    }
}

/// How long a container id no runtime knew is left alone before it is looked up again (a
/// container whose alert comes before its runtime wrote its state).
pub const RETRY_MISS: Duration = Duration::from_secs(10);

/// At most this many container ids are remembered; beyond, the cache starts again.
const CAPACITY: usize = 4096;

/// Container lookups, cached per container id.
#[derive(Debug, Default)]
pub struct ContainerDirectory {
    known: HashMap<String, (Option<ContainerMeta>, Instant)>,
    /// Lookups that found nothing (counted in the stats line).
    pub misses: u64,
}

impl ContainerDirectory {
    /// What the runtime says about container `id`, from the cache when it can; else from
    /// the first of `roots` (called only on a cache miss) that knows it.
    pub fn get(
        &mut self,
        id: &str,
        roots: impl FnOnce() -> Vec<RuntimeFiles>,
    ) -> Option<ContainerMeta> {
        let now = Instant::now();
        if let Some((meta, when)) = self.known.get(id) {
            if meta.is_some() || now.duration_since(*when) < RETRY_MISS {
                return meta.clone();
            }
        }
        let meta = roots().iter().find_map(|files| files.lookup(id));
        if meta.is_none() {
            self.misses += 1;
        }
        if self.known.len() >= CAPACITY {
            // Ids of containers long gone pile up; everything still running is looked up again.
            self.known.clear();
        }
        self.known.insert(id.to_owned(), (meta.clone(), now));
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ae91e1cab694564ab50aee23c99bf32efaebb1c15d41537417ddd99847cfc4e5";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn containerd_cri_annotations() {
        let meta = from_annotations(
            &map(&[
                ("io.kubernetes.cri.container-type", "container"),
                ("io.kubernetes.cri.container-name", "app"),
                ("io.kubernetes.cri.image-name", "registry.example/shop:1.2"),
                ("io.kubernetes.cri.sandbox-name", "shop-7d9f"),
                ("io.kubernetes.cri.sandbox-namespace", "shop"),
                (
                    "io.kubernetes.cri.sandbox-uid",
                    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                ),
            ]),
            Some(Runtime::Containerd),
        );
        assert_eq!(meta.runtime, Runtime::Containerd);
        assert_eq!(meta.name.as_deref(), Some("app"));
        assert_eq!(meta.image.as_deref(), Some("registry.example/shop:1.2"));
        let pod = meta.pod.expect("a pod");
        assert_eq!(pod.name.as_deref(), Some("shop-7d9f"));
        assert_eq!(pod.namespace.as_deref(), Some("shop"));
        assert_eq!(
            pod.uid.as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
    }

    #[test]
    fn crio_annotations_without_a_hint() {
        let meta = from_annotations(
            &map(&[
                ("io.kubernetes.cri-o.ContainerType", "container"),
                ("io.kubernetes.cri-o.ImageName", "quay.io/shop:2"),
                ("io.kubernetes.container.name", "web"),
                ("io.kubernetes.pod.name", "web-0"),
                ("io.kubernetes.pod.namespace", "prod"),
                ("io.kubernetes.pod.uid", "1234"),
            ]),
            None,
        );
        assert_eq!(meta.runtime, Runtime::CriO);
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(meta.image.as_deref(), Some("quay.io/shop:2"));
        assert_eq!(meta.pod.and_then(|p| p.name).as_deref(), Some("web-0"));
    }

    #[test]
    fn podman_borrows_crio_names_but_is_podman() {
        let meta = from_annotations(
            &map(&[
                ("io.container.manager", "libpod"),
                ("io.kubernetes.cri-o.ContainerType", "container"),
                ("io.kubernetes.cri-o.SandboxID", "5362c82e"),
            ]),
            None,
        );
        assert_eq!(meta.runtime, Runtime::Podman);
        assert_eq!((meta.name, meta.image, meta.pod), (None, None, None));
        let unknown = from_annotations(&map(&[("org.example", "x")]), None);
        assert_eq!(unknown.runtime, Runtime::Oci);
    }

    #[test]
    fn bundles_from_runc_and_crun_state() {
        let runc = r#"{"id":"x","config":{"labels":["io.container.manager=libpod","bundle=/var/lib/containers/storage/overlay-containers/x/userdata"]}}"#;
        assert_eq!(
            bundle_of_state(runc).as_deref(),
            Some("/var/lib/containers/storage/overlay-containers/x/userdata")
        );
        let crun = r#"{"pid":7,"bundle":"/run/containerd/io.containerd.runtime.v2.task/k8s.io/x","rootfs":"/r"}"#;
        assert_eq!(
            bundle_of_state(crun).as_deref(),
            Some("/run/containerd/io.containerd.runtime.v2.task/k8s.io/x")
        );
        assert_eq!(bundle_of_state(r#"{"config":{"labels":[]}}"#), None);
        assert_eq!(bundle_of_state("not json"), None);
    }

    #[test]
    fn podman_store_names_and_docker_config() {
        let store = format!(
            r#"[{{"id":"other","names":["a"]}},{{"id":"{ID}","names":["probe-app"],"image":"2155","metadata":"{{\"image-name\":\"localhost/base:1\",\"name\":\"probe-app\"}}"}}]"#
        );
        assert_eq!(
            podman_names(&store, ID),
            Some((
                Some("probe-app".to_owned()),
                Some("localhost/base:1".to_owned())
            ))
        );
        assert_eq!(podman_names(&store, "missing"), None);
        assert_eq!(podman_names("{", ID), None);

        let docker = r#"{"Name":"/shop","Config":{"Image":"shop:3","Labels":{"io.kubernetes.pod.name":"shop-1","io.kubernetes.pod.namespace":"prod"}}}"#;
        let meta = docker_meta(docker).expect("parsed");
        assert_eq!(meta.runtime, Runtime::Docker);
        assert_eq!(meta.name.as_deref(), Some("shop"));
        assert_eq!(meta.image.as_deref(), Some("shop:3"));
        assert_eq!(meta.pod.and_then(|p| p.namespace).as_deref(), Some("prod"));
    }

    /// A scratch root laid out as a node running containerd with the CRI plugin, and Podman.
    #[test]
    fn lookups_follow_state_files_to_bundles() {
        let root = std::env::temp_dir().join(format!("detector-containers-{}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        let cri = "c".repeat(64);
        write(
            &format!("/run/containerd/runc/k8s.io/{cri}/state.json"),
            &format!(r#"{{"config":{{"labels":["bundle=/state/k8s.io/{cri}"]}}}}"#),
        );
        write(
            &format!("/state/k8s.io/{cri}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-name":"p","io.kubernetes.cri.sandbox-namespace":"ns"}}"#,
        );
        write(
            &format!("/run/runc/{ID}/state.json"),
            &format!(
                r#"{{"config":{{"labels":["bundle=/var/lib/containers/storage/overlay-containers/{ID}/userdata"]}}}}"#
            ),
        );
        write(
            &format!("/var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            r#"{"annotations":{"io.container.manager":"libpod"}}"#,
        );
        write(
            "/var/lib/containers/storage/overlay-containers/containers.json",
            &format!(
                r#"[{{"id":"{ID}","names":["probe-app"],"metadata":"{{\"image-name\":\"localhost/base:1\"}}"}}]"#
            ),
        );
        let files = RuntimeFiles::below(&root);

        let meta = files.lookup(&cri).expect("containerd's container");
        assert_eq!(meta.runtime, Runtime::Containerd);
        assert_eq!(meta.name.as_deref(), Some("app"));
        assert_eq!(meta.pod.and_then(|p| p.namespace).as_deref(), Some("ns"));

        let meta = files.lookup(ID).expect("podman's container");
        assert_eq!(meta.runtime, Runtime::Podman);
        assert_eq!(meta.name.as_deref(), Some("probe-app"));
        assert_eq!(meta.image.as_deref(), Some("localhost/base:1"));
        assert_eq!(meta.pod, None);

        assert_eq!(files.lookup(&"d".repeat(64)), None);

        // containerd with its state elsewhere: found from the shim's working directory (the
        // pod sandbox's bundle) by its sibling.
        let elsewhere = "e".repeat(64);
        write(
            &format!("/k3s/state/task/k8s.io/{elsewhere}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-name":"side","io.kubernetes.cri.sandbox-name":"p"}}"#,
        );
        let shim = files
            .clone()
            .with_shim_cwd(&format!("/k3s/state/task/k8s.io/{}", "f".repeat(64)));
        let meta = shim.lookup(&elsewhere).expect("beside the sandbox");
        assert_eq!(
            (meta.runtime, meta.name.as_deref()),
            (Runtime::Containerd, Some("side"))
        );
        assert_eq!(shim.lookup(&"d".repeat(64)), None);
        assert_eq!(files.lookup("../../etc"), None, "never a path");

        let mut directory = ContainerDirectory::default();
        let roots = || vec![RuntimeFiles::below("/nonexistent"), files.clone()];
        assert!(
            directory.get(&cri, roots).is_some(),
            "the second root has it"
        );
        assert!(directory.get(&"d".repeat(64), roots).is_none());
        assert!(directory.get(&"d".repeat(64), roots).is_none());
        assert_eq!(directory.misses, 1, "a miss is cached for a while");
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
