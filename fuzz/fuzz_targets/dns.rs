//! Fuzz target `dns`: the body is `detector::fuzz_targets::dns`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::dns(data));
