//! Arbitrary bytes through the tree chunk decoder: an error or nodes that
//! encode back to their bytes, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::tree(bytes));
