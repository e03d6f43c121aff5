//! Slots: every item's id, header and vector, written once, where queries
//! read them.
//!
//! [`Writer::add_item`](crate::Writer::add_item) gives each new vector the
//! next slot and writes it there, in the caller's transaction; a build only
//! reads slots. Slots are grouped in chunks of `per_chunk`, chunk `c` being
//! the value under `(index, Slots, c)`:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | the number of slots written in the chunk, `n` (`u32` little-endian) |
//! | r × per_chunk | one record per slot: the item id (`u32` little-endian), the distance's header (plain old data), the vector in the distance's codec |
//!
//! Every chunk has the same size, its records past `n` zeroed: only the
//! last chunk has `n < per_chunk`. `per_chunk` depends only on the
//! distance and the dimensions: the most records that fit a value of 4 to
//! 8 pages (4k to 8k for records of k pages), with the page count that
//! wastes the least of them (a value and its 16-byte page header fill
//! whole overflow pages). Adding a slot rewrites the last chunk, so chunks
//! are small (16 to 32 KiB up to 1,000 `f32` dimensions); that they
//! never change size lets LMDB rewrite a chunk changed earlier in the same
//! transaction in place, where a growing value would take new pages at
//! every size and leave the old ones unused until the commit. A slot whose
//! item was deleted or replaced keeps its bytes until a new vector takes
//! it: a build lists its free slots, ascending, under `(index, Metadata,
//! 3)`, and new vectors take them in that order (counted under `(index,
//! Metadata, 4)`) before they take new slots.

use std::marker::PhantomData;
use std::path::Path;

use heed::{PutFlags, RoTxn, RwTxn};
use roaring::RoaringBitmap;

use super::spool::Spool;
use crate::error::Error;
use crate::item::{Leaf, encode_built};
use crate::key::{Key, NodeMode};
use crate::store::{self, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Distance, ItemId, Result};

/// The size of an LMDB page, which this layout assumes.
const PAGE: usize = 4096;
/// The page header of a value stored in overflow pages.
const OVERFLOW_HEADER: usize = 16;
/// The page counts a chunk may fill, for records of at most a page (times
/// the pages of a record for larger ones).
const CHUNK_PAGES: std::ops::RangeInclusive<usize> = 4..=8;
/// The bytes before a chunk's records: their count.
const COUNT: usize = 4;

/// How the slots of an index are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotGeometry {
    /// The slots of a full chunk.
    pub per_chunk: u32,
    pub dimensions: usize,
    pub header: usize,
    pub vector: usize,
}

impl SlotGeometry {
    pub fn of<D: Distance>(dimensions: usize) -> SlotGeometry {
        let (header, vector) = (size_of::<D::Header>(), D::Codec::size(dimensions));
        let record = 4 + header + vector;
        let room = |pages: usize| pages * PAGE - OVERFLOW_HEADER - COUNT;
        let waste = |pages: usize| (pages * PAGE - room(pages) / record * record) * 4096 / (pages * PAGE);
        let scale = record.div_ceil(PAGE);
        let candidates = CHUNK_PAGES.start() * scale..=CHUNK_PAGES.end() * scale;
        let pages = candidates.min_by_key(|&pages| waste(pages)).unwrap_or(*CHUNK_PAGES.start());
        let per_chunk = (room(pages) / record).clamp(1, u32::MAX as usize) as u32;
        SlotGeometry { per_chunk, dimensions, header, vector }
    }

    /// The bytes of one slot.
    pub fn record(self) -> usize {
        4 + self.header + self.vector
    }

    /// The bytes of a chunk.
    pub fn chunk_size(self) -> usize {
        COUNT + self.per_chunk as usize * self.record()
    }

    /// The chunk of `slot` and its position there.
    #[inline]
    pub fn locate(self, slot: u32) -> (u32, usize) {
        (slot / self.per_chunk, (slot % self.per_chunk) as usize)
    }

    /// The records of a chunk and their number, if it has a chunk's size
    /// and holds one slot at least.
    fn records(self, bytes: &[u8]) -> Option<(&[u8], usize)> {
        let (count, records) = bytes.split_at_checked(COUNT).filter(|_| bytes.len() == self.chunk_size())?;
        let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
        (1..=self.per_chunk as usize).contains(&count).then(|| (&records[..count * self.record()], count))
    }
}

/// The slots of an index, read in place: every chunk's value is looked up
/// once, and each slot is then a few multiplications away.
#[derive(Debug, Clone)]
pub(crate) struct SlotTable<'t, D: Distance> {
    geometry: SlotGeometry,
    n_slots: u32,
    chunks: Vec<&'t [u8]>,
    marker: PhantomData<D>,
}

impl<'t, D: Distance> SlotTable<'t, D> {
    /// Reads every chunk of `index` in one prefix scan, checking that each
    /// is whole slots, that only the last is not full, and that there are
    /// at least `at_least` slots (those of the last build).
    pub fn open(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        at_least: u32,
    ) -> Result<SlotTable<'t, D>> {
        let geometry = SlotGeometry::of::<D>(dimensions);
        let mut chunks = Vec::new();
        let mut seen = 0u64;
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Slots)? {
            let (key, bytes) = entry?;
            let chunk = chunks.len() as u32;
            if key.id != chunk {
                return Err(Error::corrupted(Key::slots(index, chunk), "the slot chunk is missing"));
            }
            let Some((records, count)) = geometry.records(bytes) else {
                let reason = format!("{} bytes for a chunk of slots of {dimensions} dimensions", bytes.len());
                return Err(Error::corrupted(key, reason));
            };
            if seen != u64::from(chunk) * u64::from(geometry.per_chunk) {
                return Err(Error::corrupted(key, "the chunk before it is not full"));
            }
            seen += count as u64;
            chunks.push(records);
        }
        let n_slots = u32::try_from(seen).map_err(|_| Error::corrupted(Key::slots(index, 0), "too many slots"))?;
        if n_slots < at_least {
            let reason = format!("{n_slots} slots for a build of {at_least}");
            return Err(Error::corrupted(Key::slots(index, chunks.len() as u32), reason));
        }
        Ok(SlotTable { geometry, n_slots, chunks, marker: PhantomData })
    }

    /// The slots of one chunk's value, numbered from 0, if it is whole
    /// slots, and no more than a chunk holds.
    pub fn of_chunk(geometry: SlotGeometry, bytes: &'t [u8]) -> Option<SlotTable<'t, D>> {
        let (records, count) = geometry.records(bytes)?;
        Some(SlotTable { geometry, n_slots: count as u32, chunks: vec![records], marker: PhantomData })
    }

    pub fn geometry(&self) -> SlotGeometry {
        self.geometry
    }

    /// The number of slots, free ones and those written since the last
    /// build included.
    pub fn len(&self) -> u32 {
        self.n_slots
    }

    /// The bytes of `slot` (`slot < len()`).
    #[inline]
    fn record(&self, slot: u32) -> &'t [u8] {
        let (chunk, at) = self.geometry.locate(slot);
        let record = self.geometry.record();
        &self.chunks[chunk as usize][at * record..(at + 1) * record]
    }

    /// The item id in `slot` (`slot < len()`).
    #[inline]
    pub fn id(&self, slot: u32) -> ItemId {
        let record = self.record(slot);
        u32::from_le_bytes([record[0], record[1], record[2], record[3]])
    }

    /// Asks the CPU to fetch the header and vector in `slot` (`slot <
    /// len()`) into its caches: a distance to it computed soon after finds
    /// them there.
    #[inline]
    pub fn prefetch(&self, slot: u32) {
        crate::kernels::prefetch(&self.record(slot)[4..], 2);
    }

    /// The header and vector in `slot` (`slot < len()`).
    #[inline]
    pub fn leaf(&self, slot: u32) -> Leaf<'t, D> {
        let (header, vector) = self.record(slot)[4..].split_at(self.geometry.header);
        // The chunk's size was checked against whole slots when it was read.
        let vector = D::Codec::view(vector).unwrap_or_else(|_| unreachable!());
        Leaf { header: bytemuck::pod_read_unaligned(header), vector }
    }
}

/// The item id and leaf in `slot`, looked up alone (one `get`).
pub(crate) fn read_slot<'t, D: Distance>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
    dimensions: usize,
    slot: u32,
) -> Result<(ItemId, Leaf<'t, D>)> {
    let geometry = SlotGeometry::of::<D>(dimensions);
    let (chunk, at) = geometry.locate(slot);
    let key = Key::slots(index, chunk);
    let bytes = store::get(db, rtxn, key)?.ok_or_else(|| Error::corrupted(key, "the slot chunk is missing"))?;
    match SlotTable::<D>::of_chunk(geometry, bytes) {
        Some(table) if (at as u32) < table.len() => Ok((table.id(at as u32), table.leaf(at as u32))),
        _ => Err(Error::corrupted(key, format!("the chunk of {} bytes has no slot {slot}", bytes.len()))),
    }
}

/// The number of slots of `index`: those of every chunk, found from the
/// last one (one cursor step and its value).
fn slot_count(db: RawDatabase, rtxn: &RoTxn, index: u16, geometry: SlotGeometry) -> Result<u64> {
    let Some((chunk, bytes)) = store::last_entry(db, rtxn, index, NodeMode::Slots)? else { return Ok(0) };
    match geometry.records(bytes) {
        Some((_, count)) => Ok(u64::from(chunk) * u64::from(geometry.per_chunk) + count as u64),
        None => Err(Error::corrupted(Key::slots(index, chunk), format!("a chunk of {} bytes", bytes.len()))),
    }
}

/// Writes `item` with `leaf` (its header and vector, encoded) in a slot of
/// `index` no item holds: the next free slot of the last build that no new
/// vector took since, if it listed one, or else the next slot, at the
/// end of the last chunk or in a new one. Returns the slot.
pub(crate) fn write_slot(
    db: RawDatabase,
    wtxn: &mut RwTxn,
    index: u16,
    geometry: SlotGeometry,
    item: ItemId,
    leaf: &[u8],
) -> Result<u32> {
    let n_slots = slot_count(db, wtxn, index, geometry)?;
    let slot = match free_slot(db, wtxn, index)? {
        Some((slot, reused)) if u64::from(slot) < n_slots => {
            db.put(wtxn, &Key::reused(index), &(reused + 1).to_le_bytes())?;
            slot
        }
        Some((slot, _)) => {
            return Err(Error::corrupted(Key::free_slots(index), format!("free slot {slot} of {n_slots}")));
        }
        None => u32::try_from(n_slots).ok().filter(|&slot| slot < u32::MAX).ok_or(Error::TooManyNodes)?,
    };
    let (chunk, at) = geometry.locate(slot);
    let key = Key::slots(index, chunk);
    let mut bytes = match at {
        0 if u64::from(slot) == n_slots => vec![0; geometry.chunk_size()],
        // `slot_count` read the last chunk's size and count; a free slot
        // lies in a chunk before.
        _ => match store::get(db, wtxn, key)?.and_then(|bytes| geometry.records(bytes).map(|_| bytes)) {
            Some(bytes) => bytes.to_vec(),
            None => return Err(Error::corrupted(key, "the slot chunk is missing or of another size")),
        },
    };
    let record = &mut bytes[COUNT + at * geometry.record()..COUNT + (at + 1) * geometry.record()];
    record[..4].copy_from_slice(&item.to_le_bytes());
    record[4..].copy_from_slice(leaf);
    if u64::from(slot) == n_slots {
        bytes[..COUNT].copy_from_slice(&(at as u32 + 1).to_le_bytes());
    }
    db.put(wtxn, &key, &bytes)?;
    Ok(slot)
}

/// The next free slot of the last build of `index` that no new vector took
/// since, and how many took one, if it has one. The list and the count are
/// written by a build and deleted with its read layer, always together, and
/// the slots they leave name no item's entry: an index whose build was cut
/// short after deleting its metadata may still hand them out.
fn free_slot(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<Option<(u32, u32)>> {
    let Some(free) = store::get(db, rtxn, Key::free_slots(index))? else { return Ok(None) };
    let reused = reused_count(db, rtxn, index)?;
    let at = reused as usize * 4;
    Ok(free.get(at..at + 4).map(|slot| (u32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]), reused)))
}

/// How many of the free slots of the last build of `index` new vectors took.
pub(crate) fn reused_count(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<u32> {
    match store::get(db, rtxn, Key::reused(index))? {
        Some(bytes) => bytes
            .try_into()
            .map(u32::from_le_bytes)
            .map_err(|_| Error::corrupted(Key::reused(index), "a count is 4 bytes")),
        None => Ok(0),
    }
}

/// Writes the free slots of a build of `index`, for new vectors to take,
/// and forgets those taken before.
pub(crate) fn write_free_slots(db: RawDatabase, wtxn: &mut RwTxn, index: u16, free: &RoaringBitmap) -> Result<()> {
    db.delete(wtxn, &Key::reused(index))?;
    match free.is_empty() {
        true => db.delete(wtxn, &Key::free_slots(index)).map(drop)?,
        false => {
            let bytes: Vec<u8> = free.iter().flat_map(u32::to_le_bytes).collect();
            db.put(wtxn, &Key::free_slots(index), &bytes)?;
        }
    }
    Ok(())
}

/// Every slot of an index written anew, numbered from 0 in the order the
/// items come: their chunks kept in a temporary file until the old slots
/// they are read from can be deleted.
pub(crate) struct NewSlots {
    geometry: SlotGeometry,
    spool: Spool,
    ids: Vec<ItemId>,
}

impl NewSlots {
    pub fn new(geometry: SlotGeometry, tmpdir: Option<&Path>) -> NewSlots {
        NewSlots { geometry, spool: Spool::new(tmpdir), ids: Vec::new() }
    }

    /// Gives `item`, whose leaf is encoded as `leaf`, the next slot.
    pub fn push(&mut self, item: ItemId, leaf: &[u8]) -> Result<()> {
        if leaf.len() != self.geometry.header + self.geometry.vector {
            let reason = format!("a vector of {} bytes for {} dimensions", leaf.len(), self.geometry.dimensions);
            return Err(Error::corrupted(Key::item(0, item), reason));
        }
        if self.ids.len() >= u32::MAX as usize {
            return Err(Error::TooManyNodes);
        }
        if self.ids.len().is_multiple_of(self.geometry.per_chunk as usize) {
            if !self.ids.is_empty() {
                self.spool.next_value();
            }
            // The count of a full chunk; `write` sets the last one's.
            self.spool.append(&self.geometry.per_chunk.to_le_bytes())?;
        }
        self.spool.append(&item.to_le_bytes())?;
        self.spool.append(leaf)?;
        self.ids.push(item);
        Ok(())
    }

    /// Replaces the slots and item entries of `index` with these (the
    /// items must have come in id order).
    pub fn write(self, db: RawDatabase, wtxn: &mut RwTxn, index: u16) -> Result<()> {
        let NewSlots { geometry, spool, ids } = self;
        let chunks = spool.finish()?;
        store::delete_mode(db, wtxn, index, NodeMode::Slots)?;
        store::delete_mode(db, wtxn, index, NodeMode::Item)?;
        let last = ids.len().div_ceil(geometry.per_chunk as usize).saturating_sub(1);
        let in_last = ids.len() - last * geometry.per_chunk as usize;
        chunks.write_changed(
            db,
            wtxn,
            |chunk| Key::slots(index, chunk as u32),
            |chunk, bytes| {
                if chunk == last {
                    bytes[..COUNT].copy_from_slice(&(in_last as u32).to_le_bytes());
                    bytes.resize(geometry.chunk_size(), 0);
                }
            },
        )?;
        let append = match ids.first() {
            Some(&item) => store::is_past_the_end(db, wtxn, Key::item(index, item))?,
            None => false,
        };
        let flags = if append { PutFlags::APPEND } else { PutFlags::empty() };
        for (slot, &item) in (0..).zip(&ids) {
            db.put_with_flags(wtxn, flags, &Key::item(index, item), &encode_built(slot))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distances::{Cosine, Euclidean, Hamming};

    #[test]
    fn chunks_fill_their_pages_and_stay_small() {
        for dimensions in [1, 3, 64, 128, 384, 768, 1024, 1536, 3072] {
            let geometries = [
                SlotGeometry::of::<Euclidean>(dimensions),
                SlotGeometry::of::<Cosine>(dimensions),
                SlotGeometry::of::<Hamming>(dimensions),
            ];
            for geometry in geometries {
                let bytes = geometry.per_chunk as usize * geometry.record();
                let pages = (geometry.chunk_size() + OVERFLOW_HEADER).div_ceil(PAGE);
                assert!(pages <= 8 * geometry.record().div_ceil(PAGE), "{geometry:?}: {pages} pages");
                assert!(bytes as f64 >= 0.93 * (pages * PAGE) as f64, "{geometry:?}: {bytes} bytes in {pages} pages");
            }
        }
    }
}
