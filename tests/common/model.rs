//! A model-based check of the writer, the builds and the reader: any
//! sequence of operations is applied to an index and to a plain map, and
//! after every step the reader must answer exactly as brute force over the
//! map does (with `search_k` unbounded), and `check` must pass after every
//! build. Shared by the property test in `tests/incremental.rs` and the
//! `ops` fuzz target.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use spinney::{Distance, Reader, Writer};

use super::{MIB, TestEnv, data};

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Op {
    Add(u32, Vec<f32>),
    Delete(u32),
    Clear,
    Build(Option<usize>),
}

/// The dimensions of the vectors of [`Op::Add`], unless a run says otherwise.
pub const DIMENSIONS: usize = 3;

/// Three query vectors of `dimensions` values.
fn queries(dimensions: usize) -> Vec<Vec<f32>> {
    [[0.0, 0.0, 0.0], [2.5, -1.0, 0.5], [-3.0, 3.0, 1.0]]
        .iter()
        .map(|q| q.iter().copied().cycle().take(dimensions).collect())
        .collect()
}

/// The exact `k` nearest distances in `items`.
fn brute_force(metric: &str, items: &BTreeMap<u32, Vec<f32>>, query: &[f32], k: usize) -> Vec<f32> {
    let mut distances: Vec<f32> = items.values().map(|v| data::exact_distance(metric, query, v)).collect();
    distances.sort_by(f32::total_cmp);
    distances.truncate(k);
    distances
}

/// Checks a reader against the items it must answer from: with an
/// unbounded `search_k`, the answer is the exact top 5.
fn assert_answers<D: Distance>(
    reader: &Reader<'_, D>,
    rtxn: &spinney::heed::RoTxn,
    expected: &BTreeMap<u32, Vec<f32>>,
) {
    assert_eq!(reader.item_ids().iter().collect::<Vec<_>>(), expected.keys().copied().collect::<Vec<_>>());
    let all = NonZeroUsize::new(1000).unwrap();
    for query in queries(reader.dimensions()) {
        let found = reader.nns(5).search_k(all).rerank(all).by_vector(rtxn, &query).unwrap();
        let exact = brute_force(D::NAME, expected, &query, 5);
        assert_eq!(found.len(), exact.len());
        for ((id, _), exact) in found.iter().zip(&exact) {
            let distance = data::exact_distance(D::NAME, &query, &expected[id]);
            assert!((distance - exact).abs() < 1e-4, "item {id} at {distance}, expected {exact}");
        }
    }
}

/// Applies `ops` to an index of distance `D` and to the model, checking the
/// index after every step.
pub fn run<D: Distance>(ops: &[Op]) {
    run_with::<D>(ops, DIMENSIONS);
}

/// [`run`], with vectors of `dimensions` values.
pub fn run_with<D: Distance>(ops: &[Op], dimensions: usize) {
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<D>();
    let writer = Writer::<D>::new(db, 1, dimensions);
    let mut model: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
    let mut built: Option<BTreeMap<u32, Vec<f32>>> = None;
    let mut wtxn = test.env.write_txn().unwrap();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Add(id, vector) => {
                writer.add_item(&mut wtxn, *id, vector).unwrap();
                model.insert(*id, vector.clone());
            }
            Op::Delete(id) => assert_eq!(writer.del_item(&mut wtxn, *id).unwrap(), model.remove(id).is_some()),
            Op::Clear => {
                writer.clear(&mut wtxn).unwrap();
                model.clear();
                built = built.map(|_| BTreeMap::new());
            }
            Op::Build(n_trees) => {
                let mut rng = super::rng(step as u64);
                let mut builder = writer.builder(&mut rng);
                builder.split_after(3);
                if let Some(n) = n_trees {
                    builder.n_trees(*n);
                }
                builder.build(&mut wtxn).unwrap();
                built = Some(model.clone());
                let reader = Reader::<D>::open(&wtxn, 1, db).unwrap();
                reader.check(&wtxn).unwrap_or_else(|e| panic!("after step {step} ({op:?}): {e}"));
                if let Some(n) = n_trees {
                    assert_eq!(reader.n_trees(), *n);
                }
                assert!(reader.pending_changes().is_empty());
            }
        }
        // Between builds, readers answer from the last build minus what was
        // deleted since, and the index checks clean (with split_after 3 and
        // deletions pending, the trees hold more items than are visible).
        if let Some(built) = &built {
            let reader = Reader::<D>::open(&wtxn, 1, db).unwrap();
            reader.check(&wtxn).unwrap_or_else(|e| panic!("after step {step} ({op:?}): {e}"));
            reader.stats(&wtxn).unwrap_or_else(|e| panic!("stats after step {step} ({op:?}): {e}"));
            let visible: BTreeMap<u32, Vec<f32>> =
                built.iter().filter(|(id, _)| model.contains_key(id)).map(|(id, _)| (*id, model[id].clone())).collect();
            assert_answers(&reader, &wtxn, &visible);
        }
    }
    wtxn.commit().unwrap();
}
