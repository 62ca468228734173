//! Fuzz target `policy`: the body is `detector::fuzz_targets::policy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::policy(data));
