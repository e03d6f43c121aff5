//! Upgrading, in place, an index written in an older format.
//!
//! Formats 1 and 2 stored each item's vector under `(index, 2, id)` exactly
//! as format 3 stages a vector waiting for a build (a tag byte 0, the
//! distance's header, the vector), so an upgrade keeps every item where it
//! is and drops what a build recomputes: the trees (`(index, 3, ..)`, where
//! format 3 keeps slots), the change marks (which held whole vectors), and
//! the metadata. The next build grows a new forest over every item.
//!
//! Formats 3 and 4 kept a built item's vector in a slot chunk laid out
//! differently (ids, then codes, then headers, then vectors, in chunks of
//! a power of two of slots) and a changed item's vector in its entry.
//!
//! Format 5 kept the slots and entries format 6 keeps; only its runs, which
//! padded every partition to whole blocks, are another layout. Its upgrade
//! keeps every slot and entry and drops what a build recomputes.
//!
//! Every other upgrade reads each item's current vector from wherever its format
//! kept it, writes them all into format 6's slots, in id order (spooled to
//! a temporary file first: they are read from the values they replace),
//! and drops what a build recomputes: the trees, partitions and runs, the
//! change marks, the codebook and the metadata. The next build grows a new
//! forest over every item.

use std::borrow::Cow;
use std::marker::PhantomData;

use heed::{RoTxn, RwTxn};

use crate::codes;
use crate::error::Error;
use crate::item::ItemEntry;
use crate::key::{Key, NodeMode};
use crate::layout::{NewSlots, SlotGeometry};
use crate::metadata::Header;
use crate::store::{self, RawDatabase};
use crate::vector::VectorCodec;
use crate::writer::Writer;
use crate::{Distance, FORMAT_VERSION, Result};

/// The format versions whose header held only the version, and whose
/// metadata the dimensions and the distance.
const UNLABELLED: std::ops::RangeInclusive<u32> = 1..=2;
/// The format versions with slot chunks.
const SLOTTED: std::ops::RangeInclusive<u32> = 3..=4;
/// The format whose slots and entries are the current format's.
const SAME_SLOTS: u32 = 5;

impl<D: Distance> Writer<D> {
    /// Converts this index, written in format 1, 2, 3, 4 or 5 by an older
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
        if version == SAME_SLOTS {
            let header = Header::decode(bytes).map_err(|e| Error::corrupted(header_key, e))?;
            self.check_old(header.dimensions, &header.distance)?;
            let dimensions = header.dimensions;
            self.drop_built(wtxn)?;
            return self.write_upgraded_header(wtxn, dimensions);
        }
        let (dimensions, slotted) = if SLOTTED.contains(&version) {
            let header = Header::decode(bytes).map_err(|e| Error::corrupted(header_key, e))?;
            self.check_old(header.dimensions, &header.distance)?;
            (header.dimensions, true)
        } else if UNLABELLED.contains(&version) && bytes.len() == 4 {
            let metadata_key = Key::metadata(index);
            let metadata = store::get(db, wtxn, metadata_key)?
                .ok_or_else(|| Error::corrupted(metadata_key, "an index of format 2 without metadata"))?;
            let (dimensions, distance) =
                old_metadata(metadata).map_err(|reason| Error::corrupted(metadata_key, reason))?;
            self.check_old(dimensions, distance)?;
            (dimensions, false)
        } else {
            return Err(Error::FormatVersion { index, found: version, supported: FORMAT_VERSION });
        };

        let mut slots = NewSlots::new(SlotGeometry::of::<D>(self.dimensions), self.tmpdir.as_deref());
        let old = OldSlots::<D>::new(self.dimensions);
        let mut leaf = Vec::new();
        for entry in store::iter_mode(db, wtxn, index, NodeMode::Item)? {
            let (key, bytes) = entry?;
            leaf.clear();
            match store::decode_item::<D>(key, bytes, self.dimensions)? {
                ItemEntry::Staged(_) => leaf.extend_from_slice(&bytes[1..]),
                ItemEntry::Built(slot) if slotted => old.leaf(db, wtxn, index, key.id, slot, &mut leaf)?,
                ItemEntry::Built(_) => return Err(Error::corrupted(key, "a slot in an index of format 2")),
            }
            slots.push(key.id, &leaf)?;
        }
        // Format 2's marks held vectors and its mode 3 held tree nodes.
        slots.write(db, wtxn, index)?;
        store::delete_mode(db, wtxn, index, NodeMode::LegacySlots)?;
        self.drop_built(wtxn)?;
        self.write_upgraded_header(wtxn, dimensions)
    }

    /// Deletes what a build recomputes: the change marks, the read layer,
    /// the metadata and the codebook.
    fn drop_built(&self, wtxn: &mut RwTxn) -> Result<()> {
        let (db, index) = (self.db, self.index);
        store::delete_mode(db, wtxn, index, NodeMode::Updated)?;
        store::delete_read_layer(db, wtxn, index)?;
        db.delete(wtxn, &Key::metadata(index))?;
        db.delete(wtxn, &Key::codebook(index))?;
        Ok(())
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

/// The slot chunks of formats 3 and 4: chunk `c`, under `(index, 3, c)`,
/// holds `n` slots as `n` ids (`u32`), their codes (for the distances with
/// codes), `n` headers and `n` vectors; a full chunk holds the largest
/// power of two of slots (at most `2^16`) that fits in `2^20 - 16` bytes.
struct OldSlots<D: Distance> {
    shift: u32,
    dimensions: usize,
    marker: PhantomData<D>,
}

impl<D: Distance> OldSlots<D> {
    fn new(dimensions: usize) -> OldSlots<D> {
        let mut old = OldSlots { shift: 0, dimensions, marker: PhantomData };
        while old.shift < 16 && old.chunk_size(2 << old.shift) <= (1 << 20) - 16 {
            old.shift += 1;
        }
        old
    }

    fn code_section(&self, count: usize) -> usize {
        match codes::space::<D>(self.dimensions) {
            Some(_) => codes::section_size(self.dimensions, count),
            None => 0,
        }
    }

    fn chunk_size(&self, count: usize) -> usize {
        count * (4 + size_of::<D::Header>() + D::Codec::size(self.dimensions)) + self.code_section(count)
    }

    /// Appends the header and vector of `item`, in `slot`, to `leaf`.
    fn leaf(&self, db: RawDatabase, rtxn: &RoTxn, index: u16, item: u32, slot: u32, leaf: &mut Vec<u8>) -> Result<()> {
        let key = Key::new(index, NodeMode::LegacySlots, slot >> self.shift);
        let at = (slot & ((1 << self.shift) - 1)) as usize;
        let bytes = store::get(db, rtxn, key)?.ok_or_else(|| Error::corrupted(key, "the slot chunk is missing"))?;
        let (header, vector) = (size_of::<D::Header>(), D::Codec::size(self.dimensions));
        // The chunk's slots, from its size.
        let count = (1..=1usize << self.shift).find(|&count| self.chunk_size(count) == bytes.len());
        let Some(count) = count.filter(|&count| at < count) else {
            return Err(Error::corrupted(key, format!("the chunk of {} bytes has no slot {slot}", bytes.len())));
        };
        if bytes[at * 4..at * 4 + 4] != item.to_le_bytes() {
            return Err(Error::corrupted(key, format!("slot {slot} holds another item than {item}")));
        }
        let headers = count * 4 + self.code_section(count);
        let vectors = headers + count * header;
        leaf.extend_from_slice(&bytes[headers + at * header..headers + (at + 1) * header]);
        leaf.extend_from_slice(&bytes[vectors + at * vector..vectors + (at + 1) * vector]);
        Ok(())
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
