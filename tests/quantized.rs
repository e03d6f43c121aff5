//! The distances over packed bits: what is stored, what is read back, the
//! estimates against an independent brute force, recall of the trees,
//! changing distance in place, and bits beside `f32`s in one database.

mod common;

use std::num::NonZeroUsize;

use common::{MIB, TestEnv, build_index, data};
use spinney::distances::{
    BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, Cosine, Euclidean, Hamming,
};
use spinney::format::{Key, NodeMode};
use spinney::{Distance, Error, Reader, Writer};

fn signs(vector: &[f32]) -> Vec<f64> {
    vector.iter().map(|&v| if v > 0.0 { 1.0 } else { -1.0 }).collect()
}

/// The distance each quantized distance estimates, written out from its
/// documentation in `f64`, independently of the library.
fn reference(name: &str, query: &[f32], item: &[f32]) -> f64 {
    let q: Vec<f64> = query.iter().map(|&v| f64::from(v)).collect();
    let x: Vec<f64> = item.iter().map(|&v| f64::from(v)).collect();
    let b = signs(item);
    let norm = |v: &[f64]| v.iter().map(|v| v * v).sum::<f64>().sqrt();
    let l1: f64 = x.iter().map(|v| v.abs()).sum();
    let qb: f64 = q.iter().zip(&b).map(|(q, b)| q * b).sum();
    let dot = if l1 > 0.0 { qb * norm(&x).powi(2) / l1 } else { 0.0 };
    match name {
        "binary-quantized-euclidean" => (norm(&q).powi(2) - 2.0 * dot + norm(&x).powi(2)).max(0.0).sqrt(),
        "binary-quantized-cosine" => {
            let norms = norm(&q) * norm(&x);
            if norms > 0.0 { (1.0 - dot / norms).clamp(0.0, 2.0) } else { 1.0 }
        }
        "binary-quantized-manhattan" => {
            let mean = l1 / x.len() as f64;
            q.iter().zip(&b).map(|(q, b)| (q - mean * b).abs()).sum()
        }
        "hamming" => signs(query).iter().zip(&b).filter(|(a, b)| a != b).count() as f64,
        other => panic!("no reference for {other}"),
    }
}

/// The exact `k` nearest by the reference estimate.
fn brute_force(name: &str, dataset: &data::Dataset, query: &[f32], k: usize) -> Vec<(u32, f64)> {
    let mut scored: Vec<(u32, f64)> =
        (0..dataset.base.len()).map(|i| (i as u32, reference(name, query, dataset.base.get(i)))).collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// Builds `dataset` and checks, per query: an exhaustive search returns
/// the reference's nearest with the reference's distances, and the trees at
/// the default `search_k` and at 4× it find at least `min_recall` of them.
///
/// The thresholds sit a few points under what these seeds measure (printed).
fn assert_matches_brute_force<D: Distance>(dataset: &data::Dataset, min_recall: [f64; 2]) {
    let test = TestEnv::new(256 * MIB);
    let db = test.database::<D>();
    build_index::<D>(&test, db, 0, &dataset.base, None, common::seed(3));
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<D>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    let everything = NonZeroUsize::new(dataset.base.len()).unwrap();
    let four_times = NonZeroUsize::new(40 * reader.n_trees() * D::DEFAULT_OVERSAMPLING).unwrap();
    let (mut hits, mut total) = ([0; 2], 0);
    for q in 0..dataset.queries.len() {
        let query = dataset.queries.get(q);
        let truth = brute_force(D::NAME, dataset, query, 10);
        let exact = reader.nns(10).search_k(everything).by_vector(&rtxn, query).unwrap();
        assert_eq!(exact.len(), 10);
        for ((_, found), (_, expected)) in exact.iter().zip(&truth) {
            let tolerance = 1e-3 * expected.abs().max(1.0);
            assert!((f64::from(*found) - expected).abs() <= tolerance, "{}: {found} vs {expected}", D::NAME);
        }
        // Ties and f32 rounding may swap the last ids, never the distances.
        let truth_ids: Vec<u32> = truth.iter().map(|(id, _)| *id).collect();
        let same = exact.iter().filter(|(id, _)| truth_ids.contains(id)).count();
        assert!(same >= 9, "{}: the exhaustive search shares only {same} of 10 with brute force", D::NAME);

        let by_default = reader.nns(10).by_vector(&rtxn, query).unwrap();
        let by_four = reader.nns(10).search_k(four_times).by_vector(&rtxn, query).unwrap();
        for (hits, found) in hits.iter_mut().zip([by_default, by_four]) {
            *hits += found.iter().filter(|(id, _)| truth_ids.contains(id)).count();
        }
        total += 10;
    }
    let recall = hits.map(|hits| hits as f64 / total as f64);
    println!("{} recall@10 against the bits: {:.3} at default search_k, {:.3} at 4x", D::NAME, recall[0], recall[1]);
    for (recall, min) in recall.iter().zip(min_recall) {
        assert!(*recall >= min, "{} recall@10 {recall:.3} < {min}", D::NAME);
    }
}

fn dataset() -> data::Dataset {
    data::low_rank(4_000, 30, 96, common::seed(11))
}

#[test]
fn binary_quantized_euclidean_matches_brute_force() {
    assert_matches_brute_force::<BinaryQuantizedEuclidean>(&dataset(), [0.52, 0.87]);
}

#[test]
fn binary_quantized_cosine_matches_brute_force() {
    assert_matches_brute_force::<BinaryQuantizedCosine>(&dataset(), [0.52, 0.87]);
}

#[test]
fn binary_quantized_manhattan_matches_brute_force() {
    assert_matches_brute_force::<BinaryQuantizedManhattan>(&dataset(), [0.52, 0.87]);
}

#[test]
fn hamming_matches_brute_force() {
    assert_matches_brute_force::<Hamming>(&dataset(), [0.52, 0.87]);
}

/// Item values that exercise zeros and negative zeros, which are "not
/// greater than zero".
fn pattern(dimensions: usize, item: u32) -> Vec<f32> {
    (0..dimensions).map(|i| [1.5, -0.5, 0.0, -0.0, 2.0, -3.0, 0.25][(i + item as usize) % 7]).collect()
}

fn stored_bits<D: Distance>(dimensions: usize) {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<D>();
    let writer = Writer::<D>::new(db, 3, dimensions);
    let mut wtxn = test.env.write_txn().unwrap();
    for item in 0..5 {
        writer.add_item(&mut wtxn, item, &pattern(dimensions, item)).unwrap();
    }
    for item in 0..5 {
        let expected: Vec<f32> = pattern(dimensions, item)
            .iter()
            .map(|&v| match (v > 0.0, D::NAME) {
                (true, _) => 1.0,
                (false, "hamming") => 0.0,
                (false, _) => -1.0,
            })
            .collect();
        assert_eq!(writer.item_vector(&wtxn, item).unwrap().unwrap(), expected, "{} at {dimensions}", D::NAME);
    }
    wtxn.commit().unwrap();

    // The stored record of item 1, in slot 1 after the chunk's count and
    // slot 0: its id, its header, then whole little-endian words whose
    // padding bits are clear.
    let header = if D::NAME == "hamming" { 0 } else { 8 };
    let words = dimensions.div_ceil(64);
    let record = 4 + header + 8 * words;
    let key = Key { index: 3, mode: NodeMode::Slots, id: 0 };
    let dump = test.dump();
    let (_, value) = dump.iter().find(|(k, _)| k[..] == key.to_bytes()).unwrap();
    assert_eq!(value[..4], 5u32.to_le_bytes(), "{} at {dimensions}", D::NAME);
    assert_eq!(value[4 + record..8 + record], 1u32.to_le_bytes(), "{} at {dimensions}", D::NAME);
    let bits = &value[8 + record + header..4 + 2 * record];
    for (i, &v) in pattern(dimensions, 1).iter().enumerate() {
        assert_eq!(bits[i / 8] >> (i % 8) & 1 == 1, v > 0.0, "bit {i} of {dimensions}");
    }
    for i in dimensions..words * 64 {
        assert_eq!(bits[i / 8] >> (i % 8) & 1, 0, "padding bit {i} of {dimensions}");
    }
}

#[test]
fn bits_are_packed_with_clear_padding_and_read_back_at_their_length() {
    for dimensions in [1, 7, 63, 64, 65, 128, 130] {
        stored_bits::<BinaryQuantizedEuclidean>(dimensions);
        stored_bits::<BinaryQuantizedCosine>(dimensions);
        stored_bits::<BinaryQuantizedManhattan>(dimensions);
        stored_bits::<Hamming>(dimensions);
    }
}

#[test]
fn check_finds_padding_bits_set() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Hamming>();
    let writer = Writer::<Hamming>::new(db, 0, 5);
    let mut wtxn = test.env.write_txn().unwrap();
    writer.add_item(&mut wtxn, 0, &[1.0, 0.0, 1.0, 0.0, 1.0]).unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    let raw = db.remap_types::<spinney::heed::types::Bytes, spinney::heed::types::Bytes>();
    let slots = Key { index: 0, mode: NodeMode::Slots, id: 0 }.to_bytes();
    // The chunk's count, then the item's id and its bits: 0, 2 and 4 are
    // the values; bit 5 is padding.
    let chunk = raw.get(&wtxn, &slots).unwrap().unwrap().to_vec();
    assert_eq!(chunk[..16], [1, 0, 0, 0, 0, 0, 0, 0, 0b10101, 0, 0, 0, 0, 0, 0, 0]);
    Reader::<Hamming>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
    let with_bit = |wtxn: &spinney::heed::RwTxn, byte: usize, bits: u8| {
        let mut damaged = raw.get(wtxn, &slots).unwrap().unwrap().to_vec();
        damaged[byte] = bits;
        damaged
    };
    let damaged = with_bit(&wtxn, 8, 0b110101);
    raw.put(&mut wtxn, &slots, &damaged).unwrap();
    let err = Reader::<Hamming>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap_err();
    assert!(matches!(err, Error::Corrupted { ref reason, .. } if reason.contains("padding")), "{err}");
    // The same in a vector written since the build, in the next slot.
    raw.put(&mut wtxn, &slots, &chunk).unwrap();
    writer.add_item(&mut wtxn, 0, &[1.0, 1.0, 1.0, 0.0, 1.0]).unwrap();
    let item = Key { index: 0, mode: NodeMode::Item, id: 0 }.to_bytes();
    assert_eq!(raw.get(&wtxn, &item).unwrap().unwrap(), [1, 1, 0, 0, 0]);
    assert_eq!(raw.get(&wtxn, &slots).unwrap().unwrap()[16..24], [0, 0, 0, 0, 0b10111, 0, 0, 0]);
    Reader::<Hamming>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap();
    let damaged = with_bit(&wtxn, 20, 0b110111);
    raw.put(&mut wtxn, &slots, &damaged).unwrap();
    let err = Reader::<Hamming>::open(&wtxn, 0, db).unwrap().check(&wtxn).unwrap_err();
    assert!(matches!(err, Error::Corrupted { ref reason, .. } if reason.contains("padding")), "{err}");
    // A chunk of the wrong length is refused where it is read.
    raw.put(&mut wtxn, &slots, &chunk[..chunk.len() - 1]).unwrap();
    assert!(matches!(Reader::<Hamming>::open(&wtxn, 0, db), Err(Error::Corrupted { .. })));
    assert!(matches!(writer.item_vector(&wtxn, 0), Err(Error::Corrupted { .. })));
}

#[test]
fn one_and_sixty_five_dimension_indexes_answer_queries() {
    for dimensions in [1, 65] {
        let set = data::low_rank(600, 5, dimensions, 4);
        let test = TestEnv::new(64 * MIB);
        let db = test.database::<Hamming>();
        build_index::<Hamming>(&test, db, 0, &set.base, Some(3), 5);
        let rtxn = test.env.read_txn().unwrap();
        let reader = Reader::<Hamming>::open(&rtxn, 0, db).unwrap();
        reader.check(&rtxn).unwrap();
        let everything = NonZeroUsize::new(set.base.len()).unwrap();
        for q in 0..set.queries.len() {
            let query = set.queries.get(q);
            let found = reader.nns(5).search_k(everything).by_vector(&rtxn, query).unwrap();
            let truth = brute_force("hamming", &set, query, 5);
            let found: Vec<f64> = found.iter().map(|(_, d)| f64::from(*d)).collect();
            let truth: Vec<f64> = truth.iter().map(|(_, d)| *d).collect();
            assert_eq!(found, truth, "at {dimensions} dimensions");
        }
    }
}

#[test]
fn queries_by_item_find_the_item_among_the_nearest() {
    let set = dataset();
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Hamming>();
    build_index::<Hamming>(&test, db, 0, &set.base, None, 6);
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Hamming>::open(&rtxn, 0, db).unwrap();
    for item in [0, 17, 3_999] {
        let found = reader.nns(3).by_item(&rtxn, item).unwrap().unwrap();
        // Its own bits are at Hamming distance zero.
        assert_eq!(found[0].1, 0.0);
        assert!(found.iter().any(|(id, _)| *id == item));
    }
}

#[test]
fn bad_vectors_are_refused_by_quantized_writers_and_readers() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<BinaryQuantizedCosine>();
    let writer = Writer::<BinaryQuantizedCosine>::new(db, 0, 4);
    let mut wtxn = test.env.write_txn().unwrap();
    let err = writer.add_item(&mut wtxn, 0, &[1.0, f32::NAN, 0.0, 1.0]).unwrap_err();
    assert!(matches!(err, Error::NonFiniteValue { position: 1, .. }), "{err}");
    let err = writer.add_item(&mut wtxn, 0, &[1.0; 5]).unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: 4, received: 5 }), "{err}");
    writer.add_item(&mut wtxn, 0, &[1.0, -1.0, 0.5, 0.0]).unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<BinaryQuantizedCosine>::open(&rtxn, 0, db).unwrap();
    let err = reader.nns(1).by_vector(&rtxn, &[f32::INFINITY, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(matches!(err, Error::NonFiniteValue { position: 0, .. }), "{err}");
    assert!(matches!(reader.nns(1).by_vector(&rtxn, &[1.0]).unwrap_err(), Error::DimensionMismatch { .. }));
    let err = Reader::<Cosine>::open(&rtxn, 0, db.remap_data_type()).unwrap_err();
    assert!(matches!(err, Error::DistanceMismatch { .. }), "{err}");
}

#[test]
fn an_f32_index_changes_to_bits_and_back_is_refused() {
    let set = data::low_rank(2_000, 20, 64, common::seed(8));
    let test = TestEnv::new(128 * MIB);
    let db = test.database::<Euclidean>();
    build_index::<Euclidean>(&test, db, 0, &set.base, None, 9);

    // Euclidean -> binary-quantized Euclidean: items are re-encoded, the
    // trees dropped, and readers see an unbuilt index until the next build.
    let mut wtxn = test.env.write_txn().unwrap();
    let writer = Writer::<Euclidean>::new(db, 0, 64);
    let writer = writer.prepare_changing_distance::<BinaryQuantizedEuclidean>(&mut wtxn).unwrap();
    assert!(writer.need_build(&wtxn).unwrap());
    let bits_db = db.remap_data_type();
    assert!(matches!(Reader::<BinaryQuantizedEuclidean>::open(&wtxn, 0, bits_db), Err(Error::NotBuilt { .. })));
    assert!(matches!(
        writer.item_vector(&wtxn, 5).unwrap(),
        Some(values) if values == set.base.get(5).iter().map(|&v| if v > 0.0 { 1.0 } else { -1.0 }).collect::<Vec<_>>()
    ));
    writer.builder(&mut common::rng(10)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();

    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<BinaryQuantizedEuclidean>::open(&rtxn, 0, bits_db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), 2_000);
    let everything = NonZeroUsize::new(2_000).unwrap();
    let query = set.queries.get(0);
    let found = reader.nns(10).search_k(everything).by_vector(&rtxn, query).unwrap();
    let truth = brute_force("binary-quantized-euclidean", &set, query, 10);
    assert!((f64::from(found[0].1) - truth[0].1).abs() <= 1e-3 * truth[0].1.max(1.0));
    assert!(matches!(Reader::<Euclidean>::open(&rtxn, 0, db), Err(Error::DistanceMismatch { .. })));
    drop(rtxn);

    // Back to f32 is refused, and the index stays as it was.
    let mut wtxn = test.env.write_txn().unwrap();
    let writer = Writer::<BinaryQuantizedEuclidean>::new(bits_db, 0, 64);
    let err = writer.prepare_changing_distance::<Euclidean>(&mut wtxn).unwrap_err();
    assert!(
        matches!(err, Error::LossyDistanceChange { index: 0, from: "binary-quantized-euclidean", to: "euclidean" }),
        "{err}"
    );
    // So is another quantized distance, whose headers the bits cannot give.
    let writer = Writer::<BinaryQuantizedEuclidean>::new(bits_db, 0, 64);
    let err = writer.prepare_changing_distance::<Hamming>(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::LossyDistanceChange { .. }), "{err}");
    wtxn.commit().unwrap();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<BinaryQuantizedEuclidean>::open(&rtxn, 0, bits_db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.nns(10).search_k(everything).by_vector(&rtxn, query).unwrap(), found);
}

#[test]
fn an_f32_index_changes_to_another_f32_distance_with_the_same_vectors() {
    let set = data::clustered(500, 5, 16, 3);
    let test = TestEnv::new(64 * MIB);
    let db = test.database::<Euclidean>();
    build_index::<Euclidean>(&test, db, 0, &set.base, None, 1);
    let mut wtxn = test.env.write_txn().unwrap();
    let writer = Writer::<Euclidean>::new(db, 0, 16).prepare_changing_distance::<Cosine>(&mut wtxn).unwrap();
    for i in [0, 250, 499] {
        assert_eq!(writer.item_vector(&wtxn, i).unwrap().unwrap(), set.base.get(i as usize));
    }
    writer.builder(&mut common::rng(2)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Cosine>::open(&rtxn, 0, db.remap_data_type()).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), 500);

    // A writer of the wrong distance cannot change it.
    let mut wtxn = test.env.write_txn().unwrap();
    let err = Writer::<Euclidean>::new(db, 0, 16).prepare_changing_distance::<Hamming>(&mut wtxn).unwrap_err();
    assert!(matches!(err, Error::DistanceMismatch { .. }), "{err}");
}

#[test]
fn quantized_and_f32_indexes_share_one_database() {
    let set = data::low_rank(1_500, 10, 48, common::seed(12));
    let test = TestEnv::new(128 * MIB);
    let euclidean = test.database::<Euclidean>();
    build_index::<Euclidean>(&test, euclidean, 0, &set.base, None, 1);
    build_index::<Hamming>(&test, euclidean.remap_data_type(), 1, &set.base, None, 2);
    build_index::<BinaryQuantizedCosine>(&test, euclidean.remap_data_type(), 2, &set.base, None, 3);
    build_index::<Euclidean>(&test, euclidean, 3, &set.base, None, 4);

    let rtxn = test.env.read_txn().unwrap();
    let everything = NonZeroUsize::new(1_500).unwrap();
    let query = set.queries.get(0);
    let f32_answers: Vec<_> = [0, 3]
        .iter()
        .map(|&index| {
            let reader = Reader::<Euclidean>::open(&rtxn, index, euclidean).unwrap();
            reader.check(&rtxn).unwrap();
            reader.nns(10).search_k(everything).by_vector(&rtxn, query).unwrap()
        })
        .collect();
    assert_eq!(f32_answers[0], f32_answers[1]);
    let exact = data::brute_force(&set, "euclidean", 10);
    assert_eq!(f32_answers[0].iter().map(|(id, _)| *id).collect::<Vec<_>>(), exact[0]);

    let hamming = Reader::<Hamming>::open(&rtxn, 1, euclidean.remap_data_type()).unwrap();
    hamming.check(&rtxn).unwrap();
    let found = hamming.nns(10).search_k(everything).by_vector(&rtxn, query).unwrap();
    let truth = brute_force("hamming", &set, query, 10);
    assert_eq!(
        found.iter().map(|(_, d)| f64::from(*d)).collect::<Vec<_>>(),
        truth.iter().map(|(_, d)| *d).collect::<Vec<_>>()
    );

    let cosine = Reader::<BinaryQuantizedCosine>::open(&rtxn, 2, euclidean.remap_data_type()).unwrap();
    cosine.check(&rtxn).unwrap();
    assert_eq!(cosine.n_items(), 1_500);
    assert!(matches!(
        Reader::<Hamming>::open(&rtxn, 2, euclidean.remap_data_type()),
        Err(Error::DistanceMismatch { .. })
    ));
}

#[test]
fn incremental_builds_of_bits_match_their_items() {
    let set = data::low_rank(3_000, 10, 80, common::seed(13));
    let test = TestEnv::new(128 * MIB);
    let db = test.database::<BinaryQuantizedManhattan>();
    let writer = Writer::<BinaryQuantizedManhattan>::new(db, 0, 80);
    let mut wtxn = test.env.write_txn().unwrap();
    for i in 0..2_000 {
        writer.add_item(&mut wtxn, i as u32, set.base.get(i)).unwrap();
    }
    writer.builder(&mut common::rng(1)).split_after(40).build(&mut wtxn).unwrap();
    for i in 2_000..3_000 {
        writer.add_item(&mut wtxn, i as u32, set.base.get(i)).unwrap();
    }
    for i in (0..2_000).step_by(3) {
        writer.del_item(&mut wtxn, i).unwrap();
    }
    writer.builder(&mut common::rng(2)).split_after(40).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<BinaryQuantizedManhattan>::open(&rtxn, 0, db).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), 3_000 - 667);
    let everything = NonZeroUsize::new(3_000).unwrap();
    let found = reader.nns(10).search_k(everything).by_vector(&rtxn, set.queries.get(0)).unwrap();
    assert!(found.iter().all(|(id, _)| *id >= 2_000 || id % 3 != 0));
}
