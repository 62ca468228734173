//! A JVM's DNS resolvers are those of its own mount namespace: a container's or a pod's
//! `/etc/resolv.conf` (the cluster DNS, a runtime's embedded server), not the host's.
//!
//! The JVM runs in a mount namespace of its own (`unshare -m`) whose `/etc/resolv.conf` is a
//! bind mount of a scratch file naming a loopback name server (`127.0.0.77`, answering
//! NXDOMAIN) that the host's resolv.conf does not name. Proves:
//! - monitor mode: the JVM's ordinary lookups through the C library reach that server and
//!   raise nothing; after the file is rewritten to name another server (`127.0.0.78`), the
//!   next lookup goes there and raises nothing either, while a query sent straight to the old
//!   server (a JNDI `dns://` lookup) is one `jvm_dns_exfil` alert: the detector followed the
//!   change, and the first server was only trusted as that JVM's resolver;
//! - enforce mode with every unexpected connect denied (and loopback not allowlisted): the
//!   JVM's lookups to its own resolver are not denied, while the same JVM's query to another
//!   server is denied and reported.

use std::{
    net::{IpAddr, Ipv4Addr},
    process::Command,
    time::Duration,
};

use integration_tests::{
    alert, assert_nothing_lost_with_egress, require_kernel_support, spawn_in_cgroup, Detector,
    JavaProgram, Mode, Policy, ProgramRun, ScratchDir, TestCgroup, UdpReply, UdpServer,
    PROGRAM_TIMEOUT, SERVER_TIMEOUT,
};
use serde_json::Value;

const OWN_RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77));
const NEXT_RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 78));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 79));

/// The daemon checks resolver files once a second: wait for a few checks.
const FOLLOW_TIME: Duration = Duration::from_millis(3500);

/// `Resolve STEPS...` in a mount namespace of its own where `/etc/resolv.conf` is `resolv`.
/// `unshare` and `sh` exec in place, so the spawned pid is the JVM's.
fn resolve_in_own_namespace(
    cgroup: &TestCgroup,
    resolv: &std::path::Path,
    steps: &[String],
) -> integration_tests::RunningProgram {
    let mut program = JavaProgram::new("Resolve");
    for step in steps {
        program = program.arg(step);
    }
    let java = program.command();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(resolv)
        .arg(java.get_program())
        .args(java.get_args());
    spawn_in_cgroup(command, cgroup)
}

fn assert_received(server: &UdpServer, name: &str, run: &str) {
    let (_, received) = server.wait_for(|t| t.datagrams >= 1, SERVER_TIMEOUT);
    assert!(
        received && server.dns_names().iter().any(|n| n == name),
        "{server:?} received no query for {name}:\n{run}"
    );
}

fn dns_exfil_to(alert: &Value, server: IpAddr, port: u64) -> bool {
    alert::rule(alert) == Some(alert::DNS_EXFIL)
        && alert::network_str(alert, "dst_ip") == Some(&server.to_string())
        && alert::dst_port(alert) == Some(port)
}

#[test]
fn resolvers_come_from_the_jvms_mount_namespace_and_are_followed() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("dns-own-namespace");
    let own = UdpServer::start(OWN_RESOLVER, 53, UdpReply::DnsNxDomain);
    let next = UdpServer::start(NEXT_RESOLVER, 53, UdpReply::DnsNxDomain);
    let scratch = ScratchDir::new("dns-own-namespace");
    let resolv = scratch.file("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {OWN_RESOLVER}\n")).expect("writing resolv.conf");
    let switched = scratch.file("switched");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let steps = [
        "name:first.ordinary.test".to_owned(),
        format!("wait:{}", switched.display()),
        "name:second.ordinary.test".to_owned(),
        format!("jndi:dns://{OWN_RESOLVER}:53/pwned.example.com"),
    ];
    let running = resolve_in_own_namespace(&cgroup, &resolv, &steps);
    let jvm = u64::from(running.pid());
    assert_received(&own, "first.ordinary.test", &running.stdout_so_far());

    // The container's runtime rewrites its resolv.conf (same file, new contents).
    std::fs::write(&resolv, format!("# moved\nnameserver {NEXT_RESOLVER}\n"))
        .expect("rewriting resolv.conf");
    std::thread::sleep(FOLLOW_TIME);
    std::fs::write(&switched, "").expect("writing the step file");
    let run: ProgramRun = running.wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert_eq!(run.jvm_pid(), jvm, "the JVM is the spawned process:\n{run}");
    assert_eq!(
        run.value("waited"),
        Some(&*switched.display().to_string()),
        "{run}"
    );
    assert_received(&next, "second.ordinary.test", &run.to_string());
    assert!(
        own.dns_names().iter().any(|n| n == "pwned.example.com"),
        "{own:?} received no direct query:\n{run}"
    );

    let found = alert::expect_only_alert(&detector, |a| {
        dns_exfil_to(a, OWN_RESOLVER, 53) && alert::jvm_pid(a) == Some(jvm)
    });
    assert_eq!(
        alert::dns_name(&found).as_deref(),
        Some("pwned.example.com")
    );
    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn enforce_lets_a_jvm_reach_its_own_resolver_and_nothing_else() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("dns-own-namespace-enforce");
    let own = UdpServer::start(OWN_RESOLVER, 53, UdpReply::DnsNxDomain);
    let stranger = UdpServer::start(STRANGER, 53, UdpReply::DnsNxDomain);
    let scratch = ScratchDir::new("dns-own-namespace-enforce");
    let resolv = scratch.file("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {OWN_RESOLVER}\n")).expect("writing resolv.conf");
    // Loopback is not allowlisted: only the JVM's own resolver is reachable.
    let policy = Policy::new(Mode::Enforce)
        .block_unexpected(true)
        .allow_egress(None, &["192.0.2.0/24"], &[80]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    let steps = [
        "name:ordinary.test".to_owned(),
        format!("jndi:dns://{STRANGER}:53/pwned.example.com"),
    ];
    let run = resolve_in_own_namespace(&cgroup, &resolv, &steps).wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert_received(&own, "ordinary.test", &run.to_string());
    assert!(
        stranger.dns_names().is_empty(),
        "the query to {STRANGER} was not denied: {stranger:?}\n{run}"
    );
    let jvm = run.jvm_pid();
    let found = alert::expect_only_alert(&detector, |a| {
        dns_exfil_to(a, STRANGER, 53) || alert::rule(a) == Some(alert::UNEXPECTED_EGRESS)
    });
    assert_eq!(
        alert::jvm_pid(&found),
        Some(jvm),
        "{}",
        alert::pretty(&found)
    );
    assert_eq!(
        alert::action(&found),
        Some("blocked"),
        "{}",
        alert::pretty(&found)
    );
    assert_eq!(
        alert::network_str(&found, "dst_ip"),
        Some(&*STRANGER.to_string()),
        "{}",
        alert::pretty(&found)
    );
    assert_nothing_lost_with_egress(&detector.stop());
}
