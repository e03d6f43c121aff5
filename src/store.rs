//! Typed reads and range deletions over the raw database, shared by the
//! writer, the build and the reader. Every decoding failure becomes
//! [`Error::Corrupted`] with the key that failed.

use heed::types::Bytes;
use heed::{RoTxn, RwTxn};
use roaring::RoaringBitmap;

use crate::error::Error;
use crate::key::{Key, KeyCodec, NodeMode, Prefix, PrefixCodec};
use crate::metadata::Metadata;
use crate::node::{Leaf, Node};
use crate::{Database, Distance, ItemId, Result, version};

/// The database with values as plain bytes.
pub(crate) type RawDatabase = heed::Database<'static, KeyCodec, Bytes>;

pub(crate) fn raw<D: Distance>(db: Database<'static, D>) -> RawDatabase {
    db.remap_data_type::<Bytes>()
}

/// The bytes of 4 KiB LMDB pages an entry with a `value` of this size takes
/// (its key included): its share of a leaf page when it fits there, or
/// its overflow pages and its node in a leaf page. (An estimate for sizing
/// defaults: pages are rarely completely full.)
pub(crate) fn entry_bytes(value: usize) -> f64 {
    const PAGE: usize = 4096;
    const PAGE_HEADER: usize = 16;
    /// A leaf node's header, and the pointer to it in the page.
    const NODE: usize = 8 + 2;
    /// LMDB moves larger nodes to overflow pages.
    const LARGEST_NODE: usize = (PAGE - PAGE_HEADER) / 2;
    let node = NODE + Key::SIZE + value;
    if node <= LARGEST_NODE {
        PAGE as f64 / ((PAGE - PAGE_HEADER) / node) as f64
    } else {
        ((PAGE_HEADER + value).div_ceil(PAGE) * PAGE + NODE + Key::SIZE + 8) as f64
    }
}

/// The value under `key`, if any, looked up without allocating the key.
pub(crate) fn get<'t>(db: RawDatabase, rtxn: &'t RoTxn, key: Key) -> Result<Option<&'t [u8]>> {
    Ok(db.remap_key_type::<Bytes>().get(rtxn, &key.to_bytes())?)
}

/// The node under `key`, if any.
pub(crate) fn node<'t, D: Distance>(db: RawDatabase, rtxn: &'t RoTxn, key: Key) -> Result<Option<Node<'t, D>>> {
    match get(db, rtxn, key)? {
        Some(bytes) => Node::decode(bytes).map(Some).map_err(|e| Error::corrupted(key, e)),
        None => Ok(None),
    }
}

/// The tree node under `key`, which must exist.
pub(crate) fn tree_node<'t, D: Distance>(db: RawDatabase, rtxn: &'t RoTxn, index: u16, id: u32) -> Result<Node<'t, D>> {
    let key = Key::tree(index, id);
    node(db, rtxn, key)?.ok_or_else(|| Error::corrupted(key, "the tree node is missing"))
}

/// Decodes an item's bytes, checking they are a leaf of `dimensions` values.
pub(crate) fn decode_leaf<D: Distance>(key: Key, bytes: &[u8], dimensions: usize) -> Result<Leaf<'_, D>> {
    let leaf = Node::<D>::decode(bytes).and_then(Node::into_leaf).map_err(|e| Error::corrupted(key, e))?;
    if !leaf.has_dimensions(dimensions) {
        let len = bytes.len();
        return Err(Error::corrupted(key, format!("the item has {len} bytes, wrong for {dimensions} dimensions")));
    }
    Ok(leaf)
}

/// The stored vector of `item`, if any.
pub(crate) fn leaf<'t, D: Distance>(
    db: RawDatabase,
    rtxn: &'t RoTxn,
    index: u16,
    item: ItemId,
    dimensions: usize,
) -> Result<Option<Leaf<'t, D>>> {
    let key = Key::item(index, item);
    match get(db, rtxn, key)? {
        Some(bytes) => decode_leaf(key, bytes, dimensions).map(Some),
        None => Ok(None),
    }
}

/// The metadata of `index`, if it was built.
pub(crate) fn metadata<'t>(db: RawDatabase, rtxn: &'t RoTxn, index: u16) -> Result<Option<Metadata<'t>>> {
    let key = Key::metadata(index);
    match get(db, rtxn, key)? {
        Some(bytes) => Metadata::decode(bytes).map(Some).map_err(|e| Error::corrupted(key, e)),
        None => Ok(None),
    }
}

/// Checks the format version of `index`; `Ok(false)` when there is none.
pub(crate) fn has_current_version(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<bool> {
    let key = Key::version(index);
    match get(db, rtxn, key)? {
        Some(bytes) => version::check(key, bytes).map(|()| true),
        None => Ok(false),
    }
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

/// The largest id of kind `mode` in `index`.
pub(crate) fn last_id(db: RawDatabase, rtxn: &RoTxn, index: u16, mode: NodeMode) -> Result<Option<u32>> {
    let prefix = Prefix::new(index, mode);
    let mut iter = db.remap_key_type::<PrefixCodec>().rev_prefix_iter(rtxn, &prefix)?.remap_key_type::<KeyCodec>();
    Ok(iter.next().transpose()?.map(|(key, _)| key.id))
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

/// The items of an index with their vectors, in id order.
pub struct ItemIter<'t, D: Distance> {
    inner: heed::RoPrefix<'t, KeyCodec, Bytes>,
    dimensions: usize,
    only: Option<RoaringBitmap>,
    marker: std::marker::PhantomData<D>,
}

impl<'t, D: Distance> ItemIter<'t, D> {
    pub(crate) fn new(db: RawDatabase, rtxn: &'t RoTxn, index: u16, dimensions: usize) -> Result<ItemIter<'t, D>> {
        let inner = iter_mode(db, rtxn, index, NodeMode::Item)?;
        Ok(ItemIter { inner, dimensions, only: None, marker: std::marker::PhantomData })
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
        Some(entry.map_err(Error::from).and_then(|(key, bytes)| {
            let leaf = decode_leaf::<D>(key, bytes, self.dimensions)?;
            Ok((key.id, D::values(&leaf, self.dimensions)))
        }))
    }
}
