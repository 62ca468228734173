//! Rule `jvm_shell_spawn`: a JVM, or any process descending from one, executed a shell, a
//! script interpreter, a downloader or network tool, a program from a world-writable
//! directory or one from an anonymous memory file. In a Log4Shell attack this is the
//! moment the injected class runs its payload.

use super::{jvm_name, Detection};
use crate::{
    events::Exec,
    policy::Policy,
    process_table::ProcessTable,
    vocab::{Action, ProcessKey, ProgramClass, Rule, Severity},
};

/// Longest command line quoted in a summary; the full argv is in the alert.
const SUMMARY_ARGV_CHARS: usize = 160;

/// Judges one exec event. `table` must already hold the exec (and the JVM).
pub fn evaluate(policy: &Policy, table: &ProcessTable, exec: &Exec) -> Option<Detection> {
    if exec.is_jvm {
        return None;
    }
    // Userspace judges from the policy itself (so `replay` gives the same answer as the
    // kernel); the kernel's class only fills in if the two ever disagree.
    let class = policy
        .exec
        .classify(&exec.filename, exec.interp.as_deref(), exec.memfd)
        .or(exec.kernel_class)?;

    let jvm_key = exec.lineage.jvm();
    let jvm = table.get_key(jvm_key);
    let jvm_cmdline = jvm.map(|j| j.argv.join(" ")).unwrap_or_default();
    let allowed =
        exec.kernel_allowed || policy.exec.allowing(&jvm_cmdline, &exec.filename).is_some();
    // A kill always gets an alert, allowlisted or not: an operator must hear about it.
    if allowed && !exec.killed {
        return None;
    }

    let action = if exec.killed {
        Action::Killed
    } else {
        Action::Reported
    };
    let name = jvm_name(table, jvm_key);
    let verb = match class {
        ProgramClass::Shell => "spawned",
        _ => "executed",
    };
    let mut summary = format!(
        "{name} (pid {}) {verb} {} {}",
        jvm_key.tgid,
        describe(class),
        command_line(exec)
    );
    if exec.lineage.depth > 1 {
        summary.push_str(&format!(" ({} levels below the JVM)", exec.lineage.depth));
    }
    match action {
        Action::Killed => summary.push_str("; killed before it ran"),
        _ if exec.kill_failed => summary.push_str("; the kernel could not kill it"),
        _ => {}
    }
    Some(Detection {
        rule: Rule::JvmShellSpawn,
        severity: severity(class),
        summary,
        action,
        process: ProcessKey {
            tgid: exec.task.tgid,
            start_ns: exec.task.start_ns,
        },
        jvm: jvm_key,
        class: Some(class),
        network: None,
        incident_id: String::new(),
    })
}

/// Shells, downloaders and dropped or in-memory binaries are the payload stage itself;
/// an interpreter is more often a legitimate helper script.
fn severity(class: ProgramClass) -> Severity {
    match class {
        ProgramClass::Interpreter => Severity::High,
        _ => Severity::Critical,
    }
}

fn describe(class: ProgramClass) -> &'static str {
    match class {
        ProgramClass::Shell => "a shell:",
        ProgramClass::Interpreter => "an interpreter:",
        ProgramClass::Downloader => "a network tool:",
        ProgramClass::WritableDir => "a program from a world-writable directory:",
        ProgramClass::Memfd => "a program from memory (memfd):",
    }
}

fn command_line(exec: &Exec) -> String {
    let mut line = if exec.argv.is_empty() {
        exec.filename.clone()
    } else {
        exec.argv.join(" ")
    };
    if line.chars().count() > SUMMARY_ARGV_CHARS {
        line = line.chars().take(SUMMARY_ARGV_CHARS).collect::<String>() + "…";
    }
    // Show the path that ran when argv[0] does not name it (e.g. `sh` for /usr/bin/sh).
    if exec.argv.first().is_some_and(|a| a != &exec.filename) {
        line = format!("{} [{}]", exec.filename, line);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        events::{LineageRef, Task},
        process_table::Process,
    };

    fn policy(extra: &str) -> Policy {
        Policy::from_toml(extra, std::path::Path::new("test.toml")).expect("test policy")
    }

    fn table_with_jvm(argv: &[&str]) -> ProcessTable {
        let mut t = ProcessTable::new(64);
        t.insert(Process::new(
            ProcessKey {
                tgid: 4242,
                start_ns: 77,
            },
            1,
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".into(),
            argv.iter().map(|s| s.to_string()).collect(),
        ));
        t
    }

    fn exec(filename: &str, argv: &[&str], depth: u32) -> Exec {
        Exec {
            time_ns: 1,
            task: Task {
                pid: 4250,
                tgid: 4250,
                ppid: 4242,
                uid: 1000,
                gid: 1000,
                start_ns: 99,
                cgroup_id: 1,
                comm: "sh".into(),
            },
            lineage: LineageRef {
                jvm_tgid: 4242,
                jvm_start_ns: 77,
                depth,
            },
            is_jvm: false,
            recognised_by: None,
            filename: filename.into(),
            interp: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            memfd: false,
            kernel_class: None,
            kernel_allowed: false,
            killed: false,
            kill_failed: false,
        }
    }

    #[test]
    fn shell_from_jvm_is_critical_and_names_the_jvm() {
        let t = table_with_jvm(&["java", "-jar", "app.jar"]);
        let d = evaluate(
            &policy(""),
            &t,
            &exec("/bin/sh", &["/bin/sh", "-c", "id"], 1),
        )
        .expect("detection");
        assert_eq!(d.rule, Rule::JvmShellSpawn);
        assert_eq!(d.severity, Severity::Critical);
        assert_eq!(d.action, Action::Reported);
        assert_eq!(
            d.jvm,
            ProcessKey {
                tgid: 4242,
                start_ns: 77
            }
        );
        assert_eq!(d.class, Some(ProgramClass::Shell));
        assert_eq!(d.summary, "java (pid 4242) spawned a shell: /bin/sh -c id");
    }

    #[test]
    fn classes_beyond_shells() {
        let t = table_with_jvm(&["java", "Main"]);
        let p = policy("");
        let class = |file: &str, memfd: bool| {
            let mut e = exec(file, &[file], 1);
            e.memfd = memfd;
            evaluate(&p, &t, &e).and_then(|d| d.class)
        };
        assert_eq!(
            class("/usr/bin/python3.11", false),
            Some(ProgramClass::Interpreter)
        );
        assert_eq!(
            class("/usr/bin/curl", false),
            Some(ProgramClass::Downloader)
        );
        assert_eq!(class("/tmp/x", false), Some(ProgramClass::WritableDir));
        assert_eq!(class("/dev/fd/3", true), Some(ProgramClass::Memfd));
        assert_eq!(class("/usr/bin/id", false), None);
        assert_eq!(
            class("/usr/lib/jvm/java-17-openjdk-amd64/lib/jspawnhelper", false),
            None
        );
    }

    #[test]
    fn jvm_itself_is_not_a_detection() {
        let t = table_with_jvm(&["java", "Main"]);
        let mut e = exec("/usr/bin/java", &["java", "Main"], 0);
        e.is_jvm = true;
        assert!(evaluate(&policy(""), &t, &e).is_none());
    }

    #[test]
    fn allowlist_by_app_and_program() {
        let p = policy("[[exec.allow]]\napp = \"build-agent.jar\"\nprograms = [\"/bin/sh\"]\n");
        let agent = table_with_jvm(&["java", "-jar", "build-agent.jar"]);
        let other = table_with_jvm(&["java", "-jar", "shop.jar"]);
        let e = exec("/bin/sh", &["/bin/sh", "-c", "make"], 1);
        assert!(evaluate(&p, &agent, &e).is_none());
        assert!(evaluate(&p, &other, &e).is_some());
    }

    #[test]
    fn a_kill_is_reported_even_when_allowlisted() {
        let p = policy("[[exec.allow]]\nprograms = [\"sh\"]\n");
        let t = table_with_jvm(&["java", "Main"]);
        let mut e = exec("/bin/sh", &["sh"], 1);
        assert!(evaluate(&p, &t, &e).is_none());
        e.killed = true;
        let d = evaluate(&p, &t, &e).expect("kill reported");
        assert_eq!(d.action, Action::Killed);
        assert!(
            d.summary.ends_with("; killed before it ran"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn kernel_allow_and_grandchild_depth() {
        let t = table_with_jvm(&["java", "Main"]);
        let mut e = exec("/bin/dash", &["sh", "-c", "touch x"], 3);
        let d = evaluate(&policy(""), &t, &e).expect("detection");
        assert!(
            d.summary.contains("(3 levels below the JVM)"),
            "{}",
            d.summary
        );
        assert!(
            d.summary.contains("/bin/dash [sh -c touch x]"),
            "{}",
            d.summary
        );
        e.kernel_allowed = true;
        assert!(evaluate(&policy(""), &t, &e).is_none());
    }

    #[test]
    fn unknown_jvm_still_alerts() {
        let t = ProcessTable::new(8);
        let d = evaluate(
            &policy(""),
            &t,
            &exec("/usr/bin/wget", &["wget", "http://x/a"], 1),
        )
        .expect("detection");
        assert!(
            d.summary
                .starts_with("JVM (pid 4242) executed a network tool"),
            "{}",
            d.summary
        );
    }
}
