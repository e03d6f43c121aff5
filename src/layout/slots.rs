//! Slots: every built item's id, header and vector, packed in slot order.
//!
//! A build gives each item a dense slot number. Slots are grouped in chunks
//! of `2^shift` (the last one may hold fewer), chunk `c` being the value
//! under `(index, Slots, c)`:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 × n | the item id of each slot, `u32` little-endian |
//! | k | the codes of the slots (see `codes`), for the `f32` distances |
//! | h × n | the distance's header of each slot (plain old data) |
//! | v × n | the vector of each slot, in the distance's codec |
//!
//! `n` is the number of slots in the chunk, `h` and `v` the sizes of a
//! header and of a vector, `k` that of `n` codes: blocks of 32, then two
//! `f32`s per slot. `shift` is the largest that keeps a full chunk
//! within 1 MiB (at least 0, at most 16): it depends only on the distance
//! and the dimensions. A free slot (its item deleted) keeps stale bytes
//! until a build reuses it; the metadata lists the free slots.

use std::marker::PhantomData;

use heed::RoTxn;

use crate::codes::{self, CodeWriter, Codes};
use crate::error::Error;
use crate::item::Leaf;
use crate::key::{Key, NodeMode};
use crate::store::{self, RawDatabase};
use crate::vector::VectorCodec;
use crate::{Distance, ItemId, Result};

/// The largest full chunk, in bytes.
const CHUNK_BYTES: usize = (1 << 20) - 16;
/// The most slots a chunk holds.
const MAX_SHIFT: u32 = 16;

/// How the slots of an index are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotGeometry {
    pub shift: u32,
    pub dimensions: usize,
    /// Whether slots have codes.
    pub codes: bool,
    pub header: usize,
    pub vector: usize,
}

impl SlotGeometry {
    pub fn of<D: Distance>(dimensions: usize) -> SlotGeometry {
        let codes = codes::space::<D>(dimensions).is_some();
        let (header, vector) = (size_of::<D::Header>(), D::Codec::size(dimensions));
        let mut geometry = SlotGeometry { shift: 0, dimensions, codes, header, vector };
        while geometry.shift < MAX_SHIFT && geometry.chunk_size(2 << geometry.shift) <= CHUNK_BYTES {
            geometry.shift += 1;
        }
        geometry
    }

    /// The bytes of the codes of `count` slots.
    pub fn code_section(self, count: usize) -> usize {
        if self.codes { codes::section_size(self.dimensions, count) } else { 0 }
    }

    /// The bytes of a chunk of `count` slots.
    pub fn chunk_size(self, count: usize) -> usize {
        count * (4 + self.header + self.vector) + self.code_section(count)
    }

    /// The number of slots of a chunk of `len` bytes, if it is whole slots.
    fn count(self, len: usize) -> Option<usize> {
        let (mut low, mut high) = (0, len / (4 + self.header + self.vector).max(1) + 1);
        while low < high {
            let middle = (low + high) / 2;
            if self.chunk_size(middle) < len { low = middle + 1 } else { high = middle }
        }
        (self.chunk_size(low) == len).then_some(low)
    }

    /// The chunk of `slot` and its position there.
    pub fn locate(self, slot: u32) -> (u32, usize) {
        (slot >> self.shift, (slot & ((1 << self.shift) - 1)) as usize)
    }

    /// The number of slots in chunk `chunk` of `n_slots`.
    pub fn slots_in(self, chunk: u32, n_slots: u32) -> usize {
        let first = u64::from(chunk) << self.shift;
        (u64::from(n_slots).saturating_sub(first)).min(1 << self.shift) as usize
    }
}

/// One chunk, cut into its sections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotChunk<'t> {
    ids: &'t [u8],
    codes: Option<Codes<'t>>,
    headers: &'t [u8],
    vectors: &'t [u8],
}

impl<'t> SlotChunk<'t> {
    /// Cuts the value of a chunk of `count` slots, if it has the right size.
    fn new(geometry: SlotGeometry, bytes: &'t [u8], count: usize) -> Option<SlotChunk<'t>> {
        if bytes.len() != geometry.chunk_size(count) {
            return None;
        }
        let (ids, rest) = bytes.split_at(count * 4);
        let (codes, rest) = rest.split_at(geometry.code_section(count));
        let codes = match geometry.codes {
            true => Some(Codes::new(codes, geometry.dimensions, count)?),
            false => None,
        };
        let (headers, vectors) = rest.split_at(count * geometry.header);
        Some(SlotChunk { ids, codes, headers, vectors })
    }

    fn count(&self) -> usize {
        self.ids.len() / 4
    }
}

/// The slots of an index, read in place: every chunk's value is looked up
/// once, and each slot is then a few multiplications away.
#[derive(Debug, Clone)]
pub(crate) struct SlotTable<'t, D: Distance> {
    geometry: SlotGeometry,
    n_slots: u32,
    chunks: Vec<SlotChunk<'t>>,
    marker: PhantomData<D>,
}

impl<'t, D: Distance> SlotTable<'t, D> {
    /// Reads the chunks of `n_slots` slots of `index` in one prefix scan,
    /// checking each is there with the right size. With `n_slots` unknown
    /// (an index whose build failed), takes the chunks there are.
    pub fn open(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        n_slots: Option<u32>,
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
            let count = match n_slots {
                Some(n_slots) => Some(geometry.slots_in(chunk, n_slots)),
                None => geometry.count(bytes.len()),
            };
            let parsed = count.and_then(|count| SlotChunk::new(geometry, bytes, count)).filter(|c| c.count() > 0);
            let Some(parsed) = parsed else {
                let count = count.map_or("a whole number of".into(), |count| count.to_string());
                let reason = format!("{} bytes for a chunk of {count} slots of {dimensions} dimensions", bytes.len());
                return Err(Error::corrupted(key, reason));
            };
            if seen != u64::from(chunk) << geometry.shift {
                return Err(Error::corrupted(key, "the chunk before it is not full"));
            }
            seen += parsed.count() as u64;
            chunks.push(parsed);
        }
        let found = u32::try_from(seen).map_err(|_| Error::corrupted(Key::slots(index, 0), "too many slots"))?;
        if n_slots.is_some_and(|n_slots| n_slots != found) {
            let key = Key::slots(index, chunks.len() as u32);
            return Err(Error::corrupted(key, "the slot chunk is missing"));
        }
        Ok(SlotTable { geometry, n_slots: found, chunks, marker: PhantomData })
    }

    /// The slots of one chunk's value, numbered from 0, if it is whole
    /// slots, and no more than a chunk holds.
    pub fn of_chunk(geometry: SlotGeometry, bytes: &'t [u8]) -> Option<SlotTable<'t, D>> {
        let count = geometry.count(bytes.len()).filter(|&count| count <= 1 << geometry.shift)?;
        let chunk = SlotChunk::new(geometry, bytes, count)?;
        Some(SlotTable { geometry, n_slots: count as u32, chunks: vec![chunk], marker: PhantomData })
    }

    pub fn geometry(&self) -> SlotGeometry {
        self.geometry
    }

    /// The number of slots, free ones included.
    pub fn len(&self) -> u32 {
        self.n_slots
    }

    /// The item id in `slot` (`slot < len()`).
    #[inline]
    pub fn id(&self, slot: u32) -> ItemId {
        let (chunk, at) = self.geometry.locate(slot);
        let ids = self.chunks[chunk as usize].ids;
        u32::from_le_bytes([ids[at * 4], ids[at * 4 + 1], ids[at * 4 + 2], ids[at * 4 + 3]])
    }

    /// The header and vector in `slot` (`slot < len()`).
    #[inline]
    pub fn leaf(&self, slot: u32) -> Leaf<'t, D> {
        let (chunk, at) = self.geometry.locate(slot);
        let SlotChunk { headers, vectors, .. } = self.chunks[chunk as usize];
        let (h, v) = (self.geometry.header, self.geometry.vector);
        let header = bytemuck::pod_read_unaligned(&headers[at * h..(at + 1) * h]);
        // The chunk's size was checked against whole vectors when it was read.
        let vector = D::Codec::view(&vectors[at * v..(at + 1) * v]).unwrap_or_else(|_| unreachable!());
        Leaf { header, vector }
    }

    /// The codes of chunk `chunk`, for distances with codes.
    #[inline]
    pub fn codes(&self, chunk: u32) -> Option<&Codes<'t>> {
        self.chunks[chunk as usize].codes.as_ref()
    }

    /// The raw bytes of chunk `chunk`'s slot `at`: id, header and vector.
    fn raw(&self, chunk: u32, at: usize) -> Option<[&'t [u8]; 3]> {
        let SlotChunk { ids, headers, vectors, .. } = *self.chunks.get(chunk as usize)?;
        let (h, v) = (self.geometry.header, self.geometry.vector);
        Some([ids.get(at * 4..at * 4 + 4)?, headers.get(at * h..(at + 1) * h)?, vectors.get(at * v..(at + 1) * v)?])
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

/// Packs a chunk of `count` slots, asking `slot(at)` for the id and leaf of
/// each position that changes (their codes written by `codes`), and taking
/// the others from `old`.
pub(crate) fn pack_chunk<'a, D: Distance + 'a>(
    geometry: SlotGeometry,
    old: Option<&SlotTable<'_, D>>,
    chunk: u32,
    count: usize,
    mut slot: impl FnMut(usize) -> Option<(ItemId, Leaf<'a, D>)>,
    mut codes: Option<&mut CodeWriter<'_>>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.resize(start + geometry.chunk_size(count), 0);
    let (ids, rest) = out[start..].split_at_mut(count * 4);
    let (code_section, rest) = rest.split_at_mut(geometry.code_section(count));
    let (headers, vectors) = rest.split_at_mut(count * geometry.header);
    let (h, v) = (geometry.header, geometry.vector);
    let old_codes = old.filter(|old| (chunk as usize) < old.chunks.len()).and_then(|old| old.codes(chunk));
    for at in 0..count {
        let new = slot(at);
        let id_bytes;
        let [id, header, vector]: [&[u8]; 3] = match &new {
            Some((id, leaf)) => {
                if let Some(codes) = codes.as_deref_mut().filter(|_| geometry.codes) {
                    codes.write(leaf, code_section, count, at);
                }
                id_bytes = id.to_le_bytes();
                [&id_bytes, bytemuck::bytes_of(&leaf.header), D::Codec::as_bytes(leaf.vector)]
            }
            None => match old.and_then(|old| old.raw(chunk, at)) {
                Some(raw) => {
                    if let Some(old_codes) = old_codes {
                        old_codes.copy_to(at, code_section, count, at);
                    }
                    raw
                }
                // A slot no item ever held: zeros.
                None => continue,
            },
        };
        ids[at * 4..at * 4 + 4].copy_from_slice(id);
        headers[at * h..(at + 1) * h].copy_from_slice(header);
        vectors[at * v..(at + 1) * v].copy_from_slice(vector);
    }
}
