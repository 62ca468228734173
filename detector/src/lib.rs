//! The detector daemon as a library: the binary in `main.rs` is a thin CLI over it, and the
//! pure parts (decoding, lineage, rules, policy) are unit-tested without a kernel.
//!
//! Flow, one way: `sensors` (kernel) → `decode` → `session` (the ring buffer, /proc, one
//! stream of events for `run` and `learn`) → `process_table` → `rules` (driven by `engine`)
//! → `response` → `alert` → `sinks`. `daemon` wires the edges together.

pub mod alert;
pub mod correlate;
pub mod daemon;
pub mod decode;
pub mod doctor;
pub mod engine;
pub mod events;
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz_targets;
pub mod learn;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod process_table;
pub mod protocols;
pub mod response;
pub mod rules;
pub mod sensors;
pub mod service;
pub mod session;
pub mod sinks;
pub mod timefmt;
pub mod vocab;
