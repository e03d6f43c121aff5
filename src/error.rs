//! The one error type of the crate.

use std::path::PathBuf;

use crate::ItemId;
use crate::key::Key;

/// Everything that can go wrong, each with the values involved.
///
/// Mistakes a caller can make have their own variant and a message that says
/// what to do; anything unreadable in the database is [`Error::Corrupted`]
/// with the key of the entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector does not have the index's number of dimensions.
    #[error("the vector has {received} dimensions but the index has {expected}; pass vectors of {expected} values")]
    DimensionMismatch {
        /// The index's dimensions.
        expected: usize,
        /// The vector's length.
        received: usize,
    },

    /// A vector holds NaN or an infinity.
    #[error("the vector holds {value} at position {position}; only finite values can be indexed or searched")]
    NonFiniteValue {
        /// Where in the vector.
        position: usize,
        /// The value found.
        value: f32,
    },

    /// A writer was created with zero dimensions, or more than
    /// [`crate::MAX_DIMENSIONS`].
    #[error("an index needs between 1 and {} dimensions, not {dimensions}", crate::MAX_DIMENSIONS)]
    InvalidDimensions {
        /// The dimensions asked for.
        dimensions: usize,
    },

    /// `append_item` was given an id not greater than the last one.
    #[error("append_item needs strictly increasing ids: item {item} comes after item {last}; use add_item instead")]
    AppendOutOfOrder {
        /// The id given.
        item: ItemId,
        /// The largest id already in the index.
        last: ItemId,
    },

    /// The index has never been built (or was cleared and not rebuilt).
    #[error("index {index} has not been built; add items and call build first")]
    NotBuilt {
        /// The index.
        index: u16,
    },

    /// The index was built with another distance.
    #[error(
        "index {index} was built with the {found} distance, not {expected}; open it with the distance it was built with"
    )]
    DistanceMismatch {
        /// The index.
        index: u16,
        /// The distance asked for.
        expected: &'static str,
        /// The distance stored.
        found: String,
    },

    /// The index was built with other dimensions than the writer's.
    #[error(
        "index {index} was built with {found} dimensions but the writer has {expected}; use the same dimensions or clear the index"
    )]
    IndexDimensionMismatch {
        /// The index.
        index: u16,
        /// The writer's dimensions.
        expected: usize,
        /// The dimensions stored.
        found: usize,
    },

    /// The index was written in a format this version cannot read.
    #[error(
        "index {index} is in format version {found}, this release reads version {supported}; rebuild the index or use a matching release"
    )]
    FormatVersion {
        /// The index.
        index: u16,
        /// The version stored.
        found: u32,
        /// The version this release reads and writes.
        supported: u32,
    },

    /// An entry is missing or cannot be decoded.
    #[error("corrupted entry ({key}): {reason}")]
    Corrupted {
        /// The key of the entry.
        key: Key,
        /// What is wrong with it.
        reason: String,
    },

    /// A change of distance that would need the `f32` values of an index
    /// that only stores bits.
    #[error(
        "index {index} stores {from} vectors as bits, which cannot give back the values {to} needs; add the original vectors to a new index instead"
    )]
    LossyDistanceChange {
        /// The index.
        index: u16,
        /// The index's distance.
        from: &'static str,
        /// The distance asked for.
        to: &'static str,
    },

    /// [`Writer::import_arroy`](crate::Writer::import_arroy) found no arroy
    /// 0.9 index, or entries it cannot read; abort the transaction.
    #[error(
        "index {index} of that database is not an arroy 0.9 index: {reason}; pass the database and index arroy wrote"
    )]
    NotArroy {
        /// The arroy index asked for.
        index: u16,
        /// What was found instead.
        reason: String,
    },

    /// The LMDB map is full.
    #[error("the LMDB map is full; abort this transaction and reopen the environment with a larger map_size")]
    MapFull,

    /// The build was cancelled by its `cancel` callback.
    #[error("the build was cancelled; abort the transaction to keep the last built index")]
    BuildCancelled,

    /// A build worker (or the `cancel` callback) panicked; nothing was
    /// written.
    #[error("a build worker panicked: {message}; abort the transaction to keep the last built index")]
    BuildPanicked {
        /// The panic message.
        message: String,
    },

    /// A build's temporary file could not be created, written or read.
    #[error("temporary file in {dir:?}: {source}")]
    TempFile {
        /// The directory used (`None` for the system default).
        dir: Option<PathBuf>,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A tree would be larger than the format allows (16 GiB of nodes).
    #[error("a tree would exceed the format's 16 GiB; use a larger split_after or another index")]
    TooManyNodes,

    /// An error from LMDB.
    #[error(transparent)]
    Heed(heed::Error),
}

impl From<heed::Error> for Error {
    fn from(error: heed::Error) -> Error {
        match error {
            heed::Error::Mdb(heed::MdbError::MapFull) => Error::MapFull,
            other => Error::Heed(other),
        }
    }
}

impl Error {
    pub(crate) fn corrupted(key: Key, reason: impl ToString) -> Error {
        Error::Corrupted { key, reason: reason.to_string() }
    }
}
