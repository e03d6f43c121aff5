//! The format version record, separate from the crate version.
//!
//! Stored under `(index, Metadata, 1)` as a little-endian `u32`. A release
//! reads exactly the format version it writes; a patch release of the crate
//! is not a format change.

use crate::error::Error;
use crate::key::Key;

/// The on-disk format this release reads and writes. Version 2 stores the
/// split normals of the `f32` distances as half-precision floats (version 1
/// stored `f32`s).
pub const FORMAT_VERSION: u32 = 2;

pub(crate) fn encode() -> [u8; 4] {
    FORMAT_VERSION.to_le_bytes()
}

/// Checks a stored version record.
pub(crate) fn check(key: Key, bytes: &[u8]) -> Result<(), Error> {
    let bytes: [u8; 4] =
        bytes.try_into().map_err(|_| Error::corrupted(key, format!("a version is 4 bytes, found {}", bytes.len())))?;
    match u32::from_le_bytes(bytes) {
        FORMAT_VERSION => Ok(()),
        found => Err(Error::FormatVersion { index: key.index, found, supported: FORMAT_VERSION }),
    }
}
