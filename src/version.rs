//! The format version, separate from the crate version.
//!
//! It opens the header record (see `metadata.rs`). A release reads exactly
//! the format version it writes; a patch release of the crate is not a
//! format change. Older formats are refused with [`Error::FormatVersion`]
//! and converted in place by [`crate::upgrade`].

use crate::error::Error;
use crate::key::Key;
use crate::metadata::Header;

/// The on-disk format this release reads and writes.
///
/// Version 6 lays each run's partitions one after another, padding only
/// the end of a chunk to a whole block, where version 5 padded every
/// partition; its partitions are clusters of the items, not subtrees.
/// Version 5 writes each vector once, in its slot, when it is added, and
/// keeps codes only in the runs. Version 4 adds, for the indexes with codes, each tree's partitions and
/// its own copy of the codes in their order. Version 3 keeps items in two
/// layers: entries written by every change, and the slots and tree chunks a
/// build packs for queries. Version 2 stored an entry per item and per tree
/// node; version 1 stored split normals as `f32`s.
pub const FORMAT_VERSION: u32 = 6;

/// Decodes a stored header, refusing other format versions.
pub(crate) fn check(key: Key, bytes: &[u8]) -> Result<Header<'_>, Error> {
    match Header::version(bytes) {
        Ok(FORMAT_VERSION) => Header::decode(bytes).map_err(|e| Error::corrupted(key, e)),
        Ok(found) => Err(Error::FormatVersion { index: key.index, found, supported: FORMAT_VERSION }),
        Err(e) => Err(Error::corrupted(key, e)),
    }
}
