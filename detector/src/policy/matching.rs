//! How a policy judges an executed program: the userspace twin of the kernel's exec classifier.
//!
//! The kernel programs implement exactly these rules, so keep them simple and exact: a
//! difference here means an alert that explains something other than what the kernel did.

use super::{ExecAllow, ExecPolicy, JvmPolicy};
use crate::vocab::ProgramClass;

/// `name` without its trailing version: trailing ASCII digits and '.' removed, so that
/// `python3.11`, `perl5.36.0` and `php8` match the list entries `python`, `perl` and `php`.
/// A name that is nothing but digits and dots is returned unchanged.
pub fn strip_version(name: &str) -> &str {
    let stripped = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if stripped.is_empty() {
        name
    } else {
        stripped
    }
}

/// The last component of `path` (all of it when it has no '/').
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether a rule limited to `app` (none: every JVM) covers the JVM with this command line
/// (argv joined by single spaces): its command line contains `app`. The one definition of
/// an `app` match, for the rules, the kernel allowlists and `detector learn` alike.
pub fn app_applies(app: Option<&str>, jvm_cmdline: &str) -> bool {
    app.is_none_or(|app| jvm_cmdline.contains(app))
}

// === impl ExecPolicy ===

impl ExecPolicy {
    /// The class of a program by its basename: the exact name first, then the name without its
    /// version ([`strip_version`]). A name is in at most one list (validation ensures it).
    pub fn class_of_name(&self, basename: &str) -> Option<ProgramClass> {
        self.class_of_exact(basename).or_else(|| {
            let stripped = strip_version(basename);
            // Only a second lookup when stripping changed something.
            (stripped.len() != basename.len())
                .then(|| self.class_of_exact(stripped))
                .flatten()
        })
    }

    fn class_of_exact(&self, name: &str) -> Option<ProgramClass> {
        let has = |list: &[String]| list.iter().any(|n| n == name);
        if has(&self.shells) {
            Some(ProgramClass::Shell)
        } else if has(&self.interpreters) {
            Some(ProgramClass::Interpreter)
        } else if has(&self.downloaders) {
            Some(ProgramClass::Downloader)
        } else {
            None
        }
    }

    /// The class of an executed program, or `None` when it is not suspicious. In order:
    /// the basename of `filename` (the path given to execve); the basename of `interp`, the
    /// interpreter of a `#!` script; `filename` under a writable directory; an anonymous memory
    /// file (`memfd`), when the policy flags those.
    pub fn classify(
        &self,
        filename: &str,
        interp: Option<&str>,
        memfd: bool,
    ) -> Option<ProgramClass> {
        if let Some(class) = self.class_of_name(basename(filename)) {
            return Some(class);
        }
        if let Some(class) = interp.and_then(|i| self.class_of_name(basename(i))) {
            return Some(class);
        }
        // The directories end with '/', so "/tmp/" matches "/tmp/x" and not "/tmpfoo/x".
        if self
            .writable_dirs
            .iter()
            .any(|dir| filename.starts_with(dir.as_str()))
        {
            return Some(ProgramClass::WritableDir);
        }
        (memfd && self.memfd).then_some(ProgramClass::Memfd)
    }

    /// The first allow rule that lets the JVM with command line `jvm_cmdline` (argv joined by
    /// single spaces) run `filename`, if any.
    pub fn allowing(&self, jvm_cmdline: &str, filename: &str) -> Option<&ExecAllow> {
        self.allow
            .iter()
            .find(|rule| rule.applies_to(jvm_cmdline) && rule.allows(filename))
    }
}

// === impl ExecAllow ===

impl ExecAllow {
    /// Whether the rule covers the JVM with this command line: every JVM when `app` is absent,
    /// else those whose command line contains `app`.
    pub fn applies_to(&self, jvm_cmdline: &str) -> bool {
        app_applies(self.app.as_deref(), jvm_cmdline)
    }

    /// Whether the rule lists `filename`: an absolute entry equal to it, or a basename entry
    /// equal to its basename.
    pub fn allows(&self, filename: &str) -> bool {
        let base = basename(filename);
        self.programs.iter().any(|program| {
            if program.starts_with('/') {
                program == filename
            } else {
                program == base
            }
        })
    }
}

// === impl JvmPolicy ===

impl JvmPolicy {
    /// Whether executing `filename` starts a JVM: its basename is a launcher name, or the path
    /// is a launcher path. No version stripping: launcher names are exact.
    pub fn is_launcher(&self, filename: &str) -> bool {
        let base = basename(filename);
        self.launchers.iter().any(|n| n == base)
            || self.launcher_paths.iter().any(|p| p == filename)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_policy() -> ExecPolicy {
        crate::policy::Policy::builtin().exec
    }

    fn rule(app: Option<&str>, programs: &[&str]) -> ExecAllow {
        ExecAllow {
            app: app.map(str::to_owned),
            programs: programs.iter().map(|p| (*p).to_owned()).collect(),
            reason: None,
        }
    }

    #[test]
    fn strip_version_removes_trailing_digits_and_dots() {
        assert_eq!(strip_version("python3.11"), "python");
        assert_eq!(strip_version("python3"), "python");
        assert_eq!(strip_version("perl5.36.0"), "perl");
        assert_eq!(strip_version("php8"), "php");
        assert_eq!(strip_version("lua5.4"), "lua");
        assert_eq!(strip_version("sh"), "sh");
        // Only trailing characters go: a leading digit stays.
        assert_eq!(strip_version("7z"), "7z");
        assert_eq!(strip_version("nc.openbsd"), "nc.openbsd");
        // Nothing would be left: unchanged.
        assert_eq!(strip_version("123"), "123");
        assert_eq!(strip_version("1.2"), "1.2");
        assert_eq!(strip_version(""), "");
    }

    #[test]
    fn class_of_name_tries_exact_then_stripped() {
        let p = exec_policy();
        assert_eq!(p.class_of_name("bash"), Some(ProgramClass::Shell));
        assert_eq!(p.class_of_name("python3"), Some(ProgramClass::Interpreter));
        assert_eq!(p.class_of_name("wget"), Some(ProgramClass::Downloader));
        // Exact names with a dot that is not a version.
        assert_eq!(
            p.class_of_name("nc.openbsd"),
            Some(ProgramClass::Downloader)
        );
        assert_eq!(p.class_of_name("id"), None);

        // An exact entry that ends in a digit wins over the stripped name's class.
        let mut p = p;
        p.shells.push("python2".to_owned());
        assert_eq!(p.class_of_name("python2"), Some(ProgramClass::Shell));
        assert_eq!(
            p.class_of_name("python2.7"),
            Some(ProgramClass::Interpreter)
        );
    }

    #[test]
    fn classify_by_name_interp_dir_and_memfd() {
        let p = exec_policy();
        assert_eq!(
            p.classify("/bin/sh", None, false),
            Some(ProgramClass::Shell)
        );
        assert_eq!(
            p.classify("/usr/bin/python3.11", None, false),
            Some(ProgramClass::Interpreter)
        );
        assert_eq!(
            p.classify("/usr/bin/perl5.36", None, false),
            Some(ProgramClass::Interpreter)
        );
        assert_eq!(
            p.classify("/usr/bin/curl", None, false),
            Some(ProgramClass::Downloader)
        );
        // A relative path is classified by its basename too.
        assert_eq!(p.classify("./bash", None, false), Some(ProgramClass::Shell));

        assert_eq!(
            p.classify("/tmp/x", None, false),
            Some(ProgramClass::WritableDir)
        );
        assert_eq!(p.classify("/tmpfoo/x", None, false), None);
        assert_eq!(
            p.classify("/dev/shm/a", None, false),
            Some(ProgramClass::WritableDir)
        );
        assert_eq!(
            p.classify("/var/tmp/sub/dir/a", None, false),
            Some(ProgramClass::WritableDir)
        );
        // The name wins over the directory: a shell copied to /tmp is a shell.
        assert_eq!(
            p.classify("/tmp/sh", None, false),
            Some(ProgramClass::Shell)
        );

        // A `#!/bin/bash` script is classified by its interpreter.
        assert_eq!(
            p.classify("/opt/app/run.sh", Some("/bin/bash"), false),
            Some(ProgramClass::Shell)
        );
        assert_eq!(
            p.classify("/opt/app/run", Some("/opt/app/helper"), false),
            None
        );

        assert_eq!(
            p.classify("/memfd:x (deleted)", None, true),
            Some(ProgramClass::Memfd)
        );
        let mut off = p.clone();
        off.memfd = false;
        assert_eq!(off.classify("/memfd:x (deleted)", None, true), None);

        assert_eq!(p.classify("/usr/bin/id", None, false), None);
    }

    #[test]
    fn allowing_global_and_app_scoped_rules() {
        let mut p = exec_policy();
        p.allow = vec![
            rule(Some("build-agent.jar"), &["/usr/bin/git", "sh"]),
            rule(None, &["curl"]),
        ];
        let agent = "java -Xmx1g -jar /opt/ci/build-agent.jar --work /srv";
        let shop = "java -jar shop.jar";

        // Global rule: every JVM, basename entry matches any directory.
        assert_eq!(p.allowing(shop, "/usr/bin/curl"), Some(&p.allow[1]));
        assert_eq!(p.allowing(shop, "/tmp/curl"), Some(&p.allow[1]));

        // App-scoped rule: only the JVM whose command line contains `app`.
        assert_eq!(p.allowing(agent, "/usr/bin/git"), Some(&p.allow[0]));
        assert_eq!(p.allowing(agent, "/bin/sh"), Some(&p.allow[0]));
        assert_eq!(p.allowing(shop, "/usr/bin/git"), None);
        assert_eq!(p.allowing(shop, "/bin/sh"), None);

        // Absolute entries match the path exactly, not the basename.
        assert_eq!(p.allowing(agent, "/tmp/git"), None);
        assert_eq!(p.allowing(agent, "git"), None);
        // Basename entries do not match a longer name.
        assert_eq!(p.allowing(agent, "/bin/shx"), None);

        // First match wins.
        p.allow.insert(0, rule(None, &["sh"]));
        assert_eq!(p.allowing(agent, "/bin/sh"), Some(&p.allow[0]));
    }

    #[test]
    fn launcher_by_name_or_exact_path() {
        let jvm = JvmPolicy {
            launchers: vec!["java".to_owned()],
            launcher_paths: vec!["/opt/app/bin/server".to_owned()],
            recognise_libjvm: true,
            libjvm_paths: Vec::new(),
        };
        assert!(jvm.is_launcher("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"));
        assert!(jvm.is_launcher("java"));
        assert!(jvm.is_launcher("/opt/app/bin/server"));
        assert!(!jvm.is_launcher("/usr/bin/server"));
        assert!(!jvm.is_launcher("/usr/bin/java17"));
    }
}
