//! Parsing and validation of policy text: the built-in policy, and every way a file is rejected
//! (each message naming the file, the line and the key). The matching helpers are tested next
//! to them in `matching.rs`.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::vocab::{NetProtocol, Rule, Severity};

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text, Path::new("policy.toml"))
}

/// The error `text` is rejected with, as printed.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(policy) => panic!("accepted: {policy:?}"),
        Err(err) => err.to_string(),
    }
}

#[track_caller]
fn assert_error(text: &str, expected_prefix: &str) {
    let message = error(text);
    assert!(
        message.starts_with(expected_prefix),
        "expected a message starting with\n  {expected_prefix}\ngot\n  {message}"
    );
}

// === the built-in policy ===

#[test]
fn builtin_parses() {
    let origin = Path::new(BUILTIN_ORIGIN);
    let raw = raw::parse(BUILTIN_TOML, origin).expect("default.toml is TOML of the schema");
    validate::validate(raw, &Policy::blank(), BUILTIN_TOML, origin)
        .expect("default.toml passes validation");

    let p = Policy::builtin();
    assert_eq!(p.mode, Mode::Monitor);
    assert_eq!(p.jvm.launchers, ["java"]);
    assert!(p.jvm.launcher_paths.is_empty());
    assert!(p.jvm.recognise_libjvm);
    assert!(p.jvm.libjvm_paths.is_empty());
    assert!(!p.response.kill_jvm);
    assert!(p.exec.shells.iter().any(|n| n == "sh"));
    assert!(p.exec.interpreters.iter().any(|n| n == "python"));
    assert!(p.exec.downloaders.iter().any(|n| n == "curl"));
    assert!(p.exec.writable_dirs.iter().any(|d| d == "/tmp/"));
    assert!(p.exec.memfd);
    assert!(
        p.exec.allow.is_empty(),
        "no allow rule is active by default"
    );
    assert_eq!(p.egress.ldap_ports, [389, 636, 1389, 3268, 3269]);
    assert_eq!(p.egress.rmi_ports, [1098, 1099]);
    assert_eq!(p.egress.dns_ports, [53]);
    assert!(p.egress.block_ldap_rmi);
    assert!(!p.egress.block_unexpected);
    assert!(p.egress.quarantine);
    assert!(p.egress.report_unexpected);
    assert_eq!(
        p.egress.allow,
        [NetAllowRule {
            app: None,
            cidrs: vec![cidr("127.0.0.0/8"), cidr("::1")],
            ports: None,
            reason: Some("loopback: local services; LDAP and RMI to them still alert".to_owned()),
        }]
    );
    assert!(p.dns.resolvers.is_empty());
    assert_eq!(p.dns.max_label_len, 40);
    assert_eq!(p.dns.entropy_min_len, 16);
    assert_eq!(p.dns.entropy_bits, 3.5);
    assert!(p.dns.allow_suffixes.is_empty());
    assert_eq!(
        p.summary(),
        "mode monitor; 1 JVM launcher; 13 shells, 19 interpreters, 16 downloaders; \
         3 writable dirs; memfd on; 0 allow rules; \
         egress: 1 allow rule, LDAP/RMI blocked in enforce, unexpected reported"
    );
}

/// Defaults come from default.toml, so it must state every key: read over two different
/// bases, it must give the same policy.
#[test]
fn builtin_sets_every_key() {
    let origin = Path::new(BUILTIN_ORIGIN);
    let read_over = |base: &Policy| {
        let raw = raw::parse(BUILTIN_TOML, origin).expect("default.toml parses");
        validate::validate(raw, base, BUILTIN_TOML, origin).expect("default.toml is valid")
    };
    let mut other = Policy::blank();
    other.mode = Mode::Enforce;
    other.jvm.launchers = vec!["x".to_owned()];
    other.jvm.launcher_paths = vec!["/x".to_owned()];
    other.response.kill_jvm = true;
    other.exec.shells = vec!["x".to_owned()];
    other.exec.interpreters = vec!["y".to_owned()];
    other.exec.downloaders = vec!["z".to_owned()];
    other.exec.writable_dirs = vec!["/x/".to_owned()];
    other.exec.memfd = false;
    other.egress = EgressPolicy {
        ldap_ports: vec![1],
        rmi_ports: vec![2],
        dns_ports: vec![3],
        block_ldap_rmi: !builtin_egress().block_ldap_rmi,
        block_unexpected: !builtin_egress().block_unexpected,
        quarantine: !builtin_egress().quarantine,
        report_unexpected: !builtin_egress().report_unexpected,
        allow: vec![NetAllowRule {
            app: Some("x".to_owned()),
            cidrs: vec![cidr("10.0.0.0/8")],
            ports: Some(vec![1]),
            reason: None,
        }],
    };
    other.dns = DnsPolicy {
        resolvers: vec!["10.0.0.2".parse().expect("address")],
        max_label_len: 63,
        entropy_min_len: 63,
        entropy_bits: 8.0,
        allow_suffixes: vec!["x".to_owned()],
    };
    assert_eq!(read_over(&Policy::blank()), read_over(&other));
}

fn cidr(text: &str) -> Cidr {
    Cidr::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

fn builtin_egress() -> EgressPolicy {
    Policy::builtin().egress
}

#[test]
fn empty_file_is_the_builtin_policy() {
    assert_eq!(parse("").expect("empty policy"), Policy::builtin());
    assert_eq!(Policy::default(), Policy::builtin());
}

// === reading a policy ===

#[test]
fn keys_left_out_keep_builtin_values() {
    let p = parse(
        r#"
mode = "enforce"
[exec]
shells = ["sh"]
writable_dirs = ["/scratch//", "/srv/upload/"]
"#,
    )
    .expect("valid policy");
    let builtin = Policy::builtin();
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.exec.shells, ["sh"]);
    // Normalised to exactly one trailing '/'.
    assert_eq!(p.exec.writable_dirs, ["/scratch/", "/srv/upload/"]);
    assert_eq!(p.exec.interpreters, builtin.exec.interpreters);
    assert_eq!(p.exec.downloaders, builtin.exec.downloaders);
    assert_eq!(p.jvm, builtin.jvm);
    assert_eq!(p.response, builtin.response);
    assert_eq!(p.exec.memfd, builtin.exec.memfd);
}

#[test]
fn allow_rules_and_summary() {
    let p = parse(
        r#"
[jvm]
launcher_paths = ["/opt/app/bin/server"]

[response]
kill_jvm = true

[exec]
memfd = false

[[exec.allow]]
app = "build-agent.jar"
programs = ["/usr/bin/git", "sh"]
reason = "CI agent runs git"

[[exec.allow]]
programs = ["/opt/app/bin/helper.sh"]
"#,
    )
    .expect("valid policy");
    assert_eq!(
        p.exec.allow,
        [
            ExecAllow {
                app: Some("build-agent.jar".to_owned()),
                programs: vec!["/usr/bin/git".to_owned(), "sh".to_owned()],
                reason: Some("CI agent runs git".to_owned()),
            },
            ExecAllow {
                app: None,
                programs: vec!["/opt/app/bin/helper.sh".to_owned()],
                reason: None,
            },
        ]
    );
    assert_eq!(
        p.summary(),
        "mode monitor; 2 JVM launchers; 13 shells, 19 interpreters, 16 downloaders; \
         3 writable dirs; memfd off; 2 allow rules; kill_jvm on; \
         egress: 1 allow rule, LDAP/RMI blocked in enforce, unexpected reported"
    );
}

#[test]
fn a_name_twice_in_one_list_is_harmless() {
    let p = parse("[exec]\nshells = [\"sh\", \"sh\"]\n").expect("valid policy");
    assert_eq!(p.exec.shells, ["sh", "sh"]);
}

#[test]
fn load_reads_a_file() {
    let path = std::env::temp_dir().join(format!("detector-policy-{}.toml", std::process::id()));
    std::fs::write(&path, "mode = \"enforce\"\n").expect("write temp policy");
    let loaded = Policy::load(&path);
    std::fs::remove_file(&path).expect("remove temp policy");
    assert_eq!(loaded.expect("valid policy").mode, Mode::Enforce);

    let missing = Policy::load(Path::new("/nonexistent/policy.toml"));
    let Err(err @ PolicyError::Read { .. }) = missing else {
        panic!("expected a read error, got {missing:?}");
    };
    assert_eq!(
        err.to_string(),
        "/nonexistent/policy.toml: cannot read the policy file"
    );
}

#[test]
fn mode_from_str_and_display() {
    assert_eq!("monitor".parse::<Mode>().ok(), Some(Mode::Monitor));
    assert_eq!("enforce".parse::<Mode>().ok(), Some(Mode::Enforce));
    assert_eq!(Mode::Enforce.to_string(), "enforce");
    assert_eq!(Mode::default(), Mode::Monitor);
    let err = "Enforce".parse::<Mode>().expect_err("modes are lowercase");
    assert_eq!(
        err.to_string(),
        "unknown mode `Enforce`, expected `monitor` or `enforce`"
    );
}

// === parse errors: file, line, column, key ===

#[test]
fn unknown_top_level_key() {
    let message = error("# policy\n\nmodee = \"enforce\"\n");
    assert!(
        message.starts_with("policy.toml:3:1: modee: unknown field `modee`, expected one of"),
        "{message}"
    );
}

#[test]
fn unknown_key_in_a_table() {
    assert_error(
        "[exec]\nshells = [\"sh\"]\nshell = [\"bash\"]\n",
        "policy.toml:3:1: exec.shell: unknown field `shell`",
    );
    assert_error(
        "[[exec.allow]]\nprograms = [\"git\"]\n\n[[exec.allow]]\nprogram = [\"git\"]\n",
        "policy.toml:5:1: exec.allow[1].program: unknown field `program`",
    );
    // A dotted key names the same path as a table header would.
    assert_error(
        "exec.shellz = []\n",
        "policy.toml:1:6: exec.shellz: unknown field `shellz`",
    );
    assert_error(
        "[exec]\nallow = [{ programs = [\"git\"], ap = \"x\" }]\n",
        "policy.toml:2:32: exec.allow[0].ap: unknown field `ap`",
    );
    assert_error(
        "[jvm]\nlauncher = \"java\"\n",
        "policy.toml:2:1: jvm.launcher: unknown field `launcher`",
    );
    assert_error(
        "[response]\nkill = true\n",
        "policy.toml:2:1: response.kill: unknown field `kill`",
    );
    assert_error(
        "[network]\nports = [389]\n",
        "policy.toml:1:2: network: unknown field `network`",
    );
}

#[test]
fn bad_mode_value() {
    assert_error(
        "mode = \"block\"\n",
        "policy.toml:1:8: mode: unknown variant `block`, expected `monitor` or `enforce`",
    );
}

#[test]
fn wrong_types() {
    assert_error(
        "[exec]\nmemfd = \"yes\"\n",
        "policy.toml:2:9: exec.memfd: invalid type: string \"yes\", expected a boolean",
    );
    assert_error(
        "[exec]\nshells = [\n  \"sh\",\n  3,\n]\n",
        "policy.toml:4:3: exec.shells: invalid type: integer `3`, expected a string",
    );
    assert_error(
        "[jvm]\nlaunchers = \"java\"\n",
        "policy.toml:2:13: jvm.launchers: invalid type: string \"java\", expected a sequence",
    );
}

#[test]
fn syntax_error_has_line_and_no_key() {
    let message = error("mode = \"monitor\"\n[exec\n");
    assert!(message.starts_with("policy.toml:2:"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

// === validation errors: file, line, key ===

#[test]
fn launcher_names_are_kernel_name_keys() {
    assert_error(
        "[jvm]\nlaunchers = [\"\"]\n",
        "policy.toml:2: jvm.launchers: a name must not be empty",
    );
    assert_error(
        "[jvm]\nlaunchers = [\"bin/java\"]\n",
        "policy.toml:2: jvm.launchers: \"bin/java\" must be a basename, without '/'",
    );
    let long = "j".repeat(32);
    assert_error(
        &format!("[jvm]\nlaunchers = [\"java\",\n  \"{long}\"]\n"),
        &format!(
            "policy.toml:3: jvm.launchers: \"{long}\" is 32 bytes; the kernel's name keys \
             hold at most 31"
        ),
    );
    // Launchers are matched on `comm`, which the kernel cuts at 15 bytes.
    let comm = "j".repeat(16);
    assert_error(
        &format!("[jvm]\nlaunchers = [\"{comm}\"]\n"),
        &format!(
            "policy.toml:2: jvm.launchers: \"{comm}\" is 16 bytes; a launcher name is matched \
             on the process name, which the kernel cuts at 15: list the full path in \
             jvm.launcher_paths instead"
        ),
    );
    parse(&format!("[jvm]\nlaunchers = [\"{}\"]\n", "j".repeat(15))).expect("15 bytes fit");
    assert_error(
        "[jvm]\nlaunchers = [\"ja\\u0000va\"]\n",
        "policy.toml:2: jvm.launchers: \"ja\\0va\" must not contain a NUL character",
    );
}

#[test]
fn class_names_are_kernel_name_keys() {
    assert_error(
        "[exec]\nshells = [\"/bin/sh\"]\n",
        "policy.toml:2: exec.shells: \"/bin/sh\" must be a basename",
    );
    assert_error(
        "[exec]\ninterpreters = [\"python\", \"\"]\n",
        "policy.toml:2: exec.interpreters: a name must not be empty",
    );
    assert_error(
        &format!("\n[exec]\ndownloaders = [\"{}\"]\n", "d".repeat(40)),
        "policy.toml:3: exec.downloaders: ",
    );
}

#[test]
fn libjvm_paths_are_absolute_and_need_recognition_on() {
    assert_error(
        "[jvm]\nlibjvm_paths = [\"jdk/lib/server/libjvm.so\"]\n",
        "policy.toml:2: jvm.libjvm_paths: \"jdk/lib/server/libjvm.so\" must be an absolute path",
    );
    assert_error(
        "[jvm]\nrecognise_libjvm = false\nlibjvm_paths = [\"/opt/app\"]\n",
        "policy.toml:3: jvm.libjvm_paths: jvm.libjvm_paths is set but jvm.recognise_libjvm is false",
    );
    let p = parse("[jvm]\nlibjvm_paths = [\"/opt/app/lib/runtime\"]\n").expect("valid");
    assert!(p.jvm.recognise_libjvm);
    assert_eq!(p.jvm.libjvm_paths, ["/opt/app/lib/runtime"]);
    let p = parse("[jvm]\nrecognise_libjvm = false\n").expect("valid");
    assert!(!p.jvm.recognise_libjvm);
}

#[test]
fn launcher_paths_are_absolute_and_fit() {
    assert_error(
        "[jvm]\nlauncher_paths = [\"bin/java\"]\n",
        "policy.toml:2: jvm.launcher_paths: \"bin/java\" must be an absolute path",
    );
    assert_error(
        "[jvm]\nlauncher_paths = [\"/opt/jdk/bin/\"]\n",
        "policy.toml:2: jvm.launcher_paths: \"/opt/jdk/bin/\" ends with '/'",
    );
    let long = format!("/{}", "p".repeat(255));
    assert_error(
        &format!("[jvm]\nlauncher_paths = [\"{long}\"]\n"),
        &format!(
            "policy.toml:2: jvm.launcher_paths: \"{long}\" is 256 bytes; the kernel reads at \
             most 255"
        ),
    );
    parse(&format!(
        "[jvm]\nlauncher_paths = [\"/{}\"]\n",
        "p".repeat(254)
    ))
    .expect("255 bytes fit");
}

#[test]
fn some_launcher_is_required() {
    assert_error(
        "[jvm]\nlaunchers = []\n",
        "policy.toml:2: jvm.launchers: jvm.launchers and jvm.launcher_paths are both empty",
    );
    // Paths alone are enough.
    parse("[jvm]\nlaunchers = []\nlauncher_paths = [\"/opt/app/bin/server\"]\n")
        .expect("a launcher path is enough");
}

#[test]
fn writable_dirs_are_absolute_short_and_not_root() {
    assert_error(
        "[exec]\nwritable_dirs = [\"/tmp\", \"tmp\"]\n",
        "policy.toml:2: exec.writable_dirs: \"tmp\" must be an absolute path",
    );
    assert_error(
        "[exec]\nwritable_dirs = [\"/\"]\n",
        "policy.toml:2: exec.writable_dirs: \"/\" would mark every program",
    );
    let long = format!("/{}", "d".repeat(62));
    assert_error(
        &format!("[exec]\nwritable_dirs = [\"{long}\"]\n"),
        &format!(
            "policy.toml:2: exec.writable_dirs: \"{long}\" is 63 bytes; the kernel's directory \
             prefixes hold at most 62"
        ),
    );
    let fits = format!("/{}", "d".repeat(61));
    let p = parse(&format!("[exec]\nwritable_dirs = [\"{fits}/\"]\n")).expect("62 bytes fit");
    assert_eq!(p.exec.writable_dirs, [format!("{fits}/")]);
}

#[test]
fn a_name_in_two_classes_names_both_lists() {
    // Both lists set by the file: reported at the later one.
    assert_error(
        "[exec]\nshells = [\"sh\", \"busybox\"]\ndownloaders = [\"curl\",\n  \"busybox\"]\n",
        "policy.toml:4: exec.downloaders: \"busybox\" is also in exec.shells; a name belongs \
         to one class only",
    );
    // Clash with a built-in list the file left alone: reported where the file set it.
    assert_error(
        "[exec]\ninterpreters = [\"python\", \"sh\"]\n",
        "policy.toml:2: exec.interpreters: \"sh\" is also in exec.shells (the built-in list)",
    );
    assert_error(
        "[exec]\nshells = [\"sh\", \"curl\"]\n",
        "policy.toml:2: exec.shells: \"curl\" is also in exec.downloaders (the built-in list)",
    );
}

#[test]
fn allow_programs_are_absolute_paths_or_basenames() {
    assert_error(
        "mode = \"enforce\"\n\n[[exec.allow]]\napp = \"ci.jar\"\nreason = \"CI\"\n\
         programs = [\"/usr/bin/ssh\",\n  \"bin/git\"]\n",
        "policy.toml:7: exec.allow[0].programs: \"bin/git\" must be an absolute path or a \
         plain basename",
    );
    assert_error(
        "[[exec.allow]]\nprograms = [\"git\"]\n[[exec.allow]]\nprograms = [\"\"]\n",
        "policy.toml:4: exec.allow[1].programs: a program must not be empty",
    );
    assert_error(
        "[[exec.allow]]\nprograms = [\"/usr/bin/\"]\n",
        "policy.toml:2: exec.allow[0].programs: \"/usr/bin/\" ends with '/'",
    );
    let long = format!("/{}", "g".repeat(255));
    assert_error(
        &format!("[[exec.allow]]\nprograms = [\"{long}\"]\n"),
        "policy.toml:2: exec.allow[0].programs: ",
    );
    // Basenames are hashed, not name keys: longer than 31 bytes is fine.
    let name = "g".repeat(100);
    let p = parse(&format!("[[exec.allow]]\nprograms = [\"{name}\"]\n")).expect("valid");
    assert_eq!(p.exec.allow[0].programs, [name]);
}

#[test]
fn allow_programs_are_required_and_non_empty() {
    assert_error(
        "[exec]\nmemfd = true\n\n[[exec.allow]]\napp = \"shop.jar\"\n",
        "policy.toml:4: exec.allow[0].programs: missing; every allow rule lists the programs",
    );
    assert_error(
        "[[exec.allow]]\napp = \"shop.jar\"\nprograms = []\n",
        "policy.toml:3: exec.allow[0].programs: must list at least one program",
    );
    // Inline tables work too.
    assert_error(
        "[exec]\nallow = [\n  { programs = [\"git\"] },\n  { app = \"x\" },\n]\n",
        "policy.toml:4: exec.allow[1].programs: missing",
    );
}

#[test]
fn allow_app_is_non_empty_when_present() {
    assert_error(
        "[[exec.allow]]\nprograms = [\"git\"]\napp = \"\"\n",
        "policy.toml:3: exec.allow[0].app: must not be empty; leave `app` out",
    );
}

// === [egress] and [dns] ===

#[test]
fn egress_and_dns_read_and_normalised() {
    let p = parse(
        r#"
[egress]
ldap_ports = [389, 636]
rmi_ports = [1099]
dns_ports = [53, 5353]
block_unexpected = true
quarantine = false

[[egress.allow]]
app = "auth-service.jar"
cidrs = ["10.20.0.5", "fd00::/8", "::ffff:10.30.0.0/112"]
ports = [636, 389, 636]
reason = "corporate LDAP directory"

[dns]
resolvers = ["10.0.0.2", "fd00::53", "::ffff:10.0.0.3"]
max_label_len = 50
entropy_min_len = 20
entropy_bits = 4
allow_suffixes = [".svc.cluster.local.", "Corp.Example"]
"#,
    )
    .expect("valid policy");
    assert_eq!(p.egress.ldap_ports, [389, 636]);
    assert_eq!(p.egress.dns_ports, [53, 5353]);
    assert!(p.egress.block_unexpected);
    assert!(!p.egress.quarantine);
    // Left out: built-in values.
    assert!(p.egress.block_ldap_rmi);
    assert!(p.egress.report_unexpected);
    assert_eq!(
        p.egress.allow,
        [NetAllowRule {
            app: Some("auth-service.jar".to_owned()),
            cidrs: vec![cidr("10.20.0.5/32"), cidr("fd00::/8"), cidr("10.30.0.0/16")],
            // Sorted, without duplicates.
            ports: Some(vec![389, 636]),
            reason: Some("corporate LDAP directory".to_owned()),
        }]
    );
    assert_eq!(
        p.dns.resolvers,
        [
            "10.0.0.2".parse::<std::net::IpAddr>().expect("ip"),
            "fd00::53".parse().expect("ip"),
            // IPv4-mapped: stored as IPv4.
            "10.0.0.3".parse().expect("ip"),
        ]
    );
    assert_eq!(p.dns.max_label_len, 50);
    assert_eq!(p.dns.entropy_min_len, 20);
    assert_eq!(p.dns.entropy_bits, 4.0);
    assert_eq!(p.dns.allow_suffixes, ["svc.cluster.local", "corp.example"]);
    assert!(p
        .summary()
        .ends_with("; egress: 1 allow rule, LDAP/RMI blocked in enforce, unexpected blocked in enforce, no quarantine"));
}

#[test]
fn egress_allow_replaces_the_builtin_list() {
    // Left out: the built-in loopback rule stays.
    let p = parse("[egress]\nblock_unexpected = true\n").expect("valid");
    assert_eq!(p.egress.allow, builtin_egress().allow);
    // Set: the file's rules only.
    let p = parse("[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\n").expect("valid");
    assert_eq!(p.egress.allow.len(), 1);
    assert_eq!(p.egress.allow[0].cidrs, [cidr("10.0.0.0/8")]);
    // Emptied.
    let p = parse("[egress]\nallow = []\n").expect("valid");
    assert!(p.egress.allow.is_empty());
    assert!(p
        .summary()
        .ends_with("; egress: 0 allow rules, LDAP/RMI blocked in enforce, unexpected reported"));
    let p = parse("[egress]\nblock_ldap_rmi = false\nreport_unexpected = false\n").expect("valid");
    assert!(p
        .summary()
        .ends_with("; egress: 1 allow rule, LDAP/RMI reported, unexpected ignored"));
}

#[test]
fn egress_unknown_keys_and_wrong_types() {
    assert_error(
        "[egress]\nldap_port = [389]\n",
        "policy.toml:2:1: egress.ldap_port: unknown field `ldap_port`",
    );
    assert_error(
        "[[egress.allow]]\ncidr = [\"10.0.0.0/8\"]\n",
        "policy.toml:2:1: egress.allow[0].cidr: unknown field `cidr`",
    );
    assert_error(
        "[dns]\nresolver = [\"10.0.0.2\"]\n",
        "policy.toml:2:1: dns.resolver: unknown field `resolver`",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\nports = \"636\"\n",
        "policy.toml:3:9: egress.allow[0].ports: invalid type: string \"636\", expected a sequence",
    );
    assert_error(
        "[egress]\nrmi_ports = [\"1099\"]\n",
        "policy.toml:2:14: egress.rmi_ports: invalid type: string \"1099\", expected i64",
    );
    assert_error(
        "[dns]\nentropy_bits = \"high\"\n",
        "policy.toml:2:16: dns.entropy_bits: invalid type: string \"high\", expected f64",
    );
}

#[test]
fn ports_are_1_to_65535() {
    assert_error(
        "[egress]\nldap_ports = [389, 0]\n",
        "policy.toml:2: egress.ldap_ports: 0 is not a port number; ports are 1 to 65535",
    );
    assert_error(
        "[egress]\nrmi_ports = [\n  1099,\n  70000,\n]\n",
        "policy.toml:4: egress.rmi_ports: 70000 is not a port number",
    );
    assert_error(
        "[egress]\ndns_ports = [-53]\n",
        "policy.toml:2: egress.dns_ports: -53 is not a port number",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = [636, 65536]\n",
        "policy.toml:3: egress.allow[0].ports: 65536 is not a port number",
    );
    let p = parse("[egress]\ndns_ports = [1, 65535]\n").expect("both ends fit");
    assert_eq!(p.egress.dns_ports, [1, 65535]);
}

#[test]
fn a_port_in_two_protocol_lists_names_both() {
    assert_error(
        "[egress]\nrmi_ports = [1099, 389]\n",
        "policy.toml:2: egress.rmi_ports: port 389 is also in egress.ldap_ports (the built-in \
         list); a port is recognised as one protocol only, so remove it from one of the two \
         lists",
    );
    assert_error(
        "[egress]\nldap_ports = [389]\nrmi_ports = [1099]\ndns_ports = [53,\n  389]\n",
        "policy.toml:5: egress.dns_ports: port 389 is also in egress.ldap_ports; a port is \
         recognised as one protocol only",
    );
    // Moving a port from one list to another works when both lists are set.
    let p = parse("[egress]\nldap_ports = [389]\nrmi_ports = [1099, 636]\n").expect("valid");
    assert_eq!(p.egress.rmi_ports, [1099, 636]);
    // Twice in one list is harmless.
    parse("[egress]\nldap_ports = [389, 389]\n").expect("valid");
}

#[test]
fn allow_cidrs_parse_v4_and_v6() {
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\",\n  \"10.0.0.5/8\"]\n",
        "policy.toml:3: egress.allow[0].cidrs: \"10.0.0.5/8\" has host bits set; did you mean \
         \"10.0.0.0/8\"?",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"fd00::1/8\"]\n",
        "policy.toml:2: egress.allow[0].cidrs: \"fd00::1/8\" has host bits set; did you mean \
         \"fd00::/8\"?",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/33\"]\n",
        "policy.toml:2: egress.allow[0].cidrs: \"10.0.0.0/33\": the prefix length must be a \
         number from 0 to 32",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"fd00::/129\"]\n",
        "policy.toml:2: egress.allow[0].cidrs: \"fd00::/129\": the prefix length must be a \
         number from 0 to 128",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\n[[egress.allow]]\ncidrs = [\"ldap.corp\"]\n",
        "policy.toml:4: egress.allow[1].cidrs: \"ldap.corp\" is not an IP address or network",
    );
}

#[test]
fn allow_cidrs_are_required_and_non_empty() {
    assert_error(
        "[egress]\nquarantine = true\n\n[[egress.allow]]\napp = \"auth.jar\"\nports = [636]\n",
        "policy.toml:4: egress.allow[0].cidrs: missing; every allow rule lists the networks",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = []\n",
        "policy.toml:2: egress.allow[0].cidrs: must list at least one network",
    );
}

#[test]
fn allow_ports_are_1_to_8() {
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = []\n",
        "policy.toml:3: egress.allow[0].ports: must list at least one port; leave `ports` out",
    );
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n",
        "policy.toml:3: egress.allow[0].ports: lists 9 ports; a kernel allowlist entry holds \
         at most 8",
    );
    // Duplicates do not count.
    let p =
        parse("[[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = [1, 2, 3, 4, 5, 6, 7, 8, 8]\n")
            .expect("8 distinct ports fit");
    assert_eq!(p.egress.allow[0].ports.as_ref().map(Vec::len), Some(8));
}

#[test]
fn allow_rules_together_fit_the_kernel() {
    // Every address of the /32 is covered by both rules: its trie entry needs 9 ports.
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\nports = [1, 2, 3, 4, 5]\n\n\
         [[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = [6, 7, 8, 9]\n",
        "policy.toml:7: egress.allow[1].ports: 10.0.0.5/32: egress.allow[0] and \
         egress.allow[1] together allow 9 ports (1, 2, 3, 4, 5, 6, 7, 8, 9), more than the 8 \
         one kernel allowlist entry holds",
    );
    // Rules for different JVMs never share an entry ...
    parse(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\nports = [1, 2, 3, 4, 5]\n\n\
         [[egress.allow]]\napp = \"a.jar\"\ncidrs = [\"10.0.0.5\"]\nports = [6, 7, 8, 9]\n",
    )
    .expect("global and app rules are separate entries");
    // ... but a JVM that matches "auth-service.jar" always matches "auth" too.
    assert_error(
        "[[egress.allow]]\napp = \"auth\"\ncidrs = [\"10.0.0.0/8\"]\nports = [1, 2, 3, 4, 5]\n\n\
         [[egress.allow]]\napp = \"auth-service.jar\"\ncidrs = [\"10.0.0.5\"]\n\
         ports = [6, 7, 8, 9]\n",
        "policy.toml:9: egress.allow[1].ports: in a JVM whose command line contains \
         \"auth-service.jar\": 10.0.0.5/32: egress.allow[0] and egress.allow[1] together",
    );
    // A rule without ports adds none.
    parse(
        "[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\n\n\
         [[egress.allow]]\ncidrs = [\"10.0.0.5\"]\nports = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    .expect("any-port is a flag");
}

#[test]
fn egress_allow_app_is_non_empty_when_present() {
    assert_error(
        "[[egress.allow]]\ncidrs = [\"10.0.0.5\"]\napp = \"\"\n",
        "policy.toml:3: egress.allow[0].app: must not be empty; leave `app` out",
    );
}

#[test]
fn resolvers_are_addresses() {
    assert_error(
        "[dns]\nresolvers = [\"10.0.0.2\", \"dns.corp\"]\n",
        "policy.toml:2: dns.resolvers: \"dns.corp\" is not an IP address; list each DNS server \
         by its address",
    );
    assert_error(
        "[dns]\nresolvers = [\"10.0.0.0/24\"]\n",
        "policy.toml:2: dns.resolvers: \"10.0.0.0/24\" is a network; list each DNS server by \
         its address",
    );
}

#[test]
fn dns_numbers_are_in_range() {
    assert_error(
        "[dns]\nmax_label_len = 0\n",
        "policy.toml:2: dns.max_label_len: 0 is out of range; it must be 1 to 63",
    );
    assert_error(
        "[dns]\nmax_label_len = 64\n",
        "policy.toml:2: dns.max_label_len: 64 is out of range; it must be 1 to 63",
    );
    assert_error(
        "[dns]\n\nentropy_min_len = -1\n",
        "policy.toml:3: dns.entropy_min_len: -1 is out of range; it must be 1 to 63",
    );
    assert_error(
        "[dns]\nentropy_bits = 8.5\n",
        "policy.toml:2: dns.entropy_bits: 8.5 is out of range; the entropy of text is 0.0 to \
         8.0 bits per character",
    );
    assert_error(
        "[dns]\nentropy_bits = -0.1\n",
        "policy.toml:2: dns.entropy_bits: -0.1 is out of range",
    );
    assert_error(
        "[dns]\nentropy_bits = nan\n",
        "policy.toml:2: dns.entropy_bits: NaN is out of range",
    );
    let p = parse("[dns]\nmax_label_len = 63\nentropy_min_len = 1\nentropy_bits = 0.0\n")
        .expect("the ends of the ranges");
    assert_eq!((p.dns.max_label_len, p.dns.entropy_min_len), (63, 1));
    assert_eq!(p.dns.entropy_bits, 0.0);
    let p = parse("[dns]\nentropy_bits = 8\n").expect("an integer is a number of bits too");
    assert_eq!(p.dns.entropy_bits, 8.0);
}

#[test]
fn allow_suffixes_are_domain_names() {
    assert_error(
        "[dns]\nallow_suffixes = [\"corp.example\", \"\"]\n",
        "policy.toml:2: dns.allow_suffixes: \"\" would match every name; a suffix must not be \
         empty",
    );
    assert_error(
        "[dns]\nallow_suffixes = [\".\"]\n",
        "policy.toml:2: dns.allow_suffixes: \".\" would match every name",
    );
    assert_error(
        "[dns]\nallow_suffixes = [\"*.svc.cluster.local\"]\n",
        "policy.toml:2: dns.allow_suffixes: \"*.svc.cluster.local\" is not a domain name; write \
         the domain itself (\"svc.cluster.local\"), which also matches every name below it",
    );
    assert_error(
        "[dns]\nallow_suffixes = [\"corp..example\"]\n",
        "policy.toml:2: dns.allow_suffixes: \"corp..example\" is not a domain name",
    );
}

/// Every TOML example in docs/policy.md is a valid policy, and the worked example does what
/// the text says.
#[test]
fn docs_examples_are_valid() {
    const DOC: &str = include_str!("../../../docs/policy.md");
    let mut blocks = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let Some(end) = body.find("```") else { break };
        blocks.push(&body[..end]);
        rest = &body[end..][3..];
    }
    assert!(blocks.len() >= 5, "found {} toml blocks", blocks.len());
    for block in &blocks {
        if let Err(err) = parse(block) {
            panic!("docs/policy.md example does not parse: {err}\n{block}");
        }
    }

    let example = blocks
        .iter()
        .find(|b| b.contains("mode = \"enforce\"") && b.contains("auth-service.jar"))
        .expect("the directory example");
    let p = parse(example).expect("valid");
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    let auth = "java -Xmx1g -jar /srv/auth/auth-service.jar";
    let shop = "java -jar /srv/shop/shop.jar";
    let ldap = Some(NetProtocol::Ldap);
    let e = &p.egress;
    assert!(e.allowing(auth, ip("10.20.0.5"), 636, ldap).is_some());
    assert!(e.allowing(auth, ip("10.20.0.5"), 389, ldap).is_none());
    assert!(e.allowing(auth, ip("10.20.0.9"), 636, ldap).is_none());
    assert!(e.allowing(shop, ip("10.20.0.5"), 636, ldap).is_none());
    assert!(e.allowing(shop, ip("127.0.0.1"), 1389, ldap).is_none());
    assert!(e.allowing(shop, ip("127.0.0.1"), 8080, None).is_some());
    assert!(e.block_ldap_rmi);
}

// === [[sinks]] and [delivery] ===

#[test]
fn builtin_sinks_and_delivery() {
    let p = Policy::builtin();
    assert_eq!(
        p.sinks,
        [SinkPolicy {
            name: "stdout".to_owned(),
            min_severity: Severity::Low,
            rules: None,
            target: SinkTarget::Stdout,
            overrides: DeliveryOverrides::default(),
        }]
    );
    assert_eq!(p.delivery.spool_dir, Path::new("/var/lib/detector/spool"));
    assert_eq!(p.delivery.journal_max_bytes, 256 << 20);
    assert_eq!(
        p.delivery.defaults,
        SinkDelivery {
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(3600),
            queue: 10_000,
            rate_per_minute: 60,
            dedup_window: Duration::from_secs(600),
        }
    );
    assert!(!p.summary().contains("sinks"), "{}", p.summary());
}

/// Like `builtin_sets_every_key`, for the keys added with the sinks: default.toml states
/// each of them, so it reads the same over any base.
#[test]
fn builtin_sets_every_delivery_key() {
    let origin = Path::new(BUILTIN_ORIGIN);
    let read_over = |base: &Policy| {
        let raw = raw::parse(BUILTIN_TOML, origin).expect("default.toml parses");
        validate::validate(raw, base, BUILTIN_TOML, origin).expect("default.toml is valid")
    };
    let mut other = Policy::blank();
    other.sinks = vec![SinkPolicy {
        name: "x".to_owned(),
        min_severity: Severity::Critical,
        rules: None,
        target: SinkTarget::Syslog {
            socket: "/x".into(),
            facility: 1,
            format: SyslogFormat::Rfc5424,
        },
        overrides: DeliveryOverrides::default(),
    }];
    other.delivery = DeliveryPolicy {
        spool_dir: "/x".into(),
        journal_max_bytes: 1 << 20,
        defaults: SinkDelivery {
            timeout: Duration::from_secs(1),
            give_up_after: Duration::from_secs(2),
            queue: 3,
            rate_per_minute: 4,
            dedup_window: Duration::from_secs(5),
        },
    };
    let (a, b) = (read_over(&Policy::blank()), read_over(&other));
    assert_eq!(a.sinks, b.sinks);
    assert_eq!(a.delivery, b.delivery);
}

#[test]
fn every_sink_type_with_its_keys() {
    let p = parse(
        r#"
[delivery]
spool_dir = "/srv/spool"
give_up_after = "6h"
rate_per_minute = 0

[[sinks]]
type = "stdout"
min_severity = "medium"

[[sinks]]
type = "file"
path = "/var/log/detector/alerts.jsonl"
max_bytes = 1048576
keep = 3

[[sinks]]
type = "webhook"
name = "siem"
url = "https://siem.example/hooks/detector"
headers = { "X-Team" = "sec", Authorization = "Bearer not-a-secret-here" }
hmac_key_file = "/etc/detector/hmac"
timeout = "2500ms"

[[sinks]]
type = "pagerduty"
name = "oncall"
min_severity = "high"
rules = ["exploit_chain", "jvm_shell_spawn"]
routing_key_env = "PAGERDUTY_ROUTING_KEY"
give_up_after = "1d"

[[sinks]]
type = "slack"
webhook_url_file = "/etc/detector/slack-url"
dedup_window = "0s"

[[sinks]]
type = "alertmanager"
url = "http://127.0.0.1:9093/"
queue = 500

[[sinks]]
type = "syslog"
facility = "local3"
"#,
    )
    .expect("valid policy");
    assert_eq!(p.delivery.spool_dir, Path::new("/srv/spool"));
    assert_eq!(
        p.delivery.defaults.give_up_after,
        Duration::from_secs(6 * 3600)
    );
    assert_eq!(p.delivery.defaults.rate_per_minute, 0);
    assert_eq!(
        p.delivery.defaults.timeout,
        Duration::from_secs(10),
        "built-in"
    );
    let names: Vec<&str> = p.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stdout",
            "file",
            "siem",
            "oncall",
            "slack",
            "alertmanager",
            "syslog"
        ]
    );
    assert_eq!(p.sinks[0].min_severity, Severity::Medium);
    assert_eq!(
        p.sinks[1].target,
        SinkTarget::File {
            path: "/var/log/detector/alerts.jsonl".into(),
            max_bytes: 1_048_576,
            keep: 3
        }
    );
    assert_eq!(
        p.sinks[2].target,
        SinkTarget::Webhook {
            url: "https://siem.example/hooks/detector".to_owned(),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    "Bearer not-a-secret-here".to_owned()
                ),
                ("X-Team".to_owned(), "sec".to_owned()),
            ],
            hmac_key: Some(SecretRef {
                key: "sinks[2].hmac_key_file".to_owned(),
                source: SecretSource::File("/etc/detector/hmac".into()),
            }),
        }
    );
    assert_eq!(
        p.sinks[2].delivery(&p.delivery.defaults).timeout,
        Duration::from_millis(2500)
    );
    let oncall = &p.sinks[3];
    assert_eq!(
        oncall.target,
        SinkTarget::PagerDuty {
            url: "https://events.pagerduty.com/v2/enqueue".to_owned(),
            routing_key: SecretRef {
                key: "sinks[3].routing_key_env".to_owned(),
                source: SecretSource::Env("PAGERDUTY_ROUTING_KEY".to_owned()),
            },
        }
    );
    assert!(oncall.accepts(Rule::JvmShellSpawn, Severity::Critical));
    assert!(!oncall.accepts(Rule::JvmShellSpawn, Severity::Medium));
    assert!(!oncall.accepts(Rule::JvmLdapEgress, Severity::Critical));
    assert_eq!(
        oncall.delivery(&p.delivery.defaults).give_up_after,
        Duration::from_secs(86_400)
    );
    assert_eq!(
        p.sinks[4].delivery(&p.delivery.defaults).dedup_window,
        Duration::ZERO
    );
    assert_eq!(
        p.sinks[5].target,
        SinkTarget::Alertmanager {
            url: "http://127.0.0.1:9093/api/v2/alerts".to_owned()
        }
    );
    assert_eq!(p.sinks[5].delivery(&p.delivery.defaults).queue, 500);
    assert_eq!(
        p.sinks[6].target,
        SinkTarget::Syslog {
            socket: "/dev/log".into(),
            facility: 19,
            format: SyslogFormat::Rfc3164,
        }
    );
    assert!(
        p.summary().ends_with(
            "; sinks: stdout, file, siem (webhook), oncall (pagerduty), slack, alertmanager, \
             syslog"
        ),
        "{}",
        p.summary()
    );
}

#[test]
fn headers_as_a_table_of_their_own() {
    let p = parse(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:8080/\"\n\n[sinks.headers]\nX-Team = \"sec\"\n",
    )
    .expect("valid");
    let SinkTarget::Webhook { headers, .. } = &p.sinks[0].target else {
        panic!("webhook");
    };
    assert_eq!(headers, &[("X-Team".to_owned(), "sec".to_owned())]);
}

#[test]
fn sink_type_is_required_and_known() {
    assert_error(
        "[[sinks]]\nname = \"x\"\n",
        "policy.toml:1: sinks[0].type: missing; every sink has a type",
    );
    assert_error(
        "[[sinks]]\ntype = \"pager\"\n",
        "policy.toml:2:8: sinks[0].type: unknown variant `pager`, expected one of `stdout`, \
         `file`, `webhook`, `pagerduty`, `slack`, `alertmanager`, `syslog`",
    );
    assert_error(
        "sinks = []\n",
        "policy.toml:1: sinks: an empty list would send alerts nowhere",
    );
}

#[test]
fn sink_unknown_fields_and_keys_of_other_types() {
    assert_error(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\nurll = \"x\"\n",
        "policy.toml:4:1: sinks[0].urll: unknown field `urll`, expected one of",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\npath = \"/x\"\n",
        "policy.toml:7: sinks[1].path: a webhook sink has no `path`; its keys are url, headers, \
         hmac_key_env, hmac_key_file, timeout, give_up_after, queue, rate_per_minute, dedup_window",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nqueue = 5\n",
        "policy.toml:3: sinks[0].queue: a stdout sink has no `queue`; it has none besides type, \
         name, min_severity and rules",
    );
    assert_error(
        "[delivery]\nspool = \"/x\"\n",
        "policy.toml:2:1: delivery.spool: unknown field `spool`",
    );
}

#[test]
fn sink_urls_are_http_with_a_host_and_no_credentials() {
    for (url, expected) in [
        ("not a url", "is not a URL"),
        ("ftp://x.example/", "is not an http or https URL"),
        ("https://user:hunter2@x.example/", "carries credentials"),
        ("http://x.example/#frag", "has a fragment"),
    ] {
        let message = error(&format!("[[sinks]]\ntype = \"webhook\"\nurl = \"{url}\"\n"));
        assert!(
            message.starts_with("policy.toml:3: sinks[0].url: ") && message.contains(expected),
            "{url}: {message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert_error(
        "[[sinks]]\ntype = \"alertmanager\"\n",
        "policy.toml:1: sinks[0].url: missing; an alertmanager sink needs the Alertmanager's URL",
    );
    assert_error(
        "[[sinks]]\ntype = \"pagerduty\"\nrouting_key_env = \"K\"\nurl = \"events.pagerduty.com\"\n",
        "policy.toml:4: sinks[0].url: \"events.pagerduty.com\" is not a URL",
    );
}

#[test]
fn secrets_come_from_env_or_file_exactly_once() {
    assert_error(
        "[[sinks]]\ntype = \"pagerduty\"\nname = \"oncall\"\n",
        "policy.toml:1: sinks[0].routing_key_env: missing; a pagerduty sink reads its routing \
         key from routing_key_env (an environment variable) or routing_key_file (a file), never \
         from the policy",
    );
    assert_error(
        "[[sinks]]\ntype = \"slack\"\n",
        "policy.toml:1: sinks[0].webhook_url_env: missing;",
    );
    assert_error(
        "[[sinks]]\ntype = \"pagerduty\"\nrouting_key_env = \"K\"\nrouting_key_file = \"/k\"\n",
        "policy.toml:4: sinks[0].routing_key_file: routing_key_env is set too; give the routing \
         key one way",
    );
    assert_error(
        "[[sinks]]\ntype = \"pagerduty\"\nrouting_key_env = \"R0UT1NGKEY-value\"\n",
        "policy.toml:3: sinks[0].routing_key_env: \"R0UT1NGKEY-value\" is not an environment \
         variable name",
    );
    assert_error(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\nhmac_key_file = \"etc/key\"\n",
        "policy.toml:4: sinks[0].hmac_key_file: \"etc/key\" must be an absolute path",
    );
}

#[test]
fn sink_names_are_unique_and_safe() {
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"stdout\"\n",
        "policy.toml:5: sinks[1].name: \"stdout\" is already the name of sinks[0]",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nname = \"a\"\n\n[[sinks]]\ntype = \"syslog\"\nname = \"a\"\n",
        "policy.toml:7: sinks[1].name: \"a\" is already the name of sinks[0]",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nname = \"../etc\"\n",
        "policy.toml:3: sinks[0].name: \"../etc\" must be 1 to 64 letters, digits, '-' or '_'",
    );
}

#[test]
fn sink_filters_and_numbers() {
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nrules = [\"jvm_shell_spwan\"]\n",
        "policy.toml:3: sinks[0].rules: \"jvm_shell_spwan\" is not a rule; the rules are \
         jvm_shell_spawn,",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nrules = []\n",
        "policy.toml:3: sinks[0].rules: must list at least one rule",
    );
    assert_error(
        "[[sinks]]\ntype = \"stdout\"\nmin_severity = \"severe\"\n",
        "policy.toml:3:16: sinks[0].min_severity: unknown variant `severe`",
    );
    assert_error(
        "[[sinks]]\ntype = \"file\"\npath = \"/x\"\nmax_bytes = 100\n",
        "policy.toml:4: sinks[0].max_bytes: 100 is out of range",
    );
    assert_error(
        "[[sinks]]\ntype = \"file\"\npath = \"/var/log/\"\n",
        "policy.toml:3: sinks[0].path: \"/var/log/\" ends with '/'",
    );
    assert_error(
        "[[sinks]]\ntype = \"file\"\n",
        "policy.toml:1: sinks[0].path: missing",
    );
    assert_error(
        "[delivery]\nqueue = 0\n",
        "policy.toml:2: delivery.queue: 0 is out of range; it must be 1 to 1000000",
    );
    assert_error(
        "[[sinks]]\ntype = \"syslog\"\nfacility = \"kern\"\n",
        "policy.toml:3: sinks[0].facility: \"kern\" is not a facility",
    );
    assert_error(
        "[delivery]\nspool_dir = \"spool\"\n",
        "policy.toml:2: delivery.spool_dir: \"spool\" must be an absolute path",
    );
    assert_error(
        "[delivery]\njournal_max_bytes = 4096\n",
        "policy.toml:2: delivery.journal_max_bytes: 4096 is out of range; the alert journal \
         needs 1048576 to 68719476736 bytes (1 MiB to 64 GiB)",
    );
}

#[test]
fn durations() {
    use crate::timefmt::{format_duration, parse_duration};
    let ok = |text: &str| parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(ok("10s"), Duration::from_secs(10));
    assert_eq!(ok("500ms"), Duration::from_millis(500));
    assert_eq!(ok("5m"), Duration::from_secs(300));
    assert_eq!(ok("1h30m"), Duration::from_secs(5400));
    assert_eq!(ok("7d"), Duration::from_secs(7 * 86_400));
    assert_eq!(ok("0s"), Duration::ZERO);
    for bad in [
        "",
        "10",
        "s",
        "10 s",
        "1.5h",
        "-1s",
        "10sec",
        "1h 30m",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_error(
        "[delivery]\ntimeout = \"10 s\"\n",
        "policy.toml:2: delivery.timeout: \"10 s\" is not a duration; write a number and a unit",
    );
    assert_error(
        "[[sinks]]\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\ntimeout = \"0s\"\n",
        "policy.toml:4: sinks[0].timeout: \"0s\" is out of range; it must be 100ms to 10m",
    );
}

#[test]
fn webhook_headers_are_valid_and_not_ours() {
    assert_error(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\nheaders = { \"X-Detector-Signature\" = \"x\" }\n",
        "policy.toml:4: sinks[0].headers: \"X-Detector-Signature\" is set by the detector itself",
    );
    assert_error(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\nheaders = { \"Bad Name\" = \"x\" }\n",
        "policy.toml:4: sinks[0].headers: \"Bad Name\" is not a valid HTTP header name",
    );
    assert_error(
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\nheaders = { \"X-A\" = \"a\\nb\" }\n",
        "policy.toml:4: sinks[0].headers: the value of \"X-A\" must be printable ASCII",
    );
}

/// Every TOML example in docs/sinks.md is a valid policy.
#[test]
fn sinks_doc_examples_are_valid() {
    const DOC: &str = include_str!("../../../docs/sinks.md");
    let mut rest = DOC;
    let mut count = 0;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let Some(end) = body.find("```") else { break };
        if let Err(err) = parse(&body[..end]) {
            panic!(
                "docs/sinks.md example does not parse: {err}\n{}",
                &body[..end]
            );
        }
        count += 1;
        rest = &body[end..][3..];
    }
    assert!(count >= 5, "found {count} toml blocks");
}
