//! Indexes written by the real arroy 0.9 crate, migrated with
//! `Writer::import_arroy`: every vector kept, answers exact, arroy's
//! entries gone, and anything else refused.

use arroy::distances as arroy_distances;
use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::{BinaryQuantizedCosine, Cosine, DotProduct, Euclidean, Hamming, Manhattan};
use spinney::heed::types::Bytes;
use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions, RwTxn, WithTls};
use spinney::{Distance, Reader, Writer};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Env<WithTls> {
    // SAFETY: each test opens its own directory, once.
    unsafe { EnvOpenOptions::new().map_size(256 << 20).max_dbs(4).open(dir.path()).unwrap() }
}

/// The database named `name` (the unnamed one for `None`), as raw bytes.
fn database(env: &Env<WithTls>, name: Option<&str>) -> spinney::heed::Database<'static, Bytes, Bytes> {
    env.create_databases_and_commit(env.write_txn().unwrap(), |opener, wtxn| {
        opener.create_database(wtxn, name).map(CommitOrAbort::<_, ()>::Commit)
    })
    .unwrap()
    .unwrap_commit()
}

/// `n` vectors of `dimensions` values in [-1, 1), the same for the same seed.
fn vectors(n: usize, dimensions: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    (0..n).map(|_| (0..dimensions).map(|_| next()).collect()).collect()
}

/// Writes `vectors` (ids 10, 13, 16, ...) to arroy index `index`, and
/// builds it unless `build` is false.
fn write_arroy<D: arroy::Distance>(
    env: &Env<WithTls>,
    db: spinney::heed::Database<'static, Bytes, Bytes>,
    index: u16,
    vectors: &[Vec<f32>],
    build: bool,
) {
    let db: arroy::Database<D> = db.remap_types();
    let mut wtxn = env.write_txn().unwrap();
    let writer = arroy::Writer::<D>::new(db, index, vectors[0].len());
    for (i, vector) in vectors.iter().enumerate() {
        writer.add_item(&mut wtxn, id(i), vector).unwrap();
    }
    if build {
        writer.builder(&mut StdRng::seed_from_u64(7)).build(&mut wtxn).unwrap();
    }
    wtxn.commit().unwrap();
}

/// Adds `vectors` to arroy index `index` in `wtxn`, without building.
fn write_arroy_in(
    wtxn: &mut RwTxn,
    db: spinney::heed::Database<'static, Bytes, Bytes>,
    index: u16,
    vectors: &[Vec<f32>],
) {
    let db: arroy::Database<arroy_distances::Euclidean> = db.remap_types();
    let writer = arroy::Writer::new(db, index, vectors[0].len());
    for (i, vector) in vectors.iter().enumerate() {
        writer.add_item(wtxn, id(i), vector).unwrap();
    }
}

fn id(i: usize) -> u32 {
    10 + 3 * i as u32
}

/// Migrates arroy index `from` of `arroy_db` into spinney index `to` of
/// `db` and builds it, in `wtxn`.
fn migrate<D: Distance>(
    wtxn: &mut RwTxn,
    db: spinney::heed::Database<'static, Bytes, Bytes>,
    to: u16,
    arroy_db: spinney::heed::Database<'static, Bytes, Bytes>,
    from: u16,
    dimensions: usize,
) -> u64 {
    let writer = Writer::<D>::new(db.remap_types(), to, dimensions);
    let moved = writer.import_arroy(wtxn, arroy_db, from).unwrap();
    writer.builder(&mut StdRng::seed_from_u64(3)).build(wtxn).unwrap();
    moved
}

/// Checks that spinney index `index` holds exactly `vectors` (through
/// `expect`, which maps an original vector to what is stored), passes its
/// check, and answers queries with the brute-force nearest of `distance`.
fn verify<D: Distance>(
    env: &Env<WithTls>,
    db: spinney::heed::Database<'static, Bytes, Bytes>,
    index: u16,
    vectors: &[Vec<f32>],
    expect: impl Fn(&[f32]) -> Vec<f32>,
    distance: Option<Metric>,
) {
    let rtxn = env.read_txn().unwrap();
    let reader = Reader::<D>::open(&rtxn, index, db.remap_types()).unwrap();
    reader.check(&rtxn).unwrap();
    assert_eq!(reader.n_items(), vectors.len() as u64);
    for (i, vector) in vectors.iter().enumerate() {
        assert_eq!(reader.item_vector(&rtxn, id(i)).unwrap().unwrap(), expect(vector), "item {}", id(i));
    }
    let Some(distance) = distance else { return };
    for query in vectors.iter().step_by(37) {
        let mut exact: Vec<(f32, u32)> = vectors.iter().enumerate().map(|(i, v)| (distance(query, v), id(i))).collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let found: Vec<u32> = reader.nns(10).by_vector(&rtxn, query).unwrap().into_iter().map(|(id, _)| id).collect();
        let expected: Vec<u32> = exact.iter().take(10).map(|(_, id)| *id).collect();
        assert_eq!(found, expected);
    }
}

/// An exact distance, to rank by brute force.
type Metric = fn(&[f32], &[f32]) -> f32;

fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (norm(a) * norm(b))
}

/// Every key of the database is spinney's: seven bytes.
fn only_spinney_keys(env: &Env<WithTls>, db: spinney::heed::Database<'static, Bytes, Bytes>) {
    let rtxn = env.read_txn().unwrap();
    for entry in db.iter(&rtxn).unwrap() {
        let (key, _) = entry.unwrap();
        assert_eq!(key.len(), 7, "an arroy key is left: {key:?}");
    }
}

#[test]
fn an_arroy_database_migrates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(&dir);
    let db = database(&env, None);
    let euclid = vectors(600, 16, 1);
    let cos = vectors(400, 32, 2);
    let dot = vectors(300, 8, 3);
    let bits = vectors(200, 70, 4);
    let unbuilt = vectors(50, 4, 5);
    write_arroy::<arroy_distances::Euclidean>(&env, db, 0, &euclid, true);
    write_arroy::<arroy_distances::Cosine>(&env, db, 1, &cos, true);
    write_arroy::<arroy_distances::DotProduct>(&env, db, 2, &dot, true);
    write_arroy::<arroy_distances::BinaryQuantizedCosine>(&env, db, 3, &bits, true);
    write_arroy::<arroy_distances::Manhattan>(&env, db, 4, &unbuilt, false);

    // Each index becomes spinney's, in place, in one transaction.
    let mut wtxn = env.write_txn().unwrap();
    assert_eq!(migrate::<Euclidean>(&mut wtxn, db, 0, db, 0, 16), 600);
    assert_eq!(migrate::<Cosine>(&mut wtxn, db, 1, db, 1, 32), 400);
    assert_eq!(migrate::<DotProduct>(&mut wtxn, db, 2, db, 2, 8), 300);
    assert_eq!(migrate::<BinaryQuantizedCosine>(&mut wtxn, db, 3, db, 3, 70), 200);
    assert_eq!(migrate::<Manhattan>(&mut wtxn, db, 4, db, 4, 4), 50);
    wtxn.commit().unwrap();

    only_spinney_keys(&env, db);
    let same = |v: &[f32]| v.to_vec();
    verify::<Euclidean>(&env, db, 0, &euclid, same, Some(euclidean));
    verify::<Cosine>(&env, db, 1, &cos, same, Some(cosine));
    verify::<DotProduct>(&env, db, 2, &dot, same, None);
    let signs = |v: &[f32]| v.iter().map(|x| if x.is_sign_positive() { 1.0 } else { -1.0 }).collect();
    verify::<BinaryQuantizedCosine>(&env, db, 3, &bits, signs, None);
    verify::<Manhattan>(&env, db, 4, &unbuilt, same, None);

    let rtxn = env.read_txn().unwrap();
    let listed: Vec<_> = spinney::indexes(&rtxn, db.remap_types::<_, spinney::format::Entries<Euclidean>>())
        .unwrap()
        .into_iter()
        .map(|info| (info.index, info.distance.unwrap(), info.n_items, info.built))
        .collect();
    let names = ["euclidean", "cosine", "dot-product", "binary-quantized-cosine", "manhattan"];
    let expected: Vec<_> = [600, 400, 300, 200, 50]
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(index, (n, name))| (index as u16, name.to_string(), n, true))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn an_arroy_index_moves_to_another_database_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(&dir);
    let arroy_db = database(&env, Some("arroy"));
    let spinney_db = database(&env, Some("spinney"));
    let first = vectors(300, 12, 6);
    let second = vectors(100, 12, 7);
    write_arroy::<arroy_distances::Euclidean>(&env, arroy_db, 0, &first, true);
    write_arroy::<arroy_distances::Euclidean>(&env, arroy_db, 1, &second, true);

    let mut wtxn = env.write_txn().unwrap();
    assert_eq!(migrate::<Euclidean>(&mut wtxn, spinney_db, 9, arroy_db, 0, 12), 300);
    wtxn.commit().unwrap();
    verify::<Euclidean>(&env, spinney_db, 9, &first, |v| v.to_vec(), Some(euclidean));

    // arroy keeps its other index, and answers from it as before.
    let rtxn = env.read_txn().unwrap();
    let arroy_db: arroy::Database<arroy_distances::Euclidean> = arroy_db.remap_types();
    let reader = arroy::Reader::open(&rtxn, 1, arroy_db).unwrap();
    assert_eq!(reader.item_vector(&rtxn, id(5)).unwrap().unwrap(), second[5]);
    assert!(arroy::Reader::open(&rtxn, 0, arroy_db).is_err());
}

#[test]
fn what_is_not_an_arroy_index_of_the_writers_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(&dir);
    let db = database(&env, None);
    let data = vectors(100, 8, 8);
    write_arroy::<arroy_distances::Euclidean>(&env, db, 0, &data, true);
    let mut wtxn = env.write_txn().unwrap();
    let spinney = Writer::<Euclidean>::new(db.remap_types(), 5, 8);
    for (i, vector) in data.iter().enumerate() {
        spinney.add_item(&mut wtxn, id(i), vector).unwrap();
    }
    spinney.builder(&mut StdRng::seed_from_u64(1)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();

    let mut wtxn = env.write_txn().unwrap();
    let refused = |result: spinney::Result<u64>| result.unwrap_err().to_string();
    let into = |index: u16| Writer::<Euclidean>::new(db.remap_types(), index, 8);
    // A spinney index, and an index nobody wrote.
    let message = refused(into(6).import_arroy(&mut wtxn, db, 5));
    assert!(message.starts_with("index 5 of that database is not an arroy 0.9 index"), "{message}");
    assert!(refused(into(6).import_arroy(&mut wtxn, db, 1)).contains("neither arroy's metadata nor arroy's items"));
    // Another distance, other dimensions, a distance arroy does not have.
    let message = refused(Writer::<Cosine>::new(db.remap_types(), 6, 8).import_arroy(&mut wtxn, db, 0));
    assert!(message.contains("built with the euclidean distance, not cosine"), "{message}");
    let message = refused(Writer::<Euclidean>::new(db.remap_types(), 6, 9).import_arroy(&mut wtxn, db, 0));
    assert!(message.contains("built with 8 dimensions but the writer has 9"), "{message}");
    let message = refused(Writer::<Hamming>::new(db.remap_types(), 6, 8).import_arroy(&mut wtxn, db, 0));
    assert!(message.contains("arroy 0.9 has no hamming distance"), "{message}");
    // A spinney index of that number with another distance, or dimensions.
    let message = refused(Writer::<Cosine>::new(db.remap_types(), 5, 8).import_arroy(&mut wtxn, db, 0));
    assert!(message.contains("index 5 was built with the euclidean distance, not cosine"), "{message}");
    // A target index number holding another arroy index.
    write_arroy_in(&mut wtxn, db, 7, &data[..3]);
    let message = refused(into(7).import_arroy(&mut wtxn, db, 0));
    assert!(message.contains("index 7 of this writer's database holds arroy entries of its own"), "{message}");
    // Items whose size says other dimensions, in an index arroy never built.
    write_arroy_in(&mut wtxn, db, 8, &vectors(3, 9, 1));
    let message = refused(into(8).import_arroy(&mut wtxn, db, 8));
    assert!(message.contains("item 10 holds 41 bytes, not the 37 of a 8-dimension euclidean item"), "{message}");
    // The refusals wrote nothing: both indexes are as they were.
    wtxn.commit().unwrap();
    let rtxn = env.read_txn().unwrap();
    let arroy_db: arroy::Database<arroy_distances::Euclidean> = db.remap_types();
    let reader = arroy::Reader::open(&rtxn, 0, arroy_db).unwrap();
    assert_eq!(reader.n_items(), 100);
    drop(rtxn);
    verify::<Euclidean>(&env, db, 5, &data, |v| v.to_vec(), Some(euclidean));
}
