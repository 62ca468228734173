//! Why a policy was rejected. Every message names the file and the line, and the key when one is
//! known, because `detector check-config` prints it for a person to fix.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("{}: cannot read the policy file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The file is not TOML, or does not fit the schema: a syntax error, an unknown key, a value
    /// of the wrong type.
    #[error("{}:{line}:{column}: {}{message}", path.display(), KeyPrefix(key.as_deref()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// Dotted path of the key at the error (`exec.allow[0].app`), when the text is valid
        /// TOML and the error points into a key or its value.
        key: Option<String>,
        /// What the TOML parser said, on one line.
        message: String,
    },

    /// The file fits the schema but a value breaks a rule of the policy (a path that is not
    /// absolute, a name too long for the kernel's map keys, a name in two classes, ...).
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// Dotted path of the offending key (`exec.allow[0].programs`).
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// `--mode` or `mode =` named neither `monitor` nor `enforce`.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode `{value}`, expected `monitor` or `enforce`")]
pub struct ParseModeError {
    /// What was given.
    pub value: String,
}

/// Writes `key: ` when there is a key, nothing otherwise.
struct KeyPrefix<'a>(Option<&'a str>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "{key}: "),
            None => Ok(()),
        }
    }
}
