//! Fuzz target `ldap`: the body is `detector::fuzz_targets::ldap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzz_targets::ldap(data));
