//! Finding `java` and `javac`, compiling Java sources, and `java -cp DIR CLASS` command lines.

use std::{
    env,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::{command_line, Error};

/// What to do when a JDK tool or python is missing.
pub const SETUP_HINT: &str = "`cargo xtask setup` installs openjdk-17-jdk-headless and python3";

/// The first executable file called `name` in `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// [`find_on_path`], or an error that says how to install it.
pub fn require_on_path(name: &str) -> Result<PathBuf, Error> {
    find_on_path(name).ok_or_else(|| Error::Failed(format!("{name} is not on PATH ({SETUP_HINT})")))
}

/// `java -cp CLASSPATH CLASS`, with stdin closed; the caller adds arguments and output
/// handling.
pub fn java(java: impl AsRef<OsStr>, classpath: &Path, class: &str) -> Command {
    let mut cmd = Command::new(java);
    cmd.arg("-cp")
        .arg(classpath)
        .arg(class)
        .stdin(Stdio::null());
    cmd
}

/// One `javac FLAGS -d OUT SOURCES...` run; its output is captured and shown only when it
/// fails.
#[derive(Debug)]
pub struct Javac {
    cmd: Command,
}

impl Javac {
    /// `javac FLAGS -d OUT`: `flags` are javac's own (`-encoding UTF-8`, `-Xlint:all`...).
    pub fn new(javac: &Path, flags: &[&str], out: &Path) -> Self {
        let mut cmd = Command::new(javac);
        cmd.args(flags).arg("-d").arg(out).stdin(Stdio::null());
        Self { cmd }
    }

    /// More arguments (options or sources).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// The command line, for step logs.
    pub fn command_line(&self) -> String {
        command_line(&self.cmd)
    }

    /// Starts javac; [`Compiling::wait`] reads the verdict. Several can run in parallel.
    pub fn spawn(mut self) -> Result<Compiling, Error> {
        let line = command_line(&self.cmd);
        let child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io(format!("starting `{line}` ({SETUP_HINT})")))?;
        Ok(Compiling { line, child })
    }

    /// Compiles, and fails with javac's output if it does not.
    pub fn run(self) -> Result<(), Error> {
        self.spawn()?.wait()
    }
}

/// A running [`Javac`].
#[derive(Debug)]
pub struct Compiling {
    line: String,
    child: Child,
}

impl Compiling {
    pub fn wait(self) -> Result<(), Error> {
        let Self { line, child } = self;
        let output = child
            .wait_with_output()
            .map_err(Error::io(format!("waiting for `{line}`")))?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "`{line}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
