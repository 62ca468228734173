//! The policy files the tests hand the daemon: only the keys a scenario needs, everything else
//! left to the daemon's defaults (shells, interpreters, downloaders, writable dirs, memfd).

use std::fmt::Write as _;

/// `detector run --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report only: alerts say `"action": "reported"` and nothing is stopped.
    Monitor,
    /// Kill the offending process: alerts say `"action": "killed"`.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }

    /// The `action` an alert for a blocked-by-policy exec carries in this mode.
    pub fn expected_action(self) -> &'static str {
        match self {
            Mode::Monitor => "reported",
            Mode::Enforce => "killed",
        }
    }
}

/// A policy TOML for one test.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    kill_jvm: bool,
    allows: Vec<ExecAllow>,
}

/// One `[[exec.allow]]` entry.
#[derive(Debug, Clone)]
struct ExecAllow {
    /// Substring of the JVM's command line; `None` means any JVM.
    app: Option<String>,
    /// Absolute paths or basenames.
    programs: Vec<String>,
}

impl Policy {
    /// `java` as the only launcher, no JVM kill, no allow rules.
    pub fn new(mode: Mode) -> Self {
        Policy {
            mode,
            kill_jvm: false,
            allows: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `[response] kill_jvm`: in enforce mode, kill the JVM too, not just its child.
    pub fn kill_jvm(mut self, kill_jvm: bool) -> Self {
        self.kill_jvm = kill_jvm;
        self
    }

    /// Adds `[[exec.allow]] app = app, programs = programs`.
    pub fn allow(mut self, app: Option<&str>, programs: &[&str]) -> Self {
        self.allows.push(ExecAllow {
            app: app.map(str::to_owned),
            programs: programs.iter().map(|p| (*p).to_owned()).collect(),
        });
        self
    }

    pub fn to_toml(&self) -> String {
        let mut toml = format!(
            "mode = {}\n\n[jvm]\nlaunchers = [\"java\"]\n\n[response]\nkill_jvm = {}\n",
            quote(self.mode.as_str()),
            self.kill_jvm
        );
        for allow in &self.allows {
            toml.push_str("\n[[exec.allow]]\n");
            if let Some(app) = &allow.app {
                let _ = writeln!(toml, "app = {}", quote(app));
            }
            let programs: Vec<String> = allow.programs.iter().map(|p| quote(p)).collect();
            let _ = writeln!(toml, "programs = [{}]", programs.join(", "));
        }
        toml
    }
}

/// A TOML basic string. JSON string syntax is a subset of it (serde_json escapes `"`, `\` and
/// control characters, and never emits `\/`).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::{Mode, Policy};

    #[test]
    fn allow_rules_render_as_toml_tables() {
        let toml = Policy::new(Mode::Enforce)
            .kill_jvm(true)
            .allow(Some("AllowedChild"), &["/usr/bin/perl"])
            .to_toml();
        assert_eq!(
            toml,
            "mode = \"enforce\"\n\n[jvm]\nlaunchers = [\"java\"]\n\n[response]\nkill_jvm = true\n\n\
             [[exec.allow]]\napp = \"AllowedChild\"\nprograms = [\"/usr/bin/perl\"]\n"
        );
    }
}
