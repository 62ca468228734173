//! Fuzz target `deobfuscate`: the body is `detector::fuzz_targets::deobfuscate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::deobfuscate(data));
