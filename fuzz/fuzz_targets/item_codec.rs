//! Arbitrary bytes through the item entry and change mark decoders: an
//! error or a value that round-trips, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::item(bytes));
