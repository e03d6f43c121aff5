//! The indexes of a database, read without knowing their distance:
//! [`indexes`].

use std::ops::Bound;

use heed::RoTxn;
use heed::types::DecodeIgnore;

use crate::error::Error;
use crate::key::{Key, NodeMode};
use crate::metadata::Header;
use crate::store::{self, RawDatabase};
use crate::{Database, Distance, FORMAT_VERSION, Result};

/// What a database holds for one index, as [`indexes`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexInfo {
    /// The index.
    pub index: u16,
    /// The format version of its header; `None` when the index has entries
    /// but no header, which spinney never writes: the header was lost.
    pub format_version: Option<u32>,
    /// Its dimensions, when its header is in the current format.
    pub dimensions: Option<usize>,
    /// The name of its distance ([`Distance::NAME`]), when its header is
    /// in the current format.
    pub distance: Option<String>,
    /// The items it holds, built or waiting for a build.
    pub n_items: u64,
    /// Whether it has been built (it has a build's metadata).
    pub built: bool,
    /// The trees of its last build, 0 when it is not built or its build's
    /// metadata is in an older format.
    pub n_trees: usize,
    /// The items added, changed or deleted since its last build; every
    /// item when it is not built.
    pub pending_changes: u64,
}

/// Every index of `db` that has any entry, in index order, whatever its
/// distance: `D` only types the handle, so any `Database` works.
///
/// Reads a few entries per index and counts its items and change marks.
/// An index in another format or with another distance is listed as it
/// is; an entry whose key spinney cannot read is [`Error::Corrupted`]
/// (the database holds something else than spinney indexes). LMDB keeps
/// the names of an environment's named databases as keys of its unnamed
/// one: where there are named databases, keep spinney's in a named one.
///
/// # Examples
///
/// ```
/// # use spinney::{Database, Writer, distances::Cosine};
/// # fn list(env: &spinney::heed::Env, db: Database<'static, Cosine>) -> Result<(), spinney::Error> {
/// let rtxn = env.read_txn()?;
/// for info in spinney::indexes(&rtxn, db)? {
///     println!("index {}: {} items, built: {}", info.index, info.n_items, info.built);
/// }
/// # Ok(()) }
/// ```
pub fn indexes<D: Distance>(rtxn: &RoTxn, db: Database<'static, D>) -> Result<Vec<IndexInfo>> {
    let db = store::raw(db);
    let mut found = Vec::new();
    let mut from = Some(0u16);
    while let Some(start) = from {
        let lower = Key::new(start, NodeMode::Metadata, 0);
        let bounds = (Bound::Included(lower), Bound::Unbounded);
        let Some(first) = db.remap_data_type::<DecodeIgnore>().range(rtxn, &bounds)?.next() else { break };
        let (key, ()) = match first {
            Ok(entry) => entry,
            Err(heed::Error::Decoding(e)) => {
                return Err(Error::corrupted(lower, format!("the next key is not spinney's: {e}")));
            }
            Err(e) => return Err(e.into()),
        };
        found.push(describe(db, rtxn, key.index)?);
        from = key.index.checked_add(1);
    }
    Ok(found)
}

fn describe(db: RawDatabase, rtxn: &RoTxn, index: u16) -> Result<IndexInfo> {
    let header_key = Key::header(index);
    let header = store::get(db, rtxn, header_key)?;
    let format_version = header.map(Header::version).transpose().map_err(|e| Error::corrupted(header_key, e))?;
    let (dimensions, distance) = match header {
        Some(bytes) if format_version == Some(FORMAT_VERSION) => {
            let header = Header::decode(bytes).map_err(|e| Error::corrupted(header_key, e))?;
            (Some(header.dimensions as usize), Some(header.distance.into_owned()))
        }
        _ => (None, None),
    };
    let built = store::is_built(db, rtxn, index)?;
    let n_trees = match format_version == Some(FORMAT_VERSION) {
        true => store::metadata(db, rtxn, index)?.map_or(0, |metadata| metadata.roots.len()),
        false => 0,
    };
    let count = |mode| -> Result<u64> {
        let mut n = 0;
        for entry in store::iter_mode(db, rtxn, index, mode)?.remap_data_type::<DecodeIgnore>() {
            entry?;
            n += 1;
        }
        Ok(n)
    };
    let n_items = count(NodeMode::Item)?;
    let pending_changes = if built { count(NodeMode::Updated)? } else { n_items };
    Ok(IndexInfo { index, format_version, dimensions, distance, n_items, built, n_trees, pending_changes })
}
