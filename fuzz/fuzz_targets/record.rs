//! Fuzz target `record`: the body is `detector::fuzz_targets::record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::record(data));
