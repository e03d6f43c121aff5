//! Arbitrary bytes through the slot chunk decoder: an error or slots that,
//! written again from their ids and leaves, give the same bytes; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::slots(bytes));
