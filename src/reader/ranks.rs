//! The rank of an item among the built items, which the directory turns
//! into its slot.
//!
//! Roaring counts the items below an id in a dense container by counting
//! the bits of every word before it: hundreds of nanoseconds per id, which
//! made a filter of 400 items cost more than scoring them. So the first
//! query that needs many ranks builds, once per reader, a bitset of the ids
//! with the rank before each word: a rank is then a word and a popcount.
//! Ids spread too thin for a bitset (fewer than one per 64) sit in roaring's
//! sorted arrays, whose ranks are binary searches, and are left to it.

use roaring::RoaringBitmap;

/// Ranks of the ids of a bitmap, counted from 0.
#[derive(Debug)]
pub(crate) enum Ranks {
    /// A bitset from `first`, with the rank of the first id of each word.
    Dense { first: u32, words: Vec<u64>, before: Vec<u32> },
    /// Too sparse for a bitset: ask the bitmap.
    Sparse,
}

impl Ranks {
    pub fn of(items: &RoaringBitmap) -> Ranks {
        let (Some(first), Some(last)) = (items.min(), items.max()) else { return Ranks::Sparse };
        let span = u64::from(last - first) + 1;
        if span > 64 * items.len() {
            return Ranks::Sparse;
        }
        let mut words = vec![0u64; span.div_ceil(64) as usize];
        for id in items {
            let at = id - first;
            words[(at / 64) as usize] |= 1 << (at % 64);
        }
        let mut rank = 0u32;
        let before = words
            .iter()
            .map(|word| {
                let here = rank;
                rank += word.count_ones();
                here
            })
            .collect();
        Ranks::Dense { first, words, before }
    }

    /// The rank of `id`, which must be in the bitmap.
    #[inline]
    pub fn rank(&self, items: &RoaringBitmap, id: u32) -> u64 {
        match self {
            Ranks::Dense { first, words, before } => {
                let at = id.wrapping_sub(*first);
                let word = (at / 64) as usize;
                match (words.get(word), before.get(word)) {
                    (Some(bits), Some(&before)) => {
                        u64::from(before) + u64::from((bits & ((1u64 << (at % 64)) - 1)).count_ones())
                    }
                    _ => items.rank(id).saturating_sub(1),
                }
            }
            Ranks::Sparse => items.rank(id).saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn ranks_are_roarings(ids in proptest::collection::btree_set(0u32..5_000, 1..500), spread in 1u32..200) {
            let items: RoaringBitmap = ids.iter().map(|id| id * spread).collect();
            let ranks = Ranks::of(&items);
            for id in &items {
                prop_assert_eq!(ranks.rank(&items, id), items.rank(id) - 1);
            }
        }
    }

    #[test]
    fn sparse_ids_are_left_to_roaring() {
        let items: RoaringBitmap = [3, 1_000_000, u32::MAX].into_iter().collect();
        assert!(matches!(Ranks::of(&items), Ranks::Sparse));
        assert_eq!(Ranks::of(&items).rank(&items, u32::MAX), 2);
        assert!(matches!(Ranks::of(&(0..1_000).collect()), Ranks::Dense { .. }));
    }
}
