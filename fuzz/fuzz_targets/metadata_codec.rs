//! Arbitrary bytes through the metadata, header and codebook decoders: an error or a value that
//! round-trips, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| spinney::fuzzing::metadata(bytes));
