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
    assert_eq!(
        p.summary(),
        "mode monitor; 1 JVM launcher; 13 shells, 19 interpreters, 16 downloaders; \
         3 writable dirs; memfd on; 0 allow rules"
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
    assert_eq!(read_over(&Policy::blank()), read_over(&other));
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
         3 writable dirs; memfd off; 2 allow rules; kill_jvm on"
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
