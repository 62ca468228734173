//! Parsing and validation of policy text: the built-in policy, and every way a file is rejected
//! (each message naming the file, the line and the key). The matching helpers are tested next
//! to them in `matching.rs`.

use std::path::Path;

use super::*;

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
