//! Fuzz target `jrmp`: the body is `detector::fuzz_targets::jrmp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::jrmp(data));
