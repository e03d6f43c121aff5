//! Arbitrary bytes through the partitions and run chunk decoders: an error
//! or values whose every place, slot and code reads, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::runs(bytes));
