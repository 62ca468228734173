//! The words every layer shares: rules, severities, actions, what an executed program or a
//! connection was recognised as, and how a process is named across PID reuse.
//!
//! This is the bottom of the crate: it imports nothing of it (only the kernel's `CLASS_*` and
//! `PROTO_*` codes from `detector-common`), and the policy, the events, the rules, the alerts
//! and the sinks all speak it. Each name is written once, in the table of its enum below: the
//! alert's JSON, the policy's TOML, recordings, logs and error messages all take it from there
//! (`docs/contract.md` lists them; a test there checks that they agree).

use detector_common::{
    CLASS_DOWNLOADER, CLASS_INTERPRETER, CLASS_MEMFD, CLASS_SHELL, CLASS_WRITABLE_DIR,
    JVM_BY_DLOPEN, JVM_BY_JNI_CREATE, JVM_BY_LAUNCHER_NAME, JVM_BY_LAUNCHER_PATH, JVM_BY_PROC_MAPS,
    PROTO_DNS, PROTO_LDAP, PROTO_RMI,
};
use serde::{Deserialize, Serialize};

/// An enum whose variants have one name each, given once: serde (JSON, TOML), [`as_str`],
/// [`from_name`], `Display` and the lists [`ALL`] and [`NAMES`] all come from the same table.
///
/// [`as_str`]: Rule::as_str
/// [`from_name`]: Rule::from_name
/// [`ALL`]: Rule::ALL
/// [`NAMES`]: Rule::NAMES
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name used in alerts, the policy, recordings and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant of a name; `None` when there is none.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named! {
    /// What an alert is about. New rules may be added; these names never change.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Rule {
        /// A JVM or its descendant executed a shell, interpreter or downloader, or a program
        /// from a world-writable directory or a memory file.
        JvmShellSpawn = "jvm_shell_spawn",
        /// Outbound LDAP from a JVM lineage (the JNDI `ldap://` step).
        JvmLdapEgress = "jvm_ldap_egress",
        /// Outbound Java RMI (JRMP) from a JVM lineage (the JNDI `rmi://` step).
        JvmRmiEgress = "jvm_rmi_egress",
        /// A DNS lookup by a JVM lineage that looks like exfiltration or JNDI.
        JvmDnsExfil = "jvm_dns_exfil",
        /// An outbound connect outside the egress allowlist.
        JvmUnexpectedEgress = "jvm_unexpected_egress",
        /// A JVM received a request carrying a JNDI lookup string.
        JndiProbe = "jndi_probe",
        /// A JVM received Java class bytes over a connection it made.
        JvmClassDownload = "jvm_class_download",
        /// Several stages of one attack on one JVM: the correlated incident.
        ExploitChain = "exploit_chain",
        /// The kernel sensors dropped events.
        SensorLoss = "sensor_loss",
    }
}

named! {
    /// How bad it is: an alert's `severity`, and the least one a sink is sent
    /// (`[[sinks]] min_severity`). Ordered: `Low < Medium < High < Critical`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

named! {
    /// What was done about it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Action {
        /// Nothing was stopped.
        Reported = "reported",
        /// Denied in the kernel before it happened.
        Blocked = "blocked",
        /// The offending program was killed.
        Killed = "killed",
        /// The process was stopped (SIGSTOP) for a human to look at.
        Frozen = "frozen",
    }
}

named! {
    /// What the kernel recognised an executed program as (an alert's `class`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ProgramClass {
        /// A command shell (`exec.shells`).
        Shell = "shell",
        /// A script interpreter (`exec.interpreters`).
        Interpreter = "interpreter",
        /// A downloader or network tool (`exec.downloaders`).
        Downloader = "downloader",
        /// Any program run from a world-writable directory (`exec.writable_dirs`).
        WritableDir = "writable_dir",
        /// A program run from an anonymous memory file (`exec.memfd`).
        Memfd = "memfd",
    }
}

impl ProgramClass {
    /// The `CLASS_*` value the kernel uses for this class (in its class map and in exec
    /// events).
    pub fn code(self) -> u32 {
        match self {
            ProgramClass::Shell => CLASS_SHELL,
            ProgramClass::Interpreter => CLASS_INTERPRETER,
            ProgramClass::Downloader => CLASS_DOWNLOADER,
            ProgramClass::WritableDir => CLASS_WRITABLE_DIR,
            ProgramClass::Memfd => CLASS_MEMFD,
        }
    }

    /// The class of a kernel `CLASS_*` value; `None` for `CLASS_NONE` and unknown values.
    pub fn from_code(code: u32) -> Option<ProgramClass> {
        ProgramClass::ALL
            .iter()
            .copied()
            .find(|class| class.code() == code)
    }
}

named! {
    /// A protocol the kernel recognises, by destination port or by the first bytes sent
    /// (an alert's `network.protocol`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum NetProtocol {
        /// LDAP (the JNDI `ldap://` and `ldaps://` providers).
        Ldap = "ldap",
        /// Java RMI, JRMP (the JNDI `rmi://` provider).
        Rmi = "rmi",
        /// DNS (a name lookup, or the JNDI `dns://` provider).
        Dns = "dns",
    }
}

impl NetProtocol {
    /// The `PROTO_*` value the kernel uses for this protocol.
    pub fn code(self) -> u32 {
        match self {
            NetProtocol::Ldap => PROTO_LDAP,
            NetProtocol::Rmi => PROTO_RMI,
            NetProtocol::Dns => PROTO_DNS,
        }
    }

    /// The protocol of a kernel `PROTO_*` value; `None` for `PROTO_NONE` and unknown values.
    pub fn from_code(code: u32) -> Option<NetProtocol> {
        NetProtocol::ALL
            .iter()
            .copied()
            .find(|protocol| protocol.code() == code)
    }
}

named! {
    /// The transport of a connection (an alert's `network.transport`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Transport {
        Tcp = "tcp",
        Udp = "udp",
    }
}

named! {
    /// How a protocol was recognised (an alert's `network.recognised_by`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum RecognisedBy {
        /// The destination port is configured as that protocol's.
        Port = "port",
        /// The first bytes sent are that protocol's.
        Payload = "payload",
    }
}

named! {
    /// How a process was recognised as a JVM (a recorded exec's `recognised_by`, the stats
    /// line's `jvms_recognised`; docs/jvm.md).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum JvmRecognition {
        /// At exec: `comm` is a configured launcher name (`jvm.launchers`).
        LauncherName = "launcher_name",
        /// At exec: the path is a configured launcher path (`jvm.launcher_paths`).
        LauncherPath = "launcher_path",
        /// It `dlopen()`ed a `libjvm.so` (uprobe on libc's `dlopen`).
        Dlopen = "libjvm_dlopen",
        /// It called `JNI_CreateJavaVM` in a probed `libjvm.so`.
        JniCreateJavaVm = "jni_create_java_vm",
        /// The daemon found `libjvm.so` in its `/proc/PID/maps` (at start, or by the periodic
        /// scan: after it could have run code).
        ProcMaps = "proc_maps",
    }
}

impl JvmRecognition {
    /// The kernel's `JVM_BY_*` code; `None` for `JVM_BY_NONE` or an unknown code.
    pub fn from_code(code: u32) -> Option<JvmRecognition> {
        Some(match code {
            JVM_BY_LAUNCHER_NAME => JvmRecognition::LauncherName,
            JVM_BY_LAUNCHER_PATH => JvmRecognition::LauncherPath,
            JVM_BY_DLOPEN => JvmRecognition::Dlopen,
            JVM_BY_JNI_CREATE => JvmRecognition::JniCreateJavaVm,
            JVM_BY_PROC_MAPS => JvmRecognition::ProcMaps,
            _ => return None,
        })
    }
}

named! {
    /// Which way the traffic went, seen from the JVM (an alert's `network.direction`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Direction {
        /// The JVM sent it (`dst_*` is the remote end).
        Outbound = "outbound",
        /// The JVM received it (`dst_*` is the remote end that sent it; `local_port` is the
        /// JVM's).
        Inbound = "inbound",
    }
}

/// A process's identity across PID reuse: a tgid is reused, a tgid with its start time is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessKey {
    pub tgid: u32,
    /// Process start, ns since boot.
    pub start_ns: u64,
}

#[cfg(test)]
mod tests {
    use detector_common::{CLASS_NONE, PROTO_NONE};

    use super::*;

    /// serde, `as_str`, `from_name` and `Display` agree for every variant.
    fn names_agree<T>(all: &[T], names: &[&str], as_str: fn(&T) -> &'static str)
    where
        T: Serialize + for<'de> Deserialize<'de> + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        assert_eq!(all.len(), names.len());
        for (value, name) in all.iter().zip(names) {
            assert_eq!(as_str(value), *name);
            assert_eq!(value.to_string(), *name);
            let json = serde_json::to_string(value).expect("serialises");
            assert_eq!(json, format!("\"{name}\""));
            let back: T = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(&back, value);
        }
    }

    #[test]
    fn every_name_is_one_name() {
        names_agree(Rule::ALL, Rule::NAMES, |r| r.as_str());
        names_agree(Severity::ALL, Severity::NAMES, |s| s.as_str());
        names_agree(Action::ALL, Action::NAMES, |a| a.as_str());
        names_agree(ProgramClass::ALL, ProgramClass::NAMES, |c| c.as_str());
        names_agree(NetProtocol::ALL, NetProtocol::NAMES, |p| p.as_str());
        names_agree(Transport::ALL, Transport::NAMES, |t| t.as_str());
        names_agree(RecognisedBy::ALL, RecognisedBy::NAMES, |r| r.as_str());
        names_agree(Direction::ALL, Direction::NAMES, |d| d.as_str());
        names_agree(JvmRecognition::ALL, JvmRecognition::NAMES, |r| r.as_str());
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.as_str()), Some(*rule));
        }
        assert_eq!(Rule::from_name("jvm_shell"), None);
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn kernel_codes_round_trip() {
        for class in ProgramClass::ALL {
            assert_eq!(ProgramClass::from_code(class.code()), Some(*class));
        }
        for protocol in NetProtocol::ALL {
            assert_eq!(NetProtocol::from_code(protocol.code()), Some(*protocol));
        }
        assert_eq!(ProgramClass::from_code(CLASS_NONE), None);
        assert_eq!(NetProtocol::from_code(PROTO_NONE), None);
    }

    #[test]
    fn class_names() {
        assert_eq!(ProgramClass::Shell.as_str(), "shell");
        assert_eq!(ProgramClass::Interpreter.as_str(), "interpreter");
        assert_eq!(ProgramClass::Downloader.as_str(), "downloader");
        assert_eq!(ProgramClass::WritableDir.as_str(), "writable_dir");
        assert_eq!(ProgramClass::Memfd.as_str(), "memfd");
    }

    #[test]
    fn class_codes_round_trip() {
        for code in 0..8 {
            match ProgramClass::from_code(code) {
                Some(class) => assert_eq!(class.code(), code),
                None => assert!(code == CLASS_NONE || code > CLASS_MEMFD),
            }
        }
        assert_eq!(
            ProgramClass::from_code(CLASS_SHELL),
            Some(ProgramClass::Shell)
        );
    }

    #[test]
    fn protocol_names_and_codes() {
        assert_eq!(NetProtocol::Ldap.as_str(), "ldap");
        assert_eq!(NetProtocol::Rmi.as_str(), "rmi");
        assert_eq!(NetProtocol::Dns.as_str(), "dns");
        for code in 0..8 {
            match NetProtocol::from_code(code) {
                Some(protocol) => assert_eq!(protocol.code(), code),
                None => assert!(code == PROTO_NONE || code > PROTO_DNS),
            }
        }
        assert_eq!(NetProtocol::from_code(PROTO_RMI), Some(NetProtocol::Rmi));
        assert_eq!(
            serde_json::to_string(&NetProtocol::Ldap).ok().as_deref(),
            Some("\"ldap\"")
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let err = serde_json::from_str::<Severity>("\"urgent\"").expect_err("not a severity");
        assert!(
            err.to_string()
                .contains("expected one of `low`, `medium`, `high`, `critical`"),
            "{err}"
        );
    }
}
