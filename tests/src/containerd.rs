//! A containerd of the test's own, driven through its CRI plugin as kubelet drives it: pods
//! and containers are created with the Kubernetes CRI (gRPC over containerd's unix socket), so
//! their OCI bundles carry the genuine `io.kubernetes.cri.*` annotations a node's containers
//! have.
//!
//! Nothing is pulled: the two images (an empty one for the workload, whose programs come from
//! read-only host mounts, and the sandbox's "pause" image, the host's `sleep` and the libraries
//! it loads) are written here as OCI image layouts and imported with `ctr images import`.
//! Pods share the host's network namespace, so no CNI plugin or network configuration is
//! needed.
//!
//! Configured for this kind of machine: runc (crun refuses a hybrid cgroup layout) through
//! `io.containerd.runc.v2` with the cgroupfs driver (PID 1 is not systemd), the overlayfs
//! snapshotter. containerd's root, state, sockets, runc root and `opt` directory live in a
//! [`ScratchDir`]; what containerd 1.6 still puts outside it (the shims' sockets under
//! `/run/containerd/s`, the pods' cgroups) is removed on drop when this harness created it.
//!
//! Where a container's files land (containerd 1.6, namespace `k8s.io`):
//! - the OCI bundle: `<state>/io.containerd.runtime.v2.task/k8s.io/<container id>/config.json`
//!   (the shim's working directory; `/run/containerd/...` on a node);
//! - runc's state: `<runc root>/k8s.io/<container id>/state.json`, whose `config.labels` hold
//!   `bundle=<bundle dir>` (`/run/containerd/runc/k8s.io/...` on a node).

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    runtime_service_client::RuntimeServiceClient, ContainerConfig, ContainerMetadata,
    ContainerStatusRequest, CreateContainerRequest, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount,
    MountPropagation, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StatusRequest,
    StopPodSandboxRequest, VersionRequest,
};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tonic::transport::{Channel, Endpoint, Uri};

use testkit::cgroup::unescape_mount_path;

use crate::{find_on_path, ScratchDir};

/// The CRI namespace of containerd: kubelet's pods live there.
pub const NAMESPACE: &str = "k8s.io";

/// The sandbox ("pause") image, imported at start and named as the CRI plugin's
/// `sandbox_image`.
pub const PAUSE_IMAGE: &str = "localhost/detector-test-pause:1";

/// The workload image: one empty layer; the programs come from the host's read-only mounts.
pub const APP_IMAGE: &str = "localhost/detector-test-app:1";

/// How long containerd may take to answer CRI calls after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The host directories whose absence this harness noted before starting containerd, and
/// removes (empty only) on drop: containerd 1.6 puts its shims' sockets under
/// `/run/containerd/s` whatever its `--state` says.
const HOST_DIRS: [&str; 2] = ["/run/containerd/s", "/run/containerd"];

/// A pod of one container, started through the CRI.
#[derive(Debug, Clone)]
pub struct RunningPod {
    pub sandbox_id: String,
    pub container_id: String,
    /// The container's main process, as the host sees it.
    pub pid: u32,
    /// The cgroup v2 directory of that process (from `/proc/PID/cgroup`'s `0::` line), under
    /// the cgroup2 mount: what `detector run --cgroup` is given.
    pub cgroup_v2_path: PathBuf,
    /// The container's CRI log (`<pod log dir>/<container>.log`, one `TIME STREAM P|F text`
    /// line per write).
    pub log_path: PathBuf,
}

/// A running containerd with the CRI plugin, and the pods it made for the test.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    runtime: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    sandboxes: Vec<String>,
    /// cgroup directories (every hierarchy) of the pods' parents, created by runc for us.
    cgroup_parents: Vec<String>,
    /// Of [`HOST_DIRS`], those that did not exist before containerd started.
    created_host_dirs: Vec<PathBuf>,
    scratch: ScratchDir,
}

impl Containerd {
    /// Starts containerd, waits for its CRI plugin and imports the images; `None` (after
    /// [`skip`](crate::skip)) when containerd, `ctr` or runc is not installed.
    pub fn start() -> Option<Containerd> {
        for tool in ["containerd", "ctr", "containerd-shim-runc-v2", "runc"] {
            if find_on_path(tool).is_none() {
                crate::skip(&format!(
                    "{tool} is not installed (cargo xtask setup installs containerd and runc)"
                ));
                return None;
            }
        }
        // Short: the socket's path must fit in sockaddr_un.
        let scratch = ScratchDir::new("ctrd");
        let config = write_config(&scratch);
        let created_host_dirs = HOST_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect();
        let log = fs::File::create(scratch.file("containerd.log")).expect("containerd.log");
        let mut command = Command::new("containerd");
        command
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("containerd.log"))
            .stderr(log);
        testkit::die_with_parent(&mut command);
        let child = command.spawn().expect("containerd starts");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let socket = scratch.file("containerd.sock");
        let channel = runtime.block_on(async {
            Endpoint::try_from("http://[::]:50051")
                .expect("a static endpoint")
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(socket).await?,
                        ))
                    }
                }))
        });
        let mut containerd = Containerd {
            child: Some(child),
            runtime,
            client: RuntimeServiceClient::new(channel),
            sandboxes: Vec::new(),
            cgroup_parents: Vec::new(),
            created_host_dirs,
            scratch,
        };
        containerd.wait_ready();
        containerd.import(
            PAUSE_IMAGE,
            &pause_layer(&containerd.scratch),
            &["/bin/sleep", "infinity"],
        );
        let empty = containerd.scratch.file("empty-rootfs");
        fs::create_dir_all(&empty).expect("an empty rootfs");
        containerd.import(APP_IMAGE, &empty, &[]);
        Some(containerd)
    }

    /// containerd's `--state` directory.
    pub fn state_dir(&self) -> PathBuf {
        self.scratch.file("state")
    }

    /// The runc root the shims use (`Root` in the runtime's options).
    pub fn runc_root(&self) -> PathBuf {
        self.scratch.file("runc")
    }

    /// The OCI bundle directory of a container (its `config.json` is the runtime spec).
    pub fn bundle_dir(&self, container_id: &str) -> PathBuf {
        self.state_dir()
            .join("io.containerd.runtime.v2.task")
            .join(NAMESPACE)
            .join(container_id)
    }

    /// runc's `state.json` of a container.
    pub fn runc_state(&self, container_id: &str) -> PathBuf {
        self.runc_root()
            .join(NAMESPACE)
            .join(container_id)
            .join("state.json")
    }

    /// containerd's own log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.scratch.file("containerd.log")).unwrap_or_default()
    }

    /// Waits until the CRI answers `Version` and `Status` says the runtime is ready (the
    /// network is not: no CNI, which host-network pods do not need).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + testkit::scaled(START_TIMEOUT);
        loop {
            let answer = self.runtime.block_on(async {
                let version = self
                    .client
                    .version(VersionRequest {
                        version: "v1".to_owned(),
                    })
                    .await?
                    .into_inner();
                let status = self
                    .client
                    .status(StatusRequest { verbose: false })
                    .await?
                    .into_inner();
                Ok::<_, tonic::Status>((version, status))
            });
            match answer {
                Ok((version, status)) => {
                    let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
                    if conditions
                        .iter()
                        .any(|c| c.r#type == "RuntimeReady" && c.status)
                    {
                        eprintln!(
                            "containerd: {} {} (CRI {})",
                            version.runtime_name,
                            version.runtime_version,
                            version.runtime_api_version
                        );
                        return;
                    }
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("containerd's CRI never answered: {e}\n{}", self.log())
                }
                Err(_) => {}
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("containerd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd's runtime never became ready:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes `rootfs` as a one-layer OCI image named `name` with `entrypoint`, and imports it
    /// into the CRI namespace (unpacked for the overlayfs snapshotter).
    fn import(&self, name: &str, rootfs: &Path, entrypoint: &[&str]) {
        let tar = write_oci_archive(&self.scratch, name, rootfs, entrypoint);
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.scratch.file("containerd.sock"))
            .args(["--namespace", NAMESPACE, "images", "import"])
            .args(["--snapshotter", "overlayfs"])
            .arg(&tar)
            .output()
            .expect("ctr runs");
        assert!(
            out.status.success(),
            "ctr images import {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a pod `namespace/pod_name` (uid `uid`) in the host's network namespace, with one
    /// container `container_name` of [`APP_IMAGE`] running `command`; `host_mounts` are
    /// hostPath volumes mounted at the same path (read-only when the flag says so).
    pub fn run_pod(
        &mut self,
        pod_name: &str,
        namespace: &str,
        uid: &str,
        container_name: &str,
        command: &[String],
        host_mounts: &[(PathBuf, bool)],
    ) -> RunningPod {
        let log_dir = self
            .scratch
            .file(&format!("pods/{namespace}_{pod_name}_{uid}"));
        fs::create_dir_all(&log_dir).expect("the pod's log directory");
        // Where kubelet's cgroupfs driver puts a BestEffort pod.
        let cgroup_parent = format!("/kubepods/besteffort/pod{uid}");
        let namespaces = NamespaceOption {
            network: NamespaceMode::Node.into(),
            pid: NamespaceMode::Container.into(),
            ipc: NamespaceMode::Pod.into(),
            ..Default::default()
        };
        let sandbox_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: pod_name.to_owned(),
                uid: uid.to_owned(),
                namespace: namespace.to_owned(),
                attempt: 0,
            }),
            // No hostname: a host-network pod has the node's (runc refuses one without a UTS
            // namespace of its own), as kubelet leaves it.
            hostname: String::new(),
            log_directory: log_dir.to_string_lossy().into_owned(),
            labels: HashMap::from([
                ("io.kubernetes.pod.name".to_owned(), pod_name.to_owned()),
                (
                    "io.kubernetes.pod.namespace".to_owned(),
                    namespace.to_owned(),
                ),
                ("io.kubernetes.pod.uid".to_owned(), uid.to_owned()),
            ]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.note_cgroup_parents(&cgroup_parent);
        let sandbox_id = self
            .call("RunPodSandbox", |mut c| {
                let config = sandbox_config.clone();
                async move {
                    c.run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(config),
                        runtime_handler: String::new(),
                    })
                    .await
                }
            })
            .pod_sandbox_id;
        self.sandboxes.push(sandbox_id.clone());

        let mounts = host_mounts
            .iter()
            .map(|(path, read_only)| Mount {
                container_path: path.to_string_lossy().into_owned(),
                host_path: path.to_string_lossy().into_owned(),
                readonly: *read_only,
                propagation: MountPropagation::PropagationPrivate.into(),
                ..Default::default()
            })
            .collect();
        let log_name = format!("{container_name}.log");
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: container_name.to_owned(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: APP_IMAGE.to_owned(),
                ..Default::default()
            }),
            command: command.to_vec(),
            mounts,
            log_path: log_name.clone(),
            labels: HashMap::from([(
                "io.kubernetes.container.name".to_owned(),
                container_name.to_owned(),
            )]),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(namespaces),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container_id = self
            .call("CreateContainer", |mut c| {
                let request = CreateContainerRequest {
                    pod_sandbox_id: sandbox_id.clone(),
                    config: Some(config.clone()),
                    sandbox_config: Some(sandbox_config.clone()),
                };
                async move { c.create_container(request).await }
            })
            .container_id;
        self.call("StartContainer", |mut c| {
            let container_id = container_id.clone();
            async move {
                c.start_container(StartContainerRequest { container_id })
                    .await
            }
        });
        let status = self.call("ContainerStatus", |mut c| {
            let container_id = container_id.clone();
            async move {
                c.container_status(ContainerStatusRequest {
                    container_id,
                    verbose: true,
                })
                .await
            }
        });
        // The verbose status's `info` is containerd's own JSON, with the task's pid.
        let info: Value = status
            .info
            .get("info")
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_else(|| panic!("ContainerStatus has no info JSON: {:?}", status.info));
        let pid = info["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or_else(|| panic!("no pid in the container's info: {info:#}"));
        RunningPod {
            sandbox_id,
            container_id,
            pid,
            cgroup_v2_path: cgroup_v2_path(pid),
            log_path: log_dir.join(log_name),
        }
    }

    /// What the container wrote so far, without the CRI log's time and stream prefix.
    pub fn logs(&self, pod: &RunningPod) -> String {
        let raw = fs::read_to_string(&pod.log_path).unwrap_or_default();
        let mut text = String::new();
        for line in raw.lines() {
            // `TIME STREAM TAG text`: TAG P is a partial line, F a full one.
            let mut fields = line.splitn(4, ' ');
            let (_time, _stream, tag, message) =
                (fields.next(), fields.next(), fields.next(), fields.next());
            text.push_str(message.unwrap_or_default());
            if tag != Some("P") {
                text.push('\n');
            }
        }
        text
    }

    /// Waits until the container's log holds `needle`; fails the test after `timeout`.
    pub fn wait_for_log(&self, pod: &RunningPod, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + testkit::scaled(timeout);
        loop {
            let logs = self.logs(pod);
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "the container never logged {needle:?}:\n{logs}\ncontainerd:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// One CRI call, failing the test with containerd's log when it fails.
    fn call<T, F>(&self, what: &str, call: impl FnOnce(RuntimeServiceClient<Channel>) -> F) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.runtime
            .block_on(call(self.client.clone()))
            .map(tonic::Response::into_inner)
            .unwrap_or_else(|e| panic!("CRI {what}: {e}\ncontainerd:\n{}", self.log()))
    }

    /// Remembers which of the pod's parent cgroups do not exist yet in any hierarchy, so drop
    /// removes exactly those runc creates for it.
    fn note_cgroup_parents(&mut self, parent: &str) {
        let mut path = String::new();
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            if !self.cgroup_parents.contains(&path)
                && cgroup_hierarchies()
                    .iter()
                    .all(|h| !h.join(path.trim_start_matches('/')).exists())
            {
                self.cgroup_parents.push(path.clone());
            }
        }
    }

    fn stop_pods(&mut self) {
        for id in std::mem::take(&mut self.sandboxes) {
            let stop = self.runtime.block_on({
                let mut c = self.client.clone();
                let id = id.clone();
                async move {
                    c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id })
                        .await
                }
            });
            let remove = self.runtime.block_on({
                let mut c = self.client.clone();
                let id = id.clone();
                async move {
                    c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                        .await
                }
            });
            if let Err(e) = stop.map(drop).and(remove.map(drop)) {
                eprintln!("warning: removing pod sandbox {id}: {e}");
            }
        }
    }

    fn stop_containerd(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill has no memory preconditions; the child is ours and not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Unmounts whatever is still mounted below the scratch directory (a snapshot, a
    /// sandbox's /dev/shm), deepest first, so removing the directory never reaches into a
    /// mount.
    fn unmount_leftovers(&self) {
        let root = self.scratch.path();
        let mut mounts: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| PathBuf::from(unescape_mount_path(p)))
            .filter(|p| p.starts_with(root))
            .collect();
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for mount in mounts {
            eprintln!("warning: unmounting leftover {}", mount.display());
            if let Ok(c) = std::ffi::CString::new(mount.to_string_lossy().as_bytes()) {
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop_pods();
        self.stop_containerd();
        self.unmount_leftovers();
        for parent in self.cgroup_parents.iter().rev() {
            for hierarchy in cgroup_hierarchies() {
                let _ = fs::remove_dir(hierarchy.join(parent.trim_start_matches('/')));
            }
        }
        for dir in &self.created_host_dirs {
            // Only if empty: another containerd may have started meanwhile.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// containerd's configuration (version 2, as 1.6 reads it), everything under `scratch`.
fn write_config(scratch: &ScratchDir) -> PathBuf {
    let p = |name: &str| scratch.file(name).to_string_lossy().into_owned();
    let toml = format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{opt}"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    # The streaming server (exec, attach) is not used; keep it on loopback.
    stream_server_address = "127.0.0.1"
    # Sandboxes get oom_score_adj -998, which lowering needs CAP_SYS_RESOURCE (some sandboxes
    # this runs in lack it): keep every container at or above this process's own.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{runc}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{cni}/bin"
      conf_dir = "{cni}/conf"
"#,
        root = p("root"),
        state = p("state"),
        sock = p("containerd.sock"),
        opt = p("opt"),
        pause = PAUSE_IMAGE,
        runc = p("runc"),
        cni = p("cni"),
    );
    let path = scratch.file("config.toml");
    fs::write(&path, toml).expect("writing containerd's config");
    path
}

/// A root filesystem with `/bin/sleep` and the libraries `ldd` says it loads: the pause
/// process.
fn pause_layer(scratch: &ScratchDir) -> PathBuf {
    let rootfs = scratch.file("pause-rootfs");
    let sleep = find_on_path("sleep").expect("sleep (coreutils)");
    let copy = |from: &Path, to: &Path| {
        let dest = rootfs.join(to.strip_prefix("/").unwrap_or(to));
        fs::create_dir_all(dest.parent().expect("a parent")).expect("a rootfs directory");
        // fs::copy follows symlinks: the layer gets the files themselves.
        fs::copy(from, &dest)
            .unwrap_or_else(|e| panic!("copying {} to the pause image: {e}", from.display()));
    };
    copy(&sleep, Path::new("/bin/sleep"));
    let ldd = Command::new("ldd").arg(&sleep).output().expect("ldd runs");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux... (0x...)`.
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            copy(Path::new(path), Path::new(path));
        }
    }
    rootfs
}

/// `rootfs` as an OCI image layout archive (one uncompressed layer) named `name`.
fn write_oci_archive(
    scratch: &ScratchDir,
    name: &str,
    rootfs: &Path,
    entrypoint: &[&str],
) -> PathBuf {
    let label = name.replace(['/', ':'], "_");
    let layout = scratch.file(&format!("{label}-layout"));
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("the layout's blobs");
    let layer_tar = scratch.file(&format!("{label}-layer.tar"));
    let made = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-cf"])
        .arg(&layer_tar)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(made.success(), "tar of {}", rootfs.display());
    let layer = fs::read(&layer_tar).expect("the layer");
    let blob = |bytes: &[u8]| -> (String, usize) {
        let digest = format!("sha256:{:x}", Sha256::digest(bytes));
        let file = blobs.join(digest.trim_start_matches("sha256:"));
        fs::write(&file, bytes).expect("a blob");
        (digest, bytes.len())
    };
    let (layer_digest, layer_size) = blob(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut config = json!({
        "architecture": arch,
        "os": "linux",
        "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    if !entrypoint.is_empty() {
        config["config"]["Entrypoint"] = json!(entrypoint);
    }
    let (config_digest, config_size) = blob(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { "io.containerd.image.name": name },
            "platform": { "architecture": arch, "os": "linux" },
        }],
    });
    fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let archive = scratch.file(&format!("{label}.tar"));
    let made = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar runs");
    assert!(made.success(), "tar of {}", layout.display());
    archive
}

/// The cgroup v2 directory of `pid`, under the cgroup2 mount.
fn cgroup_v2_path(pid: u32) -> PathBuf {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line in /proc/{pid}/cgroup:\n{cgroup}"));
    let mount = testkit::cgroup::cgroup2_mount().unwrap_or_else(|e| panic!("{e}"));
    mount.join(path.trim_start_matches('/'))
}

/// Every mounted cgroup hierarchy (v1 controllers and v2), from /proc/self/mountinfo.
fn cgroup_hierarchies() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (_, after) = l.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let target = l.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| PathBuf::from(unescape_mount_path(target)))
        })
        .collect()
}
