//! Where alerts go. The detection path hands an alert over and never waits on a sink.

pub mod stdout;
