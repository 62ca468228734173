//! The detector daemon as a library: the binary in `main.rs` is a thin CLI over it, and the
//! pure parts (decoding, lineage, rules, policy) are unit-tested without a kernel.
//!
//! Flow, one way: `sensors` (kernel) → `decode` → `process_table` → `rules` → `response` → `sinks`.

pub mod policy;
