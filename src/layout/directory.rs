//! The directory: the slot of every built item, in id order.
//!
//! The item of rank `r` among the items a build holds (their bitmap is in
//! the metadata) is in slot `directory[r]`, a little-endian `u32`; chunk
//! `c`, the value under `(index, Directory, c)`, holds ranks
//! `c × PER_CHUNK ..`. An id's rank is one roaring `rank` away, so readers
//! find any item's slot without a look-up: filters scored exactly, and
//! `by_item`, read vectors straight from the slots.

use heed::RoTxn;

use super::spool::Spool;
use crate::Result;
use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::store::{self, RawDatabase};

/// Slots per chunk: a chunk fills 256 pages.
const PER_CHUNK: u64 = (1 << 18) - 4;

/// The directory of a built index, read in place.
#[derive(Debug, Clone)]
pub(crate) struct Directory<'t> {
    chunks: Vec<&'t [u8]>,
}

impl<'t> Directory<'t> {
    /// Looks up the chunks of the directory of `n_items` items of `index`.
    pub fn open(db: RawDatabase, rtxn: &'t RoTxn, index: u16, n_items: u64) -> Result<Directory<'t>> {
        let mut chunks = Vec::new();
        for entry in store::iter_mode(db, rtxn, index, NodeMode::Directory)? {
            let (key, bytes) = entry?;
            let chunk = chunks.len() as u64;
            let expected = n_items.saturating_sub(chunk * PER_CHUNK).min(PER_CHUNK) * 4;
            if u64::from(key.id) != chunk || bytes.len() as u64 != expected || expected == 0 {
                let reason = format!("{} bytes where the directory of {n_items} items has {expected}", bytes.len());
                return Err(Error::corrupted(key, reason));
            }
            chunks.push(bytes);
        }
        if (chunks.len() as u64) < n_items.div_ceil(PER_CHUNK) {
            return Err(Error::corrupted(Key::directory(index, chunks.len() as u32), "the directory chunk is missing"));
        }
        Ok(Directory { chunks })
    }

    /// The slot of the item of rank `rank` (counted from 0).
    #[inline]
    pub fn slot(&self, rank: u64) -> u32 {
        let chunk = self.chunks[(rank / PER_CHUNK) as usize];
        let at = (rank % PER_CHUNK) as usize * 4;
        u32::from_le_bytes([chunk[at], chunk[at + 1], chunk[at + 2], chunk[at + 3]])
    }
}

/// Spools the directory whose slots, in id order, are `slots`: a value per
/// chunk.
pub(crate) fn spool(slots: impl IntoIterator<Item = u32>, spool: &mut Spool) -> Result<()> {
    let mut buffer = Vec::with_capacity(PER_CHUNK as usize * 4);
    for slot in slots {
        buffer.extend_from_slice(&slot.to_le_bytes());
        if buffer.len() as u64 == PER_CHUNK * 4 {
            spool.append(&buffer)?;
            spool.next_value();
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        spool.append(&buffer)?;
    }
    Ok(())
}
