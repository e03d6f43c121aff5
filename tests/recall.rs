//! Recall against exact brute force, for every distance, on clustered data.

mod common;

use std::num::NonZeroUsize;

use common::{MIB, TestEnv, build_index, data};
use spinney::distances::{Cosine, DotProduct, Euclidean, Manhattan};
use spinney::{Distance, Reader};

/// Builds `dataset` with `n_trees` (or the default) and returns recall@10
/// at a small `search_k` and at 4x it: `10 × n_trees` distinct candidates
/// through the trees' planes without codes; with codes, the codes of 2% of
/// the items from the trees' partitions.
///
/// The thresholds below sit a few points under what these seeds measure
/// (printed by each test), so a regression in splits or search fails them.
fn measure<D: Distance>(dataset: &data::Dataset, n_trees: Option<usize>) -> (f64, f64) {
    let truth = data::brute_force(dataset, D::NAME, 10);
    let test = TestEnv::new(512 * MIB);
    let db = test.database::<D>();
    build_index::<D>(&test, db, 0, &dataset.base, n_trees, common::seed(7));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<D>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    let small = match D::QUANTIZED || dataset.base.dimensions < spinney::MIN_CODE_DIMENSIONS {
        true => 10 * reader.n_trees(),
        false => dataset.base.len() / 50,
    };
    let mut recalls = [0.0; 2];
    for (recall, factor) in recalls.iter_mut().zip([1, 4]) {
        let search_k = NonZeroUsize::new(small * factor).unwrap();
        let found: Vec<Vec<u32>> = (0..dataset.queries.len())
            .map(|q| {
                let answer = reader.nns(10).search_k(search_k).by_vector(&rtxn, dataset.queries.get(q)).unwrap();
                assert!(answer.windows(2).all(|w| D::NAME == "dot-product" && w[0].1 >= w[1].1 || w[0].1 <= w[1].1));
                answer.into_iter().map(|(id, _)| id).collect()
            })
            .collect();
        *recall = data::recall_at(10, &truth, &found);
    }
    println!("{} {}: recall@10 {:.3} at search_k {small}, {:.3} at 4x", dataset.name, D::NAME, recalls[0], recalls[1]);
    (recalls[0], recalls[1])
}

fn assert_recall<D: Distance>(dataset: &data::Dataset, n_trees: Option<usize>, default_k: f64, four_k: f64) {
    let (at_default, at_four) = measure::<D>(dataset, n_trees);
    assert!(at_default >= default_k, "{} recall@10 {at_default:.3} < {default_k} at default search_k", D::NAME);
    assert!(at_four >= four_k, "{} recall@10 {at_four:.3} < {four_k} at 4x search_k", D::NAME);
}

fn small() -> data::Dataset {
    data::clustered(10_000, 100, 64, common::seed(1))
}

/// The default would grow 26 trees and gather most of each cluster; fewer
/// trees make the wide sets test the splits, not the candidate count. With
/// 6 trees the recall varies with the build seed: over 16 seeds Euclidean
/// measured 0.63 to 0.75 at default search_k (mean 0.69), cosine 0.45 to
/// 0.60 (mean 0.52); the thresholds sit under what the seed here gives.
/// The top two levels of these trees are split in shared passes. These
/// sets have codes, so the trees make six runs of clusters instead: 2% of
/// the codes, spread over six copies of each, measured 0.47 to 0.53 with
/// this seed.
const WIDE_TREES: Option<usize> = Some(6);

fn wide() -> data::Dataset {
    data::clustered(5_000, 50, 768, common::seed(2))
}

#[test]
fn euclidean_10k_x_64() {
    assert_recall::<Euclidean>(&small(), None, 0.38, 0.93);
}

#[test]
fn cosine_10k_x_64() {
    assert_recall::<Cosine>(&small(), None, 0.32, 0.91);
}

#[test]
fn manhattan_10k_x_64() {
    assert_recall::<Manhattan>(&small(), None, 0.35, 0.92);
}

#[test]
fn dot_product_10k_x_64() {
    assert_recall::<DotProduct>(&small(), None, 0.73, 0.92);
}

#[test]
fn euclidean_5k_x_768() {
    assert_recall::<Euclidean>(&wide(), WIDE_TREES, 0.35, 0.82);
}

#[test]
fn cosine_5k_x_768() {
    assert_recall::<Cosine>(&wide(), WIDE_TREES, 0.45, 0.87);
}

#[test]
fn manhattan_5k_x_768() {
    assert_recall::<Manhattan>(&wide(), WIDE_TREES, 0.35, 0.83);
}

#[test]
fn dot_product_5k_x_768() {
    assert_recall::<DotProduct>(&wide(), WIDE_TREES, 0.50, 0.86);
}

/// 100,000 embedding-like vectors of 384 dimensions: the default query
/// (15,000 codes of the partitions nearest the query) and a query scoring
/// 5% of the codes both find the ten nearest with recall@10 at least 0.95
/// (0.997 and 0.997 measured with these seeds).
#[test]
fn queries_at_100k_items_find_the_neighbours() {
    let dataset = data::embeddings(100_000, 100, 384, common::seed(8));
    let truth = data::brute_force(&dataset, "cosine", 10);
    let test = TestEnv::new(2048 * MIB);
    let db = test.database::<Cosine>();
    build_index::<Cosine>(&test, db, 0, &dataset.base, None, common::seed(9));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Cosine>::open(&rtxn, 0, db).unwrap();
    let mut searcher = spinney::Searcher::new();
    let n = dataset.base.len();
    for search_k in [None, NonZeroUsize::new(n / 20)] {
        let mut codes = 0;
        let found: Vec<Vec<u32>> = (0..dataset.queries.len())
            .map(|q| {
                let mut query = reader.nns(10);
                if let Some(search_k) = search_k {
                    query.search_k(search_k);
                }
                let answer = query.by_vector_with(&rtxn, dataset.queries.get(q), &mut searcher).unwrap();
                let stats = searcher.stats();
                assert!(search_k.is_none() || stats.nodes > 0, "the query scanned: {stats:?}");
                codes += stats.codes;
                answer.into_iter().map(|(id, _)| id).collect()
            })
            .collect();
        let recall = data::recall_at(10, &truth, &found);
        let share = codes as f64 / (dataset.queries.len() * n) as f64;
        println!("100k x 384, search_k {search_k:?}: recall@10 {recall:.4}, {:.1}% of the codes", 100.0 * share);
        assert!(recall >= 0.95, "recall@10 {recall:.4} at search_k {search_k:?}");
        assert!(search_k.is_none() || share < 0.1, "{:.1}% of the codes", 100.0 * share);
    }
}

/// From 7,941 `f32` dimensions a slot chunk holds 16 slots or fewer, fewer
/// than a block of codes: a scan that stepped by 32 slots estimated lanes
/// past the chunk as slots of the next one (estimate 0, error 0), which set
/// the shortlist's bound to 0 and answered recall@10 0.535 on this set.
#[test]
fn a_scan_of_chunks_smaller_than_a_block_finds_the_neighbours() {
    let dataset = data::clustered(1_000, 20, 8_192, common::seed(10));
    let truth = data::brute_force(&dataset, "euclidean", 10);
    let test = TestEnv::new(256 * MIB);
    let db = test.database::<Euclidean>();
    build_index::<Euclidean>(&test, db, 0, &dataset.base, Some(2), common::seed(11));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    let found: Vec<Vec<u32>> = (0..dataset.queries.len())
        .map(|q| reader.nns(10).by_vector(&rtxn, dataset.queries.get(q)).unwrap())
        .map(|answer| answer.into_iter().map(|(id, _)| id).collect())
        .collect();
    let recall = data::recall_at(10, &truth, &found);
    assert!(recall >= 0.99, "recall@10 {recall:.3} scanning chunks of fewer than 32 slots");
}

/// With `search_k` at least the number of items, every item is ranked, so
/// the answer is the exact top-k.
fn unbounded_is_exact<D: Distance>() {
    let dataset = data::clustered(1_500, 20, 24, common::seed(3));
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<D>();
    build_index::<D>(&test, db, 0, &dataset.base, Some(5), common::seed(4));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<D>::open(&rtxn, 0, db).unwrap();
    let all = NonZeroUsize::new(dataset.base.len()).unwrap();
    for q in 0..dataset.queries.len() {
        let query = dataset.queries.get(q);
        let found = reader.nns(10).search_k(all).rerank(all).by_vector(&rtxn, query).unwrap();
        let mut exact: Vec<(f32, u32)> = (0..dataset.base.len())
            .map(|i| (data::exact_distance(D::NAME, query, dataset.base.get(i)), i as u32))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(found.len(), 10);
        for (rank, ((id, distance), (exact_distance, exact_id))) in found.iter().zip(&exact).enumerate() {
            // Ids agree unless two distances tie within float noise.
            let tolerance = 1e-4 * exact_distance.abs().max(1.0);
            let stored = data::exact_distance(D::NAME, query, dataset.base.get(*id as usize));
            assert!(
                (stored - exact_distance).abs() <= tolerance,
                "query {q} rank {rank}: {id} at {stored}, exact {exact_id} at {exact_distance} ({distance})"
            );
        }
    }
}

#[test]
fn unbounded_search_k_is_exact_euclidean() {
    unbounded_is_exact::<Euclidean>();
}

#[test]
fn unbounded_search_k_is_exact_cosine() {
    unbounded_is_exact::<Cosine>();
}

#[test]
fn unbounded_search_k_is_exact_manhattan() {
    unbounded_is_exact::<Manhattan>();
}

#[test]
fn unbounded_search_k_is_exact_dot_product() {
    unbounded_is_exact::<DotProduct>();
}

/// Half-precision normals move a plane by up to 2⁻¹¹ of `|normal · x|`;
/// the offset is computed from the rounded normal, so planes still cut
/// data that sits far from the origin relative to its spread.
#[test]
fn data_far_from_the_origin_is_split_by_planes() {
    let mut set = data::clustered(3_000, 30, 8, common::seed(5));
    for values in [&mut set.base.values, &mut set.queries.values] {
        values.iter_mut().for_each(|v| *v += 10_000.0);
    }
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    build_index::<Euclidean>(&test, db, 0, &set.base, Some(10), common::seed(6));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    let stats = reader.stats(&rtxn).unwrap();
    let (splits, random): (usize, usize) =
        stats.trees.iter().fold((0, 0), |(s, r), tree| (s + tree.split_nodes, r + tree.random_splits));
    assert!(random * 20 <= splits, "{random} of {splits} splits are random");
    let truth = data::brute_force(&set, "euclidean", 10);
    let search_k = NonZeroUsize::new(300).unwrap();
    let found: Vec<Vec<u32>> = (0..set.queries.len())
        .map(|q| reader.nns(10).search_k(search_k).by_vector(&rtxn, set.queries.get(q)).unwrap())
        .map(|answer| answer.into_iter().map(|(id, _)| id).collect())
        .collect();
    let recall = data::recall_at(10, &truth, &found);
    println!("far from the origin: {random} random splits of {splits}, recall@10 {recall:.3} at search_k 300");
    assert!(recall >= 0.8, "recall@10 {recall:.3}");
}
