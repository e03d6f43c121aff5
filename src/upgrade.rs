//! Upgrading, in place, an index written in an older format.
//!
//! Formats 1 and 2 stored each item's vector under `(index, 2, id)` exactly
//! as format 3 stages a vector waiting for a build (a tag byte 0, the
//! distance's header, the vector), so an upgrade keeps every item where it
//! is and drops what a build recomputes: the trees (`(index, 3, ..)`, where
//! format 3 keeps slots), the change marks (which held whole vectors), and
//! the metadata. The next build grows a new forest over every item.
//!
//! Format 3 is format 4 without the partitions and runs: an upgrade marks
//! the header with the new version and deletes the metadata, so that the
//! next build, a fresh one, reads every item from its entry or its slot
//! and writes the whole read layer anew, partitions and runs included.

use std::borrow::Cow;

use heed::RwTxn;

use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Header;
use crate::store;
use crate::writer::Writer;
use crate::{Distance, FORMAT_VERSION, Result};

/// The format versions [`Writer::upgrade`] converts by staging their items
/// again (format 3 keeps its items where they are).
const UPGRADABLE: std::ops::RangeInclusive<u32> = 1..=2;
/// The format whose items and read layer format 4 reads as they are.
const SLOTTED: u32 = 3;

impl<D: Distance> Writer<D> {
    /// Converts this index, written in format 1, 2 or 3 by an older
    /// release, to the current format, in `wtxn`; returns whether there was
    /// anything to convert (`false` for an index already in the current
    /// format, or never written).
    ///
    /// Every item is kept, with any change made since its last build; the
    /// index is unbuilt until the next
    /// [`Builder::build`](crate::Builder::build), which grows a new forest.
    /// The old index must have this writer's distance and dimensions
    /// ([`Error::DistanceMismatch`], [`Error::IndexDimensionMismatch`]).
    /// Abort the transaction to keep the index as it was.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # use spinney::{Database, Writer, distances::Cosine};
    /// # fn upgrade(env: &spinney::heed::Env, db: Database<'static, Cosine>) -> Result<(), spinney::Error> {
    /// let mut wtxn = env.write_txn()?;
    /// let writer = Writer::<Cosine>::new(db, 0, 384);
    /// if writer.upgrade(&mut wtxn)? {
    ///     writer.builder(&mut rand::rngs::StdRng::seed_from_u64(42)).build(&mut wtxn)?;
    /// }
    /// wtxn.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn upgrade(&self, wtxn: &mut RwTxn) -> Result<bool> {
        self.check_dimensions()?;
        let (db, index) = (self.db, self.index);
        let header_key = Key::header(index);
        let Some(bytes) = store::get(db, wtxn, header_key)? else { return Ok(false) };
        let version = Header::version(bytes).map_err(|e| Error::corrupted(header_key, e))?;
        if version == FORMAT_VERSION {
            self.header(wtxn)?;
            return Ok(false);
        }
        if version == SLOTTED {
            let header = Header::decode(bytes).map_err(|e| Error::corrupted(header_key, e))?;
            let dimensions = header.dimensions;
            self.check_old(dimensions, &header.distance)?;
            db.delete(wtxn, &Key::metadata(index))?;
            return self.write_upgraded_header(wtxn, dimensions);
        }
        if !UPGRADABLE.contains(&version) || bytes.len() != 4 {
            return Err(Error::FormatVersion { index, found: version, supported: FORMAT_VERSION });
        }
        let metadata_key = Key::metadata(index);
        let metadata = store::get(db, wtxn, metadata_key)?
            .ok_or_else(|| Error::corrupted(metadata_key, "an index of format 2 without metadata"))?;
        let (dimensions, distance) = old_metadata(metadata).map_err(|reason| Error::corrupted(metadata_key, reason))?;
        self.check_old(dimensions, distance)?;

        // Format 2's marks held vectors and its mode 3 held tree nodes.
        store::delete_mode(db, wtxn, index, NodeMode::Updated)?;
        store::delete_read_layer(db, wtxn, index)?;
        db.delete(wtxn, &metadata_key)?;
        self.write_upgraded_header(wtxn, dimensions)
    }

    /// Refuses an old index of another distance or other dimensions than
    /// this writer's.
    fn check_old(&self, dimensions: u32, distance: &str) -> Result<()> {
        let index = self.index;
        if distance != D::NAME {
            return Err(Error::DistanceMismatch { index, expected: D::NAME, found: distance.to_string() });
        }
        if dimensions as usize != self.dimensions {
            return Err(Error::IndexDimensionMismatch { index, expected: self.dimensions, found: dimensions as usize });
        }
        Ok(())
    }

    /// Writes the header of the current format.
    fn write_upgraded_header(&self, wtxn: &mut RwTxn, dimensions: u32) -> Result<bool> {
        let header = Header { version: FORMAT_VERSION, dimensions, distance: Cow::Borrowed(D::NAME) };
        let mut bytes = Vec::new();
        header.encode_into(&mut bytes);
        self.db.put(wtxn, &Key::header(self.index), &bytes)?;
        Ok(true)
    }
}

/// The dimensions and the distance name of a format-2 metadata record:
/// `dimensions: u32`, `split_after: u32`, `n: u32`, `n` roots of 4 bytes,
/// then the name's length (one byte) and the name, then fields an upgrade
/// does not need.
fn old_metadata(bytes: &[u8]) -> std::result::Result<(u32, &str), &'static str> {
    let word = |at: usize| bytes.get(at..at + 4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let (Some(dimensions), Some(n_trees)) = (word(0), word(8)) else { return Err("the metadata is truncated") };
    let name_at = usize::try_from(n_trees).ok().and_then(|n| n.checked_mul(4)).and_then(|roots| roots.checked_add(12));
    let len = name_at.and_then(|at| bytes.get(at)).ok_or("the metadata is truncated")?;
    let name =
        name_at.and_then(|at| bytes.get(at + 1..at + 1 + usize::from(*len))).ok_or("the metadata is truncated")?;
    let name = std::str::from_utf8(name).map_err(|_| "the distance name is not UTF-8")?;
    Ok((dimensions, name))
}
