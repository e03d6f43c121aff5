//! Typed reads and range deletions over the raw database, shared by the
//! writer, the build and the reader. Every decoding failure becomes
//! [`Error::Corrupted`] with the key that failed.

use heed::types::Bytes;
use heed::{RoTxn, RwTxn};
use roaring::RoaringBitmap;

use crate::codes::Codebook;
use crate::error::Error;
use crate::item::{ItemEntry, decode_mark};
use crate::key::{Key, KeyCodec, NodeMode, Prefix, PrefixCodec};
use crate::layout::SlotTable;
use crate::metadata::{Header, Metadata};
use crate::{Database, Distance, ItemId, Result, version};

/// The database with values as plain bytes.
pub(crate) type RawDatabase = heed::Database<'static, KeyCodec, Bytes>;

pub(crate) fn raw<D: Distance>(db: Database<'static, D>) -> RawDatabase {
    db.remap_data_type::<Bytes>()
}

/// The value under `key`, if any, looked up without allocating the key.
pub(crate) fn get<'t>(db: RawDatabase, rtxn: &'t RoTxn, key: Key) -> Result<Option<&'t [u8]>> {
    Ok(db.remap_key_type::<Bytes>().get(rtxn, &key.to_bytes())?)
}

/// The header of `index`, if anything was ever written to it; another
/// format version is [`Error::FormatVersion`].
pub(crate) fn header<'t>(db: RawDatabase, rtxn: &'t RoTxn, index: u16) -> Result<Option<Header<'t>>> {
    let key = Key::header(index);
    get(db, rtxn, key)?.map(|bytes| version::check(key, bytes)).transpose()
}

/// The metadata of `index`: `Some` exactly when the index is built.
pub(crate) fn metadata<'t>(db: RawDatabase, rtxn: &'t RoTxn, index: u16) -> Result<Option<Metadata<'t>>> {
    let key = Key::metadata(index);
    match get(db, rtxn, key)? {
        Some(bytes) => Metadata::decode(bytes).map(Some).map_err(|e| Error::corrupted(key, e)),
        None => Ok(None),
    }
}

/// The codebook of `index`'s codes, if it has one.
pub(crate) fn codebook(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<Option<Codebook>> {
    let key = Key::codebook(index);
    get(db, rtxn, key)?.map(|bytes| Codebook::decode(bytes).map_err(|e| Error::corrupted(key, e))).transpose()
}

/// The codebook of a built index of the distance `D` with `dimensions`:
/// `None` when `D` has no codes.
pub(crate) fn built_codebook<D: Distance>(
    db: RawDatabase,
    rtxn: &RoTxn,
    index: u16,
    dimensions: usize,
) -> Result<Option<Codebook>> {
    if crate::codes::space::<D>(dimensions).is_none() {
        return Ok(None);
    }
    let key = Key::codebook(index);
    match codebook(db, rtxn, index)? {
        Some(codebook) if codebook.dimensions() == dimensions => Ok(Some(codebook)),
        Some(codebook) => {
            let found = codebook.dimensions();
            Err(Error::corrupted(key, format!("a codebook of {found} dimensions for an index of {dimensions}")))
        }
        None => Err(Error::corrupted(key, "the codebook is missing")),
    }
}

/// Whether `index` is built, without decoding its metadata.
pub(crate) fn is_built(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<bool> {
    Ok(get(db, rtxn, Key::metadata(index))?.is_some())
}

/// Decodes the entry of an item, checking a staged vector has `dimensions` values.
pub(crate) fn decode_item<D: Distance>(key: Key, bytes: &[u8], dimensions: usize) -> Result<ItemEntry<'_, D>> {
    let entry = ItemEntry::<D>::decode(bytes).map_err(|e| Error::corrupted(key, e))?;
    if let ItemEntry::Staged(leaf) = &entry {
        if !leaf.has_dimensions(dimensions) {
            let len = bytes.len();
            return Err(Error::corrupted(key, format!("the item has {len} bytes, wrong for {dimensions} dimensions")));
        }
    }
    Ok(entry)
}

/// The slot an item's entry names; an entry of another kind (a vector
/// staged by format 4 or older, which [`Writer::upgrade`](crate::Writer::upgrade)
/// moves into a slot) is [`Error::Corrupted`].
pub(crate) fn decode_slot<D: Distance>(key: Key, bytes: &[u8]) -> Result<u32> {
    match ItemEntry::<D>::decode(bytes).map_err(|e| Error::corrupted(key, e))? {
        ItemEntry::Built(slot) => Ok(slot),
        ItemEntry::Staged(_) => Err(Error::corrupted(key, "a vector staged by an older format, not in a slot")),
    }
}

/// The slot of `item`, if it is in the index.
pub(crate) fn item_slot<D: Distance>(db: RawDatabase, rtxn: &RoTxn, index: u16, item: ItemId) -> Result<Option<u32>> {
    let key = Key::item(index, item);
    get(db, rtxn, key)?.map(|bytes| decode_slot::<D>(key, bytes)).transpose()
}

/// The change mark of `item`, if any: `Some(slot)` when the last build held it.
pub(crate) fn mark(db: RawDatabase, rtxn: &RoTxn, index: u16, item: ItemId) -> Result<Option<Option<u32>>> {
    let key = Key::updated(index, item);
    get(db, rtxn, key)?.map(|bytes| decode_mark(bytes).map_err(|e| Error::corrupted(key, e))).transpose()
}

/// Every entry of one kind in one index, in key order.
pub(crate) fn iter_mode<'t>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
    mode: NodeMode,
) -> Result<heed::RoPrefix<'t, KeyCodec, Bytes>> {
    let prefix = Prefix::new(index, mode);
    Ok(db.remap_key_type::<PrefixCodec>().prefix_iter(rtxn, &prefix)?.remap_key_type::<KeyCodec>())
}

/// Every change mark of `index`: the item and the slot the last build held it in.
pub(crate) fn marks<'t>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
) -> Result<impl Iterator<Item = Result<(ItemId, Option<u32>)>> + 't> {
    Ok(iter_mode(db, rtxn, index, NodeMode::Updated)?.map(|entry| {
        let (key, bytes) = entry?;
        Ok((key.id, decode_mark(bytes).map_err(|e| Error::corrupted(key, e))?))
    }))
}

/// The largest id of kind `mode` in `index`.
pub(crate) fn last_id(db: RawDatabase, rtxn: &RoTxn, index: u16, mode: NodeMode) -> Result<Option<u32>> {
    let prefix = Prefix::new(index, mode);
    let mut iter = db.remap_key_type::<PrefixCodec>().rev_prefix_iter(rtxn, &prefix)?.remap_key_type::<KeyCodec>();
    Ok(iter.next().transpose()?.map(|(key, _)| key.id))
}

/// The last entry of kind `mode` in `index`: its id and value.
pub(crate) fn last_entry<'t>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
    mode: NodeMode,
) -> Result<Option<(u32, &'t [u8])>> {
    let prefix = Prefix::new(index, mode);
    let mut iter = db.remap_key_type::<PrefixCodec>().rev_prefix_iter(rtxn, &prefix)?.remap_key_type::<KeyCodec>();
    Ok(iter.next().transpose()?.map(|(key, bytes)| (key.id, bytes)))
}

/// Whether `key` would be the last key of the database: LMDB then appends
/// it without a search and fills its pages.
///
/// Compares bytes, so that keys spinney does not write (an arroy index
/// being migrated, say) are no error.
pub(crate) fn is_past_the_end(db: RawDatabase, rtxn: &RoTxn, key: Key) -> Result<bool> {
    let last = db.remap_types::<Bytes, heed::types::DecodeIgnore>().last(rtxn)?;
    Ok(last.is_none_or(|(last, ())| last < &key.to_bytes()[..]))
}

/// Whether `index` has any entry of kind `mode`.
pub(crate) fn has_mode(db: RawDatabase, rtxn: &RoTxn, index: u16, mode: NodeMode) -> Result<bool> {
    Ok(iter_mode(db, rtxn, index, mode)?.next().transpose()?.is_some())
}

/// Deletes every entry of kind `mode` in `index`; returns how many.
pub(crate) fn delete_mode(db: RawDatabase, wtxn: &mut RwTxn, index: u16, mode: NodeMode) -> Result<usize> {
    let range = Key::new(index, mode, 0)..=Key::new(index, mode, u32::MAX);
    Ok(db.delete_range(wtxn, &range)?)
}

/// Deletes what a build writes for `index` beside its metadata and
/// codebook: its trees, directory, partitions and runs, and the list of its
/// free slots with the count new vectors took (the slots stay).
pub(crate) fn delete_read_layer(db: RawDatabase, wtxn: &mut RwTxn, index: u16) -> Result<()> {
    for mode in [NodeMode::Tree, NodeMode::Directory, NodeMode::Partitions, NodeMode::Runs] {
        delete_mode(db, wtxn, index, mode)?;
    }
    for key in [Key::free_slots(index), Key::reused(index)] {
        db.delete(wtxn, &key)?;
    }
    Ok(())
}

/// The items of an index with their vectors, in id order, read from their
/// slots.
pub struct ItemIter<'t, D: Distance> {
    inner: heed::RoPrefix<'t, KeyCodec, Bytes>,
    slots: SlotTable<'t, D>,
    dimensions: usize,
    only: Option<RoaringBitmap>,
}

impl<'t, D: Distance> ItemIter<'t, D> {
    pub(crate) fn new(
        db: RawDatabase,
        rtxn: &'t RoTxn,
        index: u16,
        dimensions: usize,
        slots: SlotTable<'t, D>,
    ) -> Result<ItemIter<'t, D>> {
        let inner = iter_mode(db, rtxn, index, NodeMode::Item)?;
        Ok(ItemIter { inner, slots, dimensions, only: None })
    }

    /// Skips the items not in `items`.
    pub(crate) fn only(self, items: RoaringBitmap) -> ItemIter<'t, D> {
        ItemIter { only: Some(items), ..self }
    }
}

impl<D: Distance> Iterator for ItemIter<'_, D> {
    type Item = Result<(ItemId, Vec<f32>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = loop {
            match self.inner.next()? {
                Ok((key, _)) if self.only.as_ref().is_some_and(|only| !only.contains(key.id)) => continue,
                entry => break entry,
            }
        };
        Some(entry.map_err(Error::from).and_then(|(key, bytes)| match decode_slot::<D>(key, bytes)? {
            slot if slot < self.slots.len() && self.slots.id(slot) == key.id => {
                Ok((key.id, D::values(&self.slots.leaf(slot), self.dimensions)))
            }
            slot => Err(Error::corrupted(key, format!("slot {slot} does not hold the item"))),
        }))
    }
}
