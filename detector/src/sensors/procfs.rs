//! What the daemon reads from the host: the cgroup v2 mount, its DNS resolvers, and
//! processes that existed before the kernel programs were attached (or whose details an
//! event does not carry).

use std::{
    fs,
    path::{Path, PathBuf},
};

/// A process as /proc shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcProcess {
    pub pid: u32,
    pub ppid: u32,
    /// Start time in ns since boot (tick precision).
    pub start_ns: u64,
    /// Target of `/proc/PID/exe`, when readable.
    pub exe: Option<String>,
    pub argv: Vec<String>,
    /// Cgroup v2 path (the `0::` line of `/proc/PID/cgroup`).
    pub cgroup: Option<String>,
}

/// The mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    parse_cgroup2_mount(&mounts)
}

/// The first `cgroup2` mount in a `/proc/mounts` text.
pub fn parse_cgroup2_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir.replace("\\040", " ")))
    })
}

/// The `nameserver` addresses of a resolv.conf text.
pub fn parse_nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "nameserver").then(|| f.next()?.split('%').next()?.parse().ok())?
        })
        .collect()
}

/// The host's DNS resolvers (`/etc/resolv.conf`; none if unreadable).
pub fn nameservers() -> Vec<std::net::IpAddr> {
    fs::read_to_string("/etc/resolv.conf")
        .map(|t| parse_nameservers(&t))
        .unwrap_or_default()
}

/// The cgroup v2 line (`0::/path`) of a `/proc/PID/cgroup` text.
pub fn parse_cgroup2_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, from the auxiliary vector).
pub fn clock_ticks() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        n => n,
    }
}

/// Nanoseconds per `/proc` clock tick.
pub fn ns_per_tick() -> u64 {
    1_000_000_000 / clock_ticks()
}

/// Field 22 (`starttime`, in clock ticks since boot) of a `/proc/PID/stat` line.
pub fn stat_start_ticks(stat: &str) -> Option<u64> {
    // comm (field 2) is parenthesised and may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a kernel start time (ns since boot) and a `/proc` start tick name the same process.
pub fn same_start(start_ns: u64, stat_ticks: u64, ticks_per_sec: u64) -> bool {
    // /proc divides the same `start_boottime` by NSEC_PER_SEC / USER_HZ, rounding down.
    start_ns / (1_000_000_000 / ticks_per_sec) == stat_ticks
}

/// The process `key` names as /proc shows it, if that PID is still that process.
pub fn read_key(key: crate::vocab::ProcessKey) -> Option<ProcProcess> {
    let tick = ns_per_tick();
    read_process(key.tgid).filter(|p| p.start_ns / tick == key.start_ns / tick)
}

/// Reads one process; `None` if it is gone (or is a kernel thread with no stat line).
pub fn read_process(pid: u32) -> Option<ProcProcess> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ppid = after_comm.split_whitespace().nth(1)?.parse().ok()?;
    let start_ns = stat_start_ticks(&stat)? * ns_per_tick();
    let argv = read_cmdline(&dir);
    Some(ProcProcess {
        pid,
        ppid,
        start_ns,
        exe: fs::read_link(dir.join("exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        argv,
        cgroup: fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|t| parse_cgroup2_path(&t))
            .map(|shown| host_cgroup_path(&shown)),
    })
}

/// A cgroup path as `/proc/PID/cgroup` shows it, as a path of the host's hierarchy (the one
/// mounted at [`cgroup2_mount`], which the kernel programs' cgroup ids and `--cgroup` refer
/// to). Unchanged unless the daemon runs in a cgroup namespace of its own, as in a Kubernetes
/// pod (Kubernetes has no host cgroup namespace for pods): then /proc shows paths relative to
/// the namespace's root (`/../../kubepods/...`), and the root is found once, below.
pub fn host_cgroup_path(shown: &str) -> String {
    static ROOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    match ROOT.get_or_init(namespace_root) {
        Some(root) => rebase_cgroup(root, shown),
        None => shown.to_owned(),
    }
}

/// The host path of this process's cgroup namespace root, if it has a namespace of its own:
/// PID 1 of the host is then shown outside it (`/..`). Found as the directory of the host's
/// hierarchy whose `cgroup.procs` lists this process (with the host's PID namespace, as the
/// DaemonSet runs, the PIDs there are the ones this process sees).
fn namespace_root() -> Option<String> {
    let init = fs::read_to_string("/proc/1/cgroup").ok()?;
    if !parse_cgroup2_path(&init)?.starts_with("/..") {
        return None;
    }
    let mount = cgroup2_mount()?;
    let me = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| parse_cgroup2_path(&t))?;
    let pid = std::process::id().to_string();
    let mut stack = vec![mount.clone()];
    while let Some(dir) = stack.pop() {
        let listed = fs::read_to_string(dir.join("cgroup.procs"))
            .is_ok_and(|procs| procs.lines().any(|l| l == pid));
        if listed {
            // `me` is where this process is, relative to the namespace root.
            let here = format!("/{}", dir.strip_prefix(&mount).ok()?.to_string_lossy());
            let root = rebase_cgroup(
                &here,
                &"/..".repeat(me.split('/').filter(|c| !c.is_empty()).count()),
            );
            tracing::info!(
                "this process runs in a cgroup namespace of its own, rooted at {root}: cgroup \
                 paths read from /proc are taken relative to it"
            );
            return Some(root);
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    tracing::warn!(
        "this process runs in a cgroup namespace of its own but is listed in no cgroup of {}: \
         cgroup paths of other processes stay relative to it",
        mount.display()
    );
    None
}

/// `shown` (a path relative to the namespace rooted at `root`, possibly going above it with
/// `..`) as a path of the whole hierarchy.
pub fn rebase_cgroup(root: &str, shown: &str) -> String {
    let mut parts: Vec<&str> = root.split('/').filter(|c| !c.is_empty()).collect();
    for part in shown.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if part == ".." {
            parts.pop();
        } else {
            parts.push(part);
        }
    }
    format!("/{}", parts.join("/"))
}

/// The arguments in `DIR/cmdline` (`DIR` a `/proc/PID`); none when unreadable.
pub fn read_cmdline(dir: &Path) -> Vec<String> {
    fs::read(dir.join("cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every process on the host (those that vanish while we read are skipped).
pub fn all_processes() -> Vec<ProcProcess> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_process)
        .collect()
}

/// Whether `cgroup` (a v2 path such as `/a/b`) is `scope` or below it.
pub fn cgroup_within(cgroup: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    scope.is_empty() || cgroup == scope || cgroup.starts_with(&format!("{scope}/"))
}

/// The cgroup v2 id of `cgroup` (a path such as `/a/b` in the hierarchy mounted at `mount`):
/// its directory's inode number, what `bpf_get_current_cgroup_id` and `bpf_skb_cgroup_id`
/// return. `None` once the cgroup is gone.
pub fn cgroup_id(mount: &Path, cgroup: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(mount.join(cgroup.trim_start_matches('/')))
        .ok()
        .map(|m| m.ino())
}

/// Resolves `--cgroup PATH` (a directory of the cgroup v2 mount, or a path relative to
/// its root) to (absolute directory, path within the hierarchy).
pub fn resolve_cgroup(mount: &Path, arg: &Path) -> Option<(PathBuf, String)> {
    let dir = if arg.starts_with(mount) {
        arg.to_path_buf()
    } else {
        mount.join(arg.strip_prefix("/").unwrap_or(arg))
    };
    let dir = dir.canonicalize().ok()?;
    let rel = dir.strip_prefix(mount.canonicalize().ok()?).ok()?;
    Some((dir.clone(), format!("/{}", rel.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_relative_cgroup_paths_become_host_paths() {
        let root = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-aaa.scope";
        assert_eq!(
            rebase_cgroup(
                root,
                "/../../kubepods-besteffort.slice/cri-containerd-bbb.scope"
            ),
            "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-bbb.scope"
        );
        assert_eq!(rebase_cgroup(root, "/"), root);
        assert_eq!(rebase_cgroup(root, "/sub"), format!("{root}/sub"));
        assert_eq!(rebase_cgroup(root, "/../../../.."), "/");
        assert_eq!(rebase_cgroup("/", "/a/b"), "/a/b");
    }

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_layouts() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            parse_cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(
            parse_cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(parse_cgroup2_mount("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn reads_the_v2_line_of_proc_cgroup() {
        let text =
            "12:pids:/user.slice\n1:name=systemd:/user.slice\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            parse_cgroup2_path(text).as_deref(),
            Some("/user.slice/session-1.scope")
        );
    }

    #[test]
    fn reads_nameservers() {
        let text = "# generated\nsearch corp.example\nnameserver 127.0.0.53\nnameserver fe80::1%eth0 # link\nnameserver bogus\noptions edns0\n";
        let ns = parse_nameservers(text);
        assert_eq!(ns.len(), 2, "{ns:?}");
        assert_eq!(ns[0].to_string(), "127.0.0.53");
        assert_eq!(ns[1].to_string(), "fe80::1");
    }

    #[test]
    fn scope_matching_is_by_path_component() {
        assert!(cgroup_within("/a/b", "/a"));
        assert!(cgroup_within("/a", "/a"));
        assert!(!cgroup_within("/ab", "/a"));
        assert!(cgroup_within("/anything", "/"));
    }

    #[test]
    fn parses_start_ticks_past_odd_comm() {
        let stat = "4242 (java (evil) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 30 0 123456 1000 10";
        assert_eq!(stat_start_ticks(stat), Some(123_456));
        assert_eq!(stat_start_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = read_process(std::process::id()).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_ns > 0);
        assert!(!me.argv.is_empty());
    }
}
