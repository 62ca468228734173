//! Fuzz target `decode`: the body is `detector::fuzz_targets::decode_event`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::decode_event(data));
