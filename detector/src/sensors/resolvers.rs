//! Each JVM's own DNS resolvers.
//!
//! A resolver belongs to a mount namespace, not to the host: a container or a pod reads its
//! own `/etc/resolv.conf` (the cluster DNS, a runtime's embedded server), and a query a JVM
//! sends there is as ordinary as a host JVM's query to the host's resolver. Judging every JVM
//! against the host's file raised `jvm_dns_exfil` for ordinary names in every pod whose
//! detector runs outside it.
//!
//! [`ResolverWatch`] keeps, per mount namespace with live JVMs in it, what its
//! `resolv.conf` said when last read, and notices when the file changes (re-read on a change
//! of its inode, size or modification time, checked on [`ResolverWatch::poll`]). The I/O is
//! behind [`ResolvSource`], so the bookkeeping is tested on plain data.

use std::{
    collections::{BTreeSet, HashMap},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::OwnedFd,
};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::procfs::parse_nameservers;
use crate::vocab::ProcessKey;

/// What identifies one version of a file: a rewrite changes the modification time or the
/// size, a replacement (rename, bind mount) the device or inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

/// A namespace's resolver file, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// `None`: the namespace has no readable `/etc/resolv.conf`.
    pub stamp: Option<Stamp>,
    /// The servers its resolver uses: the `nameserver` lines, or the C library's default
    /// (the local machine) when there are none or there is no file.
    pub servers: Vec<IpAddr>,
}

impl ResolvConf {
    /// The resolver configuration a `resolv.conf` text (or its absence) gives.
    pub fn from_text(stamp: Option<Stamp>, text: Option<&str>) -> ResolvConf {
        let mut servers = text.map(parse_nameservers).unwrap_or_default();
        if servers.is_empty() {
            // resolv.conf(5): "If no nameserver entries are present, the default is to use the
            // name server on the local machine" (glibc and musl alike).
            servers = vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ];
        }
        ResolvConf { stamp, servers }
    }
}

/// How the watch reaches a process's mount namespace and resolver file.
pub trait ResolvSource {
    /// The mount namespace of `pid` (the inode of `/proc/PID/ns/mnt`).
    fn mount_ns(&self, pid: u32) -> io::Result<u64>;
    /// The stamp of `/etc/resolv.conf` as `pid` sees it; `Ok(None)` when it has none.
    fn stamp(&self, pid: u32) -> io::Result<Option<Stamp>>;
    /// `/etc/resolv.conf` as `pid` sees it.
    fn read(&self, pid: u32) -> io::Result<ResolvConf>;
}

/// The resolvers of one JVM, to hand to the rules (and to the kernel's allowlist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub jvm: ProcessKey,
    pub mnt_ns: u64,
    pub servers: Vec<IpAddr>,
}

#[derive(Debug)]
struct Space {
    conf: ResolvConf,
    jvms: BTreeSet<ProcessKey>,
}

/// Live JVMs by mount namespace, and what each namespace's resolver file said.
#[derive(Debug, Default)]
pub struct ResolverWatch {
    spaces: HashMap<u64, Space>,
    of_jvm: HashMap<ProcessKey, u64>,
    /// JVMs whose namespace or resolver file could not be read (gone, or no permission):
    /// judged against the host's resolvers.
    unreadable: u64,
}

impl ResolverWatch {
    /// A JVM started (or was found running): its namespace's resolvers, read now if no
    /// other JVM of the namespace had them read already. `None` when /proc no longer shows it
    /// (counted in [`ResolverWatch::unreadable`]).
    pub fn add(&mut self, source: &impl ResolvSource, jvm: ProcessKey) -> Option<Update> {
        let ns = match source.mount_ns(jvm.tgid) {
            Ok(ns) => ns,
            Err(e) => {
                self.unreadable += 1;
                tracing::debug!("mount namespace of JVM {}: {e}", jvm.tgid);
                return None;
            }
        };
        if !self.spaces.contains_key(&ns) {
            let conf = match source.read(jvm.tgid) {
                Ok(conf) => conf,
                Err(e) => {
                    self.unreadable += 1;
                    tracing::warn!(
                        "JVM {}: its /etc/resolv.conf is unreadable ({e}); its DNS queries are \
                         judged against the host's resolvers",
                        jvm.tgid
                    );
                    return None;
                }
            };
            self.spaces.insert(
                ns,
                Space {
                    conf,
                    jvms: BTreeSet::new(),
                },
            );
        }
        let space = self.spaces.get_mut(&ns)?;
        space.jvms.insert(jvm);
        self.of_jvm.insert(jvm, ns);
        Some(Update {
            jvm,
            mnt_ns: ns,
            servers: space.conf.servers.clone(),
        })
    }

    /// A JVM exited; a namespace without JVMs is forgotten.
    pub fn remove(&mut self, jvm: ProcessKey) {
        let Some(ns) = self.of_jvm.remove(&jvm) else {
            return;
        };
        if let Some(space) = self.spaces.get_mut(&ns) {
            space.jvms.remove(&jvm);
            if space.jvms.is_empty() {
                self.spaces.remove(&ns);
            }
        }
    }

    /// Checks every namespace's file (one `stat` each, through one of its JVMs) and re-reads
    /// the changed ones: an update for each JVM of a namespace whose servers changed.
    pub fn poll(&mut self, source: &impl ResolvSource) -> Vec<Update> {
        let mut updates = Vec::new();
        for (ns, space) in &mut self.spaces {
            // Any live JVM of the namespace sees its file; the first that answers will do.
            let Some((pid, stamp)) = space
                .jvms
                .iter()
                .find_map(|j| source.stamp(j.tgid).ok().map(|s| (j.tgid, s)))
            else {
                continue;
            };
            if stamp == space.conf.stamp {
                continue;
            }
            let Ok(conf) = source.read(pid) else {
                continue;
            };
            let changed = conf.servers != space.conf.servers;
            space.conf = conf;
            if changed {
                tracing::info!(
                    mnt_ns = ns,
                    "resolvers changed to {:?} for JVM(s) {:?}",
                    space.conf.servers,
                    space.jvms.iter().map(|j| j.tgid).collect::<Vec<_>>()
                );
                updates.extend(space.jvms.iter().map(|&jvm| Update {
                    jvm,
                    mnt_ns: *ns,
                    servers: space.conf.servers.clone(),
                }));
            }
        }
        updates
    }

    /// JVMs whose resolvers could not be read.
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }
}

/// The real source: /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct Proc;

impl Proc {
    /// `/etc/resolv.conf` opened as `pid` would open it: symbolic links (systemd-resolved's
    /// `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`, absolute ones too) are
    /// followed inside the process's root, not the daemon's.
    fn open(pid: u32) -> io::Result<Option<OwnedFd>> {
        let root = rustix::fs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match rustix::fs::openat2(
            &root,
            "etc/resolv.conf",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn stamp_of(fd: &OwnedFd) -> io::Result<Stamp> {
    let st = rustix::fs::fstat(fd)?;
    Ok(Stamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_sec: st.st_mtime,
        mtime_nsec: i64::try_from(st.st_mtime_nsec).unwrap_or(0),
    })
}

/// A resolver file far larger than any real one is not read past this (a hostile container
/// must not make the daemon read gigabytes).
const MAX_RESOLV_CONF: u64 = 64 * 1024;

impl ResolvSource for Proc {
    fn mount_ns(&self, pid: u32) -> io::Result<u64> {
        Ok(rustix::fs::stat(format!("/proc/{pid}/ns/mnt"))?.st_ino)
    }

    fn stamp(&self, pid: u32) -> io::Result<Option<Stamp>> {
        Proc::open(pid)?.map(|fd| stamp_of(&fd)).transpose()
    }

    fn read(&self, pid: u32) -> io::Result<ResolvConf> {
        use std::io::Read as _;
        let Some(fd) = Proc::open(pid)? else {
            return Ok(ResolvConf::from_text(None, None));
        };
        let stamp = stamp_of(&fd)?;
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(MAX_RESOLV_CONF)
            .read_to_string(&mut text)?;
        Ok(ResolvConf::from_text(Some(stamp), Some(&text)))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A process's mount namespace, and its resolv.conf's version and text.
    type FakeProc = (u64, Option<(u64, String)>);

    /// Processes by pid.
    #[derive(Default)]
    struct Fake {
        procs: RefCell<HashMap<u32, FakeProc>>,
        reads: RefCell<u32>,
    }

    impl Fake {
        fn set(&self, pid: u32, ns: u64, file: Option<(u64, &str)>) {
            self.procs
                .borrow_mut()
                .insert(pid, (ns, file.map(|(v, t)| (v, t.to_owned()))));
        }

        fn get(&self, pid: u32) -> io::Result<FakeProc> {
            self.procs
                .borrow()
                .get(&pid)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn stamp(version: u64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_sec: i64::try_from(version).unwrap_or(0),
            mtime_nsec: 0,
        }
    }

    impl ResolvSource for Fake {
        fn mount_ns(&self, pid: u32) -> io::Result<u64> {
            Ok(self.get(pid)?.0)
        }
        fn stamp(&self, pid: u32) -> io::Result<Option<Stamp>> {
            Ok(self.get(pid)?.1.map(|(v, _)| stamp(v)))
        }
        fn read(&self, pid: u32) -> io::Result<ResolvConf> {
            *self.reads.borrow_mut() += 1;
            let file = self.get(pid)?.1;
            Ok(ResolvConf::from_text(
                file.as_ref().map(|(v, _)| stamp(*v)),
                file.as_ref().map(|(_, t)| t.as_str()),
            ))
        }
    }

    fn jvm(tgid: u32) -> ProcessKey {
        ProcessKey {
            tgid,
            start_ns: u64::from(tgid) * 1000,
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter()
            .map(|s| s.parse().expect("test address"))
            .collect()
    }

    #[test]
    fn each_jvm_gets_its_namespaces_resolvers_read_once_per_namespace() {
        let fake = Fake::default();
        fake.set(10, 1, Some((1, "nameserver 10.0.0.2\n")));
        fake.set(11, 1, Some((1, "nameserver 10.0.0.2\n")));
        fake.set(
            20,
            2,
            Some((1, "search svc.cluster.local\nnameserver 10.96.0.10\n")),
        );
        let mut watch = ResolverWatch::default();

        let a = watch.add(&fake, jvm(10)).expect("readable");
        let b = watch.add(&fake, jvm(11)).expect("readable");
        let c = watch.add(&fake, jvm(20)).expect("readable");
        assert_eq!((a.mnt_ns, a.servers.clone()), (1, ips(&["10.0.0.2"])));
        assert_eq!(b.servers, a.servers);
        assert_eq!((c.mnt_ns, c.servers), (2, ips(&["10.96.0.10"])));
        assert_eq!(*fake.reads.borrow(), 2, "one read per namespace");
        assert!(watch.poll(&fake).is_empty(), "nothing changed");
    }

    #[test]
    fn a_changed_file_updates_every_jvm_of_its_namespace_only() {
        let fake = Fake::default();
        fake.set(10, 1, Some((1, "nameserver 10.0.0.2\n")));
        fake.set(11, 1, Some((1, "nameserver 10.0.0.2\n")));
        fake.set(20, 2, Some((1, "nameserver 10.96.0.10\n")));
        let mut watch = ResolverWatch::default();
        for pid in [10, 11, 20] {
            watch.add(&fake, jvm(pid));
        }

        // Rewritten with the same servers (a comment added): re-read, no update.
        fake.set(10, 1, Some((2, "# edited\nnameserver 10.0.0.2\n")));
        assert!(watch.poll(&fake).is_empty());
        assert_eq!(*fake.reads.borrow(), 3);

        fake.set(10, 1, Some((3, "nameserver 10.0.0.9\n")));
        let updates = watch.poll(&fake);
        assert_eq!(
            updates,
            vec![
                Update {
                    jvm: jvm(10),
                    mnt_ns: 1,
                    servers: ips(&["10.0.0.9"])
                },
                Update {
                    jvm: jvm(11),
                    mnt_ns: 1,
                    servers: ips(&["10.0.0.9"])
                },
            ]
        );
        assert!(watch.poll(&fake).is_empty(), "reported once");
    }

    #[test]
    fn no_file_or_no_nameserver_means_the_local_machine() {
        let local = ips(&["127.0.0.1", "::1"]);
        assert_eq!(ResolvConf::from_text(None, None).servers, local);
        assert_eq!(
            ResolvConf::from_text(Some(stamp(1)), Some("search example\n")).servers,
            local
        );
        let fake = Fake::default();
        fake.set(10, 1, None);
        let mut watch = ResolverWatch::default();
        assert_eq!(watch.add(&fake, jvm(10)).map(|u| u.servers), Some(local));
        // The file appears later.
        fake.set(10, 1, Some((1, "nameserver 192.0.2.53\n")));
        let updates = watch.poll(&fake);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].servers, ips(&["192.0.2.53"]));
    }

    #[test]
    fn gone_processes_are_counted_and_empty_namespaces_forgotten() {
        let fake = Fake::default();
        let mut watch = ResolverWatch::default();
        assert_eq!(watch.add(&fake, jvm(99)), None);
        assert_eq!(watch.unreadable(), 1);

        fake.set(10, 1, Some((1, "nameserver 10.0.0.2\n")));
        watch.add(&fake, jvm(10));
        watch.remove(jvm(10));
        assert!(watch.spaces.is_empty() && watch.of_jvm.is_empty());
        // Removing twice, or an unknown JVM, is harmless.
        watch.remove(jvm(10));
        watch.remove(jvm(77));
    }

    #[test]
    fn a_namespace_is_polled_through_any_jvm_still_answering() {
        let fake = Fake::default();
        fake.set(10, 1, Some((1, "nameserver 10.0.0.2\n")));
        fake.set(11, 1, Some((1, "nameserver 10.0.0.2\n")));
        let mut watch = ResolverWatch::default();
        watch.add(&fake, jvm(10));
        watch.add(&fake, jvm(11));
        // pid 10 vanished from /proc before its exit event was handled.
        fake.procs.borrow_mut().remove(&10);
        fake.set(11, 1, Some((2, "nameserver 10.0.0.3\n")));
        let updates = watch.poll(&fake);
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert!(updates.iter().all(|u| u.servers == ips(&["10.0.0.3"])));
    }

    #[test]
    fn proc_reads_the_file_this_process_sees() {
        let me = std::process::id();
        let conf = Proc.read(me).expect("own resolv.conf readable");
        let direct = std::fs::read_to_string("/etc/resolv.conf").ok();
        assert_eq!(
            conf.servers,
            ResolvConf::from_text(None, direct.as_deref()).servers
        );
        assert_eq!(Proc.stamp(me).expect("stat"), conf.stamp);
        let ns = Proc.mount_ns(me).expect("own mount namespace");
        assert_eq!(Proc.mount_ns(me).ok(), Some(ns));
        assert!(Proc.mount_ns(u32::MAX).is_err(), "no such process");
    }
}
