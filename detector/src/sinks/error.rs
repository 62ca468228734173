//! Why the sinks could not start (or stdout failed), and why one delivery attempt failed
//! ([`Failure`]). Delivery failures are not errors of the daemon: they are retried, spooled
//! and counted, never fatal.

use std::{io, path::PathBuf, time::Duration};

use crate::policy::SecretError;

/// The sinks could not start, or writing to stdout failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A secret named in the policy could not be read.
    #[error("sink {sink:?}: {source}")]
    Secret {
        /// The sink's name.
        sink: String,
        /// What was wrong; names the key and the variable or file, never the value.
        #[source]
        source: SecretError,
    },

    /// A secret was read but cannot be what it should be (a webhook URL that is not a URL).
    #[error("sink {sink:?}: {key}: {message}")]
    BadSecret {
        /// The sink's name.
        sink: String,
        /// The policy key that names the secret.
        key: String,
        /// What is wrong, without the value.
        message: String,
    },

    /// The HTTP client could not be built (TLS set-up).
    #[error("sink {sink:?}: cannot set up the HTTP client")]
    Client {
        /// The sink's name.
        sink: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },

    /// The sink's spool directory exists but cannot be read.
    #[error("sink {sink:?}: cannot read the spool directory {}", dir.display())]
    Spool {
        /// The sink's name.
        sink: String,
        /// The directory.
        dir: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// Writing alerts to standard output failed.
    #[error("writing alerts to stdout")]
    Stdout {
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another try: a network error, a timeout, 408, 429, 5xx. `after`: the receiver's
    /// `Retry-After`.
    Transient {
        reason: String,
        after: Option<Duration>,
    },
    /// The same request will fail again (another 4xx, a redirect): give up on this message.
    Permanent { reason: String },
}
