//! Fuzz target `jndi`: the body is `detector::fuzz_targets::jndi_find`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::jndi_find(data));
