//! Arbitrary bytes through the slot chunk decoder: an error or slots that
//! pack back to the same bytes, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::slots(bytes));
