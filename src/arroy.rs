//! Migrating an index written by arroy 0.9: [`Writer::import_arroy`].
//!
//! What spinney reads of arroy's format (public in arroy's source): keys of
//! eight bytes, `(index u16, mode u8, id u32)` big-endian and a zero byte,
//! with the modes metadata 0, change marks 1, tree nodes 2 and items 3.
//! An item's value is a tag byte 0, the distance's header (two `f32`s for
//! the dot product, one otherwise) and the vector: `f32`s, or for the
//! binary-quantized distances one bit per dimension (set for a value of
//! positive sign), least significant first in `u64` words: the very
//! encoding of spinney's own codecs, which read it. The metadata
//! (mode 0, id 0) starts with the distance's name, a zero byte and the
//! dimensions as a big-endian `u32`.

use std::ops::Bound;

use bytemuck::Zeroable;
use heed::RwTxn;
use heed::types::Bytes;

use crate::error::Error;
use crate::item::Leaf;
use crate::vector::VectorCodec;
use crate::writer::Writer;
use crate::{Distance, ItemId, Result};

/// arroy's modes.
const METADATA: u8 = 0;
const TREE: u8 = 2;
const ITEM: u8 = 3;
/// The tag of an item's value.
const LEAF_TAG: u8 = 0;
/// Items moved per batch: each batch is read, written to spinney, then
/// deleted from arroy, so memory stays bounded.
const BATCH: usize = 4096;

type Key = [u8; 8];

fn arroy_key(index: u16, mode: u8, id: u32) -> Key {
    let [i0, i1] = index.to_be_bytes();
    let [a, b, c, d] = id.to_be_bytes();
    [i0, i1, mode, a, b, c, d, 0]
}

/// The item id of an arroy key.
fn item_id(key: &Key) -> ItemId {
    u32::from_be_bytes([key[3], key[4], key[5], key[6]])
}

/// How arroy stores the items of a distance: its name, and the size of an
/// item's header.
struct ArroyDistance {
    name: &'static str,
    header: usize,
}

fn arroy_distance(spinney_name: &str) -> Option<ArroyDistance> {
    let (name, header) = match spinney_name {
        "euclidean" => ("euclidean", 4),
        "cosine" => ("cosine", 4),
        "manhattan" => ("manhattan", 4),
        "dot-product" => ("dot-product", 8),
        "binary-quantized-euclidean" => ("binary quantized euclidean", 4),
        "binary-quantized-cosine" => ("binary quantized cosine", 4),
        "binary-quantized-manhattan" => ("binary quantized manhattan", 4),
        _ => return None,
    };
    Some(ArroyDistance { name, header })
}

/// The distance name and dimensions at the start of arroy's metadata.
fn decode_metadata(bytes: &[u8]) -> Option<(&str, usize)> {
    let end = bytes.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&bytes[..end]).ok()?;
    let dimensions = bytes.get(end + 1..end + 5)?;
    Some((name, u32::from_be_bytes(dimensions.try_into().ok()?) as usize))
}

impl<D: Distance> Writer<D> {
    /// Moves every item of index `arroy_index`, written by arroy 0.9 in
    /// `arroy_db`, into this index, in `wtxn`; returns how many. Nothing is
    /// re-embedded: the vectors are read as arroy stored them.
    ///
    /// arroy's entries of that index (items, trees, metadata) are deleted
    /// as the items move, so `arroy_db` may be the very database this
    /// writer writes to, with the same index number: spinney's keys are
    /// seven bytes long and arroy's eight, and the two never collide. Items
    /// already in this index are kept (an arroy item with the same id
    /// replaces one). Build afterwards to search them:
    /// [`Builder::build`](crate::Builder::build) grows spinney's forest.
    ///
    /// The arroy index must have this writer's distance (arroy's
    /// `BinaryQuantized*` distances map to spinney's; arroy has no
    /// Hamming) and dimensions: [`Error::DistanceMismatch`],
    /// [`Error::IndexDimensionMismatch`], and so must this index's, if it
    /// exists; these are found before anything is written. Anything else
    /// than an arroy 0.9 index is [`Error::NotArroy`], as is a target
    /// index number that holds arroy entries of another index (migrate
    /// each arroy index in place, into its own number, first). On any
    /// error, abort the transaction: both indexes stay as they were.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use rand::SeedableRng;
    /// # use spinney::{Database, Writer, distances::Cosine};
    /// # fn migrate(env: &spinney::heed::Env, db: Database<'static, Cosine>) -> Result<(), spinney::Error> {
    /// // The arroy index 0 of this database becomes spinney's index 0, in place.
    /// let mut wtxn = env.write_txn()?;
    /// let writer = Writer::<Cosine>::new(db, 0, 384);
    /// let moved = writer.import_arroy(&mut wtxn, db, 0)?;
    /// writer.builder(&mut rand::rngs::StdRng::seed_from_u64(42)).build(&mut wtxn)?;
    /// wtxn.commit()?;
    /// println!("{moved} items migrated");
    /// # Ok(()) }
    /// ```
    pub fn import_arroy<KC, DC>(
        &self,
        wtxn: &mut RwTxn,
        arroy_db: heed::Database<'static, KC, DC>,
        arroy_index: u16,
    ) -> Result<u64> {
        self.check_dimensions()?;
        let not_arroy = |reason: String| Error::NotArroy { index: arroy_index, reason };
        let distance =
            arroy_distance(D::NAME).ok_or_else(|| not_arroy(format!("arroy 0.9 has no {} distance", D::NAME)))?;
        let arroy = arroy_db.remap_types::<Bytes, Bytes>();
        // This index's own header, if any, must agree with the writer.
        self.header(wtxn)?;
        // arroy keys under this index number of this writer's database
        // would break spinney's scans: only those this import deletes (the
        // same index, in place) may be there.
        if arroy_index != self.index() {
            let target = self.db.remap_types::<Bytes, Bytes>();
            for mode in METADATA..=ITEM {
                if !next_batch(target, wtxn, self.index(), mode, None, 1)?.is_empty() {
                    return Err(not_arroy(format!(
                        "index {} of this writer's database holds arroy entries of its own; migrate arroy's index {} first, in place",
                        self.index(),
                        self.index()
                    )));
                }
            }
        }

        let first = next_batch(arroy, wtxn, arroy_index, ITEM, None, 1)?.pop();
        let dimensions = match arroy.get(wtxn, &arroy_key(arroy_index, METADATA, 0))? {
            Some(bytes) => {
                let (name, dimensions) =
                    decode_metadata(bytes).ok_or_else(|| not_arroy("its metadata does not decode".into()))?;
                if name != distance.name {
                    return Err(Error::DistanceMismatch { index: arroy_index, expected: D::NAME, found: name.into() });
                }
                dimensions
            }
            None if first.is_none() => {
                return Err(not_arroy("it has neither arroy's metadata nor arroy's items".into()));
            }
            // Never built by arroy: the items' sizes are checked below.
            None => self.dimensions(),
        };
        if dimensions != self.dimensions() {
            let (expected, found) = (self.dimensions(), dimensions);
            return Err(Error::IndexDimensionMismatch { index: arroy_index, expected, found });
        }
        let value_len = 1 + distance.header + D::Codec::size(dimensions);
        let wrong_size = |id: ItemId, len: usize| {
            not_arroy(format!(
                "item {id} holds {len} bytes, not the {value_len} of a {dimensions}-dimension {} item",
                distance.name
            ))
        };
        // Without metadata, the first item's size tells its dimensions:
        // checked before anything is deleted.
        if let Some((key, bytes)) = &first {
            if bytes.len() != value_len {
                return Err(wrong_size(item_id(key), bytes.len()));
            }
        }

        // The trees, the change marks and the metadata: a build recomputes
        // everything they hold.
        for mode in METADATA..=TREE {
            let mut after = None;
            loop {
                let batch = next_batch(arroy, wtxn, arroy_index, mode, after, BATCH)?;
                let Some((last, _)) = batch.last() else { break };
                after = Some(*last);
                for (key, _) in &batch {
                    arroy.delete(wtxn, key)?;
                }
            }
        }
        let mut moved = 0u64;
        let mut after = None;
        loop {
            let batch = next_batch(arroy, wtxn, arroy_index, ITEM, after, BATCH)?;
            let Some((last, _)) = batch.last() else { return Ok(moved) };
            after = Some(*last);
            for (key, bytes) in &batch {
                let id = item_id(key);
                if bytes.len() != value_len || bytes[0] != LEAF_TAG {
                    return Err(wrong_size(id, bytes.len()));
                }
                // The size is checked: the codec's view cannot fail. arroy's
                // header is left: the values need none, add_item recomputes
                // spinney's.
                let vector = D::Codec::view(&bytes[1 + distance.header..]).map_err(|_| wrong_size(id, bytes.len()))?;
                let leaf = Leaf::<D> { header: Zeroable::zeroed(), vector };
                self.add_item(wtxn, id, &D::values(&leaf, dimensions))?;
                arroy.delete(wtxn, key)?;
            }
            moved += batch.len() as u64;
        }
    }
}

/// Up to `limit` arroy entries of `(index, mode)` after the key `after`,
/// copied out. Only arroy's keys count: eight bytes, the last one zero;
/// others in the range (spinney's, of seven bytes) are skipped.
fn next_batch(
    arroy: heed::Database<'static, Bytes, Bytes>,
    wtxn: &RwTxn,
    index: u16,
    mode: u8,
    after: Option<Key>,
    limit: usize,
) -> Result<Vec<(Key, Vec<u8>)>> {
    let start = arroy_key(index, mode, 0);
    let end = arroy_key(index, mode, u32::MAX);
    let lower = match &after {
        Some(after) => Bound::Excluded(&after[..]),
        None => Bound::Included(&start[..]),
    };
    let bounds = (lower, Bound::Included(&end[..]));
    let mut batch = Vec::new();
    for entry in arroy.range(wtxn, &bounds)? {
        let (key, value) = entry?;
        if let Ok(key) = Key::try_from(key) {
            if key[7] == 0 {
                batch.push((key, value.to_vec()));
                if batch.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(batch)
}
