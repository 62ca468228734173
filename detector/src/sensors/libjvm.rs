//! Recognising a JVM by what it is — a process that maps HotSpot's or OpenJ9's `libjvm.so` —
//! rather than by its launcher's name (docs/jvm.md).
//!
//! The kernel side is `detector-ebpf/src/jvm.rs`; this file finds what to attach it to:
//! libc's `dlopen` (the daemon's own libc, the one every process on the host shares), and
//! `JNI_CreateJavaVM` in every `libjvm.so` the daemon knows of — the JDKs under the usual
//! directories and `jvm.libjvm_paths` at start, then each `libjvm.so` the periodic scan of
//! `/proc/PID/maps` finds (a jpackage runtime inside an application directory, a container's
//! JDK). Files are probed once, by (device, inode).
//!
//! The scan also finds JVMs that slipped past both probes (a path the `dlopen` probe could not
//! read, a libc other than the host's): those are recognised late, after they could have run
//! code, and counted apart (`jvms_late`). Its cost is bounded: each pass reads the maps of
//! the processes that appeared since the previous pass only, at most
//! [`MAX_MAPS_PER_SCAN`] of them, and is timed.

use std::{
    collections::{HashMap, HashSet},
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::Instant,
};

use aya::{
    programs::{uprobe::UProbeScope, UProbe},
    Ebpf,
};

use super::{program_error, SensorError};

/// The programs of `detector-ebpf/src/jvm.rs`: entry and return of libc's `dlopen`.
const DLOPEN_PROGRAMS: [&str; 2] = ["libjvm_dlopen", "libjvm_dlopen_ret"];
/// Its program on `JNI_CreateJavaVM`.
const CREATE_VM_PROGRAM: &str = "libjvm_create_vm";
/// The library's file name (HotSpot, and OpenJ9's `lib/default/libjvm.so` redirector).
pub const LIBJVM: &str = "libjvm.so";
/// Directories searched for JDKs at start, besides `jvm.libjvm_paths`.
const JDK_ROOTS: [&str; 5] = [
    "/usr/lib/jvm",
    "/usr/lib64/jvm",
    "/usr/java",
    "/usr/local",
    "/opt",
];
/// How deep below a root a `libjvm.so` is looked for (`/opt/<vendor>/<app>/lib/runtime/lib/
/// server/libjvm.so`, a jpackage installation, is 7 below `/opt`).
const MAX_DEPTH: usize = 8;
/// Directory entries looked at per root at most: a huge `/opt` or `/usr/local` is cut short.
const MAX_ENTRIES: usize = 50_000;
/// Processes whose maps one scan reads at most; the rest wait for the next pass.
pub const MAX_MAPS_PER_SCAN: usize = 512;

/// Passes that read a new process's maps.
const READS_PER_PROCESS: u8 = 2;

/// What recognising JVMs by their `libjvm.so` cost and found (on the stats line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LibjvmStats {
    /// `JNI_CreateJavaVM` and `dlopen` uprobes attached.
    pub libjvm_probes: u64,
    /// Uprobes that could not be attached (each logged).
    pub libjvm_probe_errors: u64,
    /// Passes over `/proc` (the one at start included).
    pub proc_scans: u64,
    /// `/proc/PID/maps` files read.
    pub proc_maps_read: u64,
    /// The longest pass, µs.
    pub proc_scan_max_us: u64,
}

/// The `libjvm.so` files probed, and the scan's memory of which processes it has read.
#[derive(Debug, Default)]
pub struct LibjvmProbes {
    /// `jvm.recognise_libjvm`: the scan runs.
    enabled: bool,
    /// The uprobe programs loaded: files can be probed.
    loaded: bool,
    /// (device, inode) of every file whose `JNI_CreateJavaVM` is probed (or failed to be).
    probed: HashSet<(u64, u64)>,
    /// Processes whose maps were read, with how many times: a process is read at the first
    /// two passes it is there for, so that one caught between its exec and its `dlopen` is
    /// read again once it has loaded its libraries.
    seen: HashMap<u32, u8>,
    stats: LibjvmStats,
}

/// A process the scan found mapping a `libjvm.so`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLibjvm {
    pub pid: u32,
    /// The path as the process's maps show it (inside its mount namespace).
    pub path: String,
}

impl LibjvmProbes {
    pub fn stats(&self) -> LibjvmStats {
        self.stats
    }

    /// Whether the uprobe programs are loaded (files found from now on are probed).
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// Turns the /proc scan on or off (a reloaded `jvm.recognise_libjvm`).
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Attaches to libc's `dlopen` and to the `libjvm.so` of every JDK found under the usual
    /// directories and `extra` (files, or directories to search). A probe that cannot be
    /// attached is logged and counted: recognition then rests on the other probes and the
    /// scan, and the stats line says so.
    pub fn start(ebpf: &mut Ebpf, extra: &[String]) -> LibjvmProbes {
        let mut probes = LibjvmProbes {
            enabled: true,
            ..LibjvmProbes::default()
        };
        for name in DLOPEN_PROGRAMS.into_iter().chain([CREATE_VM_PROGRAM]) {
            let loaded = uprobe(ebpf, name)
                .and_then(|p| p.load().map_err(|e| program_error(name, "load", e)));
            if let Err(e) = loaded {
                probes.stats.libjvm_probe_errors += 1;
                tracing::error!(
                    "JVMs are not recognised by the libjvm.so they load, only by their launcher's \
                     name and late by the /proc scan: {e}"
                );
                return probes;
            }
        }
        probes.loaded = true;
        match own_libc() {
            Some(libc) => {
                for name in DLOPEN_PROGRAMS {
                    probes.attach(ebpf, name, "dlopen", &libc);
                }
            }
            None => {
                probes.stats.libjvm_probe_errors += 1;
                tracing::error!(
                    "no libc in /proc/self/maps: JVMs started through dlopen(libjvm.so) will be \
                     recognised only by JNI_CreateJavaVM or, late, by the /proc scan"
                );
            }
        }
        let started = Instant::now();
        let mut files = Vec::new();
        for root in JDK_ROOTS
            .iter()
            .map(PathBuf::from)
            .chain(extra.iter().map(PathBuf::from))
        {
            find_libjvm(&root, &mut files);
        }
        for file in files {
            probes.probe_libjvm(ebpf, &file);
        }
        tracing::info!(
            probes = probes.stats.libjvm_probes,
            errors = probes.stats.libjvm_probe_errors,
            "JVMs are recognised by the libjvm.so they load ({} JDK libraries probed, found in {} ms)",
            probes.probed.len(),
            started.elapsed().as_millis()
        );
        probes
    }

    /// Probes `JNI_CreateJavaVM` in `file`, once per (device, inode).
    fn probe_libjvm(&mut self, ebpf: &mut Ebpf, file: &Path) {
        let Ok(meta) = fs::metadata(file) else {
            return;
        };
        if !self.probed.insert((meta.dev(), meta.ino())) {
            return;
        }
        self.attach(ebpf, CREATE_VM_PROGRAM, "JNI_CreateJavaVM", file);
    }

    fn attach(&mut self, ebpf: &mut Ebpf, program: &'static str, symbol: &str, file: &Path) {
        let attached = uprobe(ebpf, program).and_then(|p| {
            p.attach(symbol, file, UProbeScope::AllProcesses)
                .map_err(|e| program_error(program, "attach", e))
        });
        match attached {
            Ok(_) => {
                self.stats.libjvm_probes += 1;
                tracing::debug!("{program} attached to {symbol} in {}", file.display());
            }
            Err(e) => {
                self.stats.libjvm_probe_errors += 1;
                tracing::warn!(
                    "{symbol} in {} is not probed, JVMs it starts are recognised only by the \
                     other probes or late by the /proc scan: {e}",
                    file.display()
                );
            }
        }
    }

    /// One pass over `/proc`: reads the maps of processes not seen before (all of them at
    /// the first pass, at most [`MAX_MAPS_PER_SCAN`] later), probes each `libjvm.so` not yet
    /// probed, and returns the processes that map one.
    pub fn scan(&mut self, ebpf: &mut Ebpf, first: bool) -> Vec<MapsLibjvm> {
        if !self.enabled {
            return Vec::new();
        }
        let started = Instant::now();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let now: HashSet<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .collect();
        let mut found = Vec::new();
        let mut read = 0usize;
        let own = std::process::id();
        for &pid in &now {
            let reads = self.seen.get(&pid).copied().unwrap_or(0);
            if pid == own || reads >= READS_PER_PROCESS || (first && reads > 0) {
                continue;
            }
            if !first && read >= MAX_MAPS_PER_SCAN {
                // Not counted: the next pass reads it.
                continue;
            }
            read += 1;
            // At start every process is read once and for all: the probes are attached by
            // then, so whatever it loads later is seen by them.
            self.seen
                .insert(pid, if first { READS_PER_PROCESS } else { reads + 1 });
            let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
                continue;
            };
            if let Some(path) = libjvm_in_maps(&maps) {
                found.push(MapsLibjvm {
                    pid,
                    path: path.to_owned(),
                });
            }
        }
        // Forget the processes that are gone, so that a reused PID is read again.
        self.seen.retain(|pid, _| now.contains(pid));
        if self.loaded {
            for f in &found {
                // The file as the process sees it, through its root (it may be in a container).
                let file = PathBuf::from(format!("/proc/{}/root{}", f.pid, f.path));
                self.probe_libjvm(ebpf, &file);
            }
        }
        self.stats.proc_scans += 1;
        self.stats.proc_maps_read += read as u64;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.proc_scan_max_us = self.stats.proc_scan_max_us.max(us);
        found
    }
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, SensorError> {
    ebpf.program_mut(name)
        .ok_or(SensorError::MissingProgram { name })?
        .try_into()
        .map_err(|_| SensorError::MissingProgram { name })
}

/// The libc this process maps: on a glibc host, the one every dynamically linked program
/// shares (and where `dlopen` lives since glibc 2.34; before, `libdl.so.2` next to it).
fn own_libc() -> Option<PathBuf> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().filter_map(maps_path).find_map(|path| {
        let name = path.rsplit('/').next()?;
        (name.starts_with("libc.so") || name.starts_with("libc-")).then(|| PathBuf::from(path))
    })
}

/// The path of a `/proc/PID/maps` line, if it maps a file.
fn maps_path(line: &str) -> Option<&str> {
    // address perms offset dev inode path — the path may hold spaces.
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = &rest[rest.find(' ')?..];
    }
    let path = rest.trim_start();
    path.starts_with('/').then_some(path)
}

/// The first `libjvm.so` a `/proc/PID/maps` text maps (a deleted file too: the JVM still runs it).
pub fn libjvm_in_maps(maps: &str) -> Option<&str> {
    maps.lines().filter_map(maps_path).find_map(|path| {
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        (path.rsplit('/').next() == Some(LIBJVM)).then_some(path)
    })
}

/// Every `libjvm.so` at or below `root` (a file or a directory), at most [`MAX_DEPTH`]
/// levels down and [`MAX_ENTRIES`] entries looked at; symbolic links to directories are not
/// followed (JDK directories are often linked to one another).
fn find_libjvm(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        if fs::metadata(root).is_ok_and(|m| m.is_file()) {
            out.push(root.to_path_buf());
        }
        return;
    }
    let mut budget = MAX_ENTRIES;
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 {
                tracing::debug!("stopped looking for libjvm.so under {}", root.display());
                return;
            }
            budget -= 1;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), depth + 1));
            } else if !kind.is_dir() && entry.file_name() == LIBJVM {
                out.push(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libjvm_in_maps() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1311 /opt/app/bin/app
7f1c00000000-7f1c00200000 r--p 00000000 08:01 2244 /opt/my app/lib/runtime/lib/server/libjvm.so
7f1c00200000-7f1c00201000 rw-p 00000000 00:00 0 
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]
";
        assert_eq!(
            libjvm_in_maps(maps),
            Some("/opt/my app/lib/runtime/lib/server/libjvm.so")
        );
        let deleted =
            "7f1c-7f1d r-xp 00000000 08:01 9 /usr/lib/jvm/j/lib/server/libjvm.so (deleted)\n";
        assert_eq!(
            libjvm_in_maps(deleted),
            Some("/usr/lib/jvm/j/lib/server/libjvm.so")
        );
        let none = "7f1c-7f1d r-xp 00000000 08:01 9 /usr/lib/x86_64-linux-gnu/libjvm.so.bak\n";
        assert_eq!(libjvm_in_maps(none), None);
        assert_eq!(libjvm_in_maps(""), None);
    }

    #[test]
    fn finds_libjvm_below_a_directory() {
        let dir = std::env::temp_dir().join(format!("libjvm-find-{}", std::process::id()));
        let server = dir.join("app/lib/runtime/lib/server");
        fs::create_dir_all(&server).expect("mkdir");
        fs::write(server.join(LIBJVM), b"").expect("write");
        fs::write(dir.join("app/libjvm.so.txt"), b"").expect("write");
        let mut found = Vec::new();
        find_libjvm(&dir, &mut found);
        assert_eq!(found, [server.join(LIBJVM)]);
        let mut file = Vec::new();
        find_libjvm(&server.join(LIBJVM), &mut file);
        assert_eq!(file, [server.join(LIBJVM)]);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn this_process_maps_a_libc() {
        assert!(own_libc().is_some());
    }
}
