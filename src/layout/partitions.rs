//! Partitions and runs: clusters of the items, whose codes a query scores
//! in the order of their centroids.
//!
//! A query gathering candidates through the trees' planes reaches slots
//! scattered over the index, and pays a block of codes (and a cache miss)
//! for each. Here each run holds a copy of every item's code, cut into
//! *partitions* (the clusters the build chose, see `build/clusters.rs`),
//! each partition's codes side by side. A query ranks every partition of
//! every run by the code of its centroid, then scores the codes of the
//! nearest, a block of 32 at a time as a scan does, until it has scored
//! `search_k`. The first run holds each item in its nearest cluster, the
//! others in other near ones, so the partitions a query reaches hold
//! neighbours that the first run's centroids misjudge (see
//! `build/clusters.rs`). A run is numbered as a tree is, one per
//! tree, but its partitions are not subtrees.
//!
//! The partitions of tree `t`, under `(index, Partitions, t)`:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | number of partitions `p` (`u32`) |
//! | 12 × p | per partition: the run chunk, its first lane and its number of lanes, `u32`s |
//! | k | the codes of the `p` centroids (see `codes`) |
//!
//! Chunk `c` of the run of tree `t`, under `(index, Runs, t << 20 | c)`,
//! holds whole partitions, one after another, then padding to a whole
//! block of 32 lanes (format 5 padded each partition to whole blocks; a
//! query masks the lanes of a block that are not the partition's):
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | number of lanes `l` (`u32`, a multiple of 32) |
//! | 4 × l | the slot of each lane (`u32`; `u32::MAX` for padding) |
//! | k | the codes of the `l` lanes (see `codes`) |
//!
//! Every integer is little-endian. A build that changes the index writes
//! the runs anew from the clusters' members and the codes of the slots
//! (`SlotCodes`): those of new vectors encoded, the others copied from the
//! first run as it was.
//! The runs are the only place codes are kept; a query that scores every
//! item scans the first tree's run, which holds each once.

use heed::RoTxn;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::slots::SlotTable;
use crate::codes::{self, BLOCK, CodeWriter, Codebook, Codes};
use crate::error::Error;
use crate::key::{Key, NodeMode, TREE_SHIFT};
use crate::store::{self, RawDatabase};
use crate::{Distance, Result};

/// The largest run chunk that holds more than one partition: a value and
/// its page header fill at most 256 pages.
const RUN_CHUNK_BYTES: usize = (1 << 20) - 16;
/// The lane of a run that holds no slot.
pub(crate) const PADDING: u32 = u32::MAX;

/// One tree's partitions, decoded and borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Partitions<'t> {
    places: &'t [u8],
    codes: Codes<'t>,
}

impl<'t> Partitions<'t> {
    /// Decodes the partitions of an index whose codes have `dimensions`.
    pub fn decode(bytes: &'t [u8], dimensions: usize) -> std::result::Result<Partitions<'t>, String> {
        let (places, codes) = decode_table(bytes, 12, dimensions)?;
        Ok(Partitions { places, codes })
    }

    /// The number of partitions.
    pub fn len(&self) -> usize {
        self.places.len() / 12
    }

    /// Where partition `i` lies: its run chunk, its first lane and its
    /// number of lanes.
    pub fn place(&self, i: usize) -> [u32; 3] {
        let word = |at: usize| {
            let w = &self.places[12 * i + at..12 * i + at + 4];
            u32::from_le_bytes([w[0], w[1], w[2], w[3]])
        };
        [word(0), word(4), word(8)]
    }

    /// The codes of the centroids.
    pub fn codes(&self) -> &Codes<'t> {
        &self.codes
    }
}

/// A chunk of a run, decoded and borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunChunk<'t> {
    slots: &'t [u8],
    codes: Codes<'t>,
}

impl<'t> RunChunk<'t> {
    /// Decodes a run chunk of an index whose codes have `dimensions`.
    pub fn decode(bytes: &'t [u8], dimensions: usize) -> std::result::Result<RunChunk<'t>, String> {
        let (slots, codes) = decode_table(bytes, 4, dimensions)?;
        if !(slots.len() / 4).is_multiple_of(BLOCK) {
            return Err(format!("{} lanes, not whole blocks", slots.len() / 4));
        }
        Ok(RunChunk { slots, codes })
    }

    /// The number of lanes.
    pub fn lanes(&self) -> usize {
        self.slots.len() / 4
    }

    /// The slot in `lane`, or [`PADDING`].
    #[inline]
    pub fn slot(&self, lane: usize) -> u32 {
        let w = &self.slots[4 * lane..4 * lane + 4];
        u32::from_le_bytes([w[0], w[1], w[2], w[3]])
    }

    /// The codes of the lanes.
    pub fn codes(&self) -> &Codes<'t> {
        &self.codes
    }

    /// Asks the CPU to fetch the slots and codes of `lanes` into its
    /// caches.
    #[inline]
    pub fn prefetch(&self, lanes: std::ops::Range<usize>) {
        let slots = &self.slots[4 * lanes.start..4 * lanes.end];
        crate::kernels::prefetch(slots, slots.len().div_ceil(64));
        self.codes.prefetch(lanes);
    }
}

/// Splits a value that is a `u32` count `n`, `n` entries of `width` bytes,
/// then the codes of `n` slots of `dimensions`.
fn decode_table(bytes: &[u8], width: usize, dimensions: usize) -> std::result::Result<(&[u8], Codes<'_>), String> {
    let count = bytes.get(..4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize);
    let count = count.ok_or("the value is truncated")?;
    let table = count.checked_mul(width).and_then(|len| bytes.get(4..4 + len)).ok_or("the value is truncated")?;
    let section = &bytes[4 + table.len()..];
    let codes = Codes::new(section, dimensions, count)
        .filter(|_| section.len() == codes::section_size(dimensions, count))
        .ok_or_else(|| format!("{} bytes of codes for {count} entries", section.len()))?;
    Ok((table, codes))
}

/// One tree's partitions and run.
#[derive(Debug, Clone)]
pub(crate) struct TreeRun<'t> {
    pub partitions: Partitions<'t>,
    pub chunks: Vec<RunChunk<'t>>,
}

impl TreeRun<'_> {
    /// The slots of each partition, in run order, padding left out.
    pub fn members(&self) -> Vec<Vec<u32>> {
        (0..self.partitions.len())
            .map(|i| {
                let [chunk, first, lanes] = self.partitions.place(i);
                let chunk = &self.chunks[chunk as usize];
                (first..first + lanes).map(|lane| chunk.slot(lane as usize)).filter(|&slot| slot != PADDING).collect()
            })
            .collect()
    }
}

/// The partitions and runs of every tree of `index`, looked up in two
/// prefix scans; `None` when the index has none (the distances without
/// codes). Each partition's place is checked against its chunk.
pub(crate) fn open<'t>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
    dimensions: usize,
    n_trees: usize,
) -> Result<Option<Vec<TreeRun<'t>>>> {
    let mut runs = Vec::new();
    for entry in store::iter_mode(db, rtxn, index, NodeMode::Partitions)? {
        let (key, bytes) = entry?;
        if key.id as usize != runs.len() || runs.len() == n_trees {
            return Err(Error::corrupted(key, "the partitions of no tree, or of a tree out of order"));
        }
        let partitions = Partitions::decode(bytes, dimensions).map_err(|reason| Error::corrupted(key, reason))?;
        runs.push(TreeRun { partitions, chunks: Vec::new() });
    }
    if runs.is_empty() {
        return Ok(None);
    }
    if runs.len() != n_trees {
        return Err(Error::corrupted(Key::partitions(index, runs.len() as u32), "the partitions are missing"));
    }
    for entry in store::iter_mode(db, rtxn, index, NodeMode::Runs)? {
        let (key, bytes) = entry?;
        let (tree, chunk) = ((key.id >> TREE_SHIFT) as usize, key.id & ((1 << TREE_SHIFT) - 1));
        let run = match runs.get_mut(tree) {
            Some(run) if run.chunks.len() == chunk as usize => run,
            _ => return Err(Error::corrupted(key, "a run chunk out of order")),
        };
        run.chunks.push(RunChunk::decode(bytes, dimensions).map_err(|reason| Error::corrupted(key, reason))?);
    }
    for (tree, run) in runs.iter().enumerate() {
        for i in 0..run.partitions.len() {
            let [chunk, first, lanes] = run.partitions.place(i);
            let fits = run.chunks.get(chunk as usize).is_some_and(|c| (first as usize + lanes as usize) <= c.lanes());
            if !fits {
                let reason = format!("partition {i} lies outside its run chunk {chunk}");
                return Err(Error::corrupted(Key::partitions(index, tree as u32), reason));
            }
        }
    }
    Ok(Some(runs))
}

/// Slots per section of [`SlotCodes`].
const SECTION: usize = 1024;

/// The code of every slot a build's runs hold, in slot order: sections of
/// [`SECTION`] slots, each laid out as a run chunk's codes are.
pub(crate) struct SlotCodes {
    sections: Vec<Vec<u8>>,
    dimensions: usize,
}

impl SlotCodes {
    /// Room for the codes of `n_slots` slots of `dimensions`, zeroed.
    pub fn new(dimensions: usize, n_slots: u32) -> SlotCodes {
        let sections = (n_slots as usize).div_ceil(SECTION);
        SlotCodes { sections: vec![vec![0; codes::section_size(dimensions, SECTION)]; sections], dimensions }
    }

    /// Copies the codes `run` holds of the slots `keeps` keeps.
    pub fn copy_run(&mut self, run: &TreeRun<'_>, keeps: impl Fn(u32) -> bool) {
        for chunk in &run.chunks {
            for lane in 0..chunk.lanes() {
                let slot = chunk.slot(lane);
                let Some(section) = self.sections.get_mut(slot as usize / SECTION).filter(|_| keeps(slot)) else {
                    continue;
                };
                chunk.codes().copy_to(lane, section, SECTION, slot as usize % SECTION);
            }
        }
    }

    /// Encodes the vectors of `encoded` (slots of `slots`), in parallel.
    pub fn encode<D: Distance>(&mut self, codebook: &Codebook, slots: &SlotTable<'_, D>, encoded: &RoaringBitmap) {
        self.sections.par_iter_mut().enumerate().for_each_init(
            || CodeWriter::new(codebook),
            |writer, (i, section)| {
                let first = (i * SECTION) as u32;
                for slot in encoded.range(first..first + SECTION as u32) {
                    writer.write(&slots.leaf(slot), section, SECTION, slot as usize - first as usize);
                }
            },
        );
    }

    /// Copies the code of `slot` to position `to` of `section`, the code
    /// section of `count` lanes.
    fn copy_to(&self, slot: u32, section: &mut [u8], count: usize, to: usize) {
        let Some(from) = self.sections.get(slot as usize / SECTION) else { return };
        if let Some(codes) = Codes::new(from, self.dimensions, SECTION) {
            codes.copy_to(slot as usize % SECTION, section, count, to);
        }
    }
}

/// The encoded partitions of a run and its chunks: the partitions
/// `members` lists, whose items are in `slots` with their codes in
/// `slot_codes`, each with the code of its centroid. An empty partition
/// keeps its place (each run numbers the clusters alike), with no lane and
/// the code of the origin.
pub(crate) fn encode<D: Distance>(
    members: &[Vec<u32>],
    slots: &SlotTable<'_, D>,
    slot_codes: &SlotCodes,
    codebook: &Codebook,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let dimensions = codebook.dimensions();
    let centroids: Vec<Vec<f32>> =
        members.par_iter().map_init(Vec::new, |point, members| centroid(slots, members, point)).collect();

    // The run, chunk by chunk, its partitions one after another, padded
    // to a whole block at the end of the chunk.
    let lane_bytes = 4 + codes::section_size(dimensions, BLOCK) / BLOCK;
    let mut chunks: Vec<Vec<u32>> = vec![Vec::new()];
    let mut places = Vec::with_capacity(members.len());
    for members in members {
        let used = chunks.last().map_or(0, Vec::len);
        if used > 0 && (used + members.len()).div_ceil(BLOCK) * BLOCK * lane_bytes > RUN_CHUNK_BYTES {
            chunks.push(Vec::new());
        }
        let at = chunks.len() - 1;
        places.push([at as u32, chunks[at].len() as u32, members.len() as u32]);
        chunks[at].extend_from_slice(members);
    }
    let run = chunks
        .into_iter()
        .map(|mut lane_slots| {
            lane_slots.resize(lane_slots.len().div_ceil(BLOCK) * BLOCK, PADDING);
            let lanes = lane_slots.len();
            let mut section = vec![0u8; codes::section_size(dimensions, lanes)];
            for (lane, &slot) in lane_slots.iter().enumerate().filter(|&(_, &slot)| slot != PADDING) {
                slot_codes.copy_to(slot, &mut section, lanes, lane);
            }
            let mut bytes = Vec::with_capacity(4 + 4 * lanes + section.len());
            bytes.extend_from_slice(&(lanes as u32).to_le_bytes());
            bytes.extend(lane_slots.iter().flat_map(|slot| slot.to_le_bytes()));
            bytes.extend_from_slice(&section);
            bytes
        })
        .collect();

    let count = members.len();
    let mut record = Vec::with_capacity(4 + 12 * count + codes::section_size(dimensions, count));
    record.extend_from_slice(&(count as u32).to_le_bytes());
    record.extend(places.iter().flatten().flat_map(|word| word.to_le_bytes()));
    let mut section = vec![0u8; codes::section_size(dimensions, count)];
    let mut writer = CodeWriter::new(codebook);
    for (at, centroid) in centroids.iter().enumerate() {
        writer.write_vector(centroid, &mut section, count, at);
    }
    record.extend_from_slice(&section);
    (record, run)
}

/// The mean of the code vectors of `members`, summed in their order (the
/// centroid a partition's code is made from); `point` is scratch.
pub(crate) fn centroid<D: Distance>(slots: &SlotTable<'_, D>, members: &[u32], point: &mut Vec<f32>) -> Vec<f32> {
    let mut sum = vec![0.0f32; slots.geometry().dimensions];
    for &slot in members {
        D::code_vector(&slots.leaf(slot), point);
        sum.iter_mut().zip(point.iter()).for_each(|(s, x)| *s += x);
    }
    let scale = (members.len().max(1) as f32).recip();
    sum.iter_mut().for_each(|s| *s *= scale);
    sum
}
