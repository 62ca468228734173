//! Fuzz target `inbound`: the body is `detector::fuzz_targets::inbound`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::inbound(data));
