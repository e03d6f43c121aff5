//! The bytes a build writes: reproducible across thread counts and pinned
//! by snapshots, plus the test vectors quoted by the FORMAT page.

mod common;

use std::fmt::Write;

use common::{MIB, TestEnv, data};
use spinney::distances::{Euclidean, Hamming};
use spinney::format::{Key, NodeMode};
use spinney::internals::Machinery;
use spinney::{Writer, default_n_trees, default_split_after};

/// Builds `set` with `seed` on a rayon pool of `threads` threads and returns
/// every key and value of the database.
fn build_with_threads(set: &data::Dataset, seed: u64, threads: usize, n_trees: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let test = TestEnv::new(128 * MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 2, set.base.dimensions);
    let mut wtxn = test.env.write_txn().unwrap();
    common::add_items(&writer, &mut wtxn, &set.base);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| writer.builder(&mut common::rng(seed)).n_trees(n_trees).split_after(8).build(&mut wtxn)).unwrap();
    wtxn.commit().unwrap();
    test.dump()
}

#[test]
fn the_same_seed_gives_the_same_bytes_at_any_thread_count() {
    let set = data::clustered(3_000, 1, 12, 8);
    let seed = common::seed(99);
    let one = build_with_threads(&set, seed, 1, 12);
    let two = build_with_threads(&set, seed, 2, 12);
    let four = build_with_threads(&set, seed, 4, 12);
    assert!(one == two && two == four, "the database differs between thread counts");
    let other_seed = build_with_threads(&set, seed + 1, 2, 12);
    assert_ne!(one, other_seed, "the seed must matter");
}

#[test]
fn trees_split_in_shared_passes_are_the_same_at_any_thread_count() {
    // 4,500 vectors of 4 KiB: the top two levels of every tree hold more
    // than 4 MiB of vectors and are split in passes shared by the trees,
    // and the vectors (over 16 MiB) are packed for the subtrees below.
    let set = data::clustered(4_500, 1, 1024, 9);
    let seed = common::seed(98);
    let one = build_with_threads(&set, seed, 1, 5);
    let two = build_with_threads(&set, seed, 2, 5);
    let three = build_with_threads(&set, seed, 3, 5);
    assert!(one == two && two == three, "the database differs between thread counts");
}

/// A readable dump: one line per entry, its key decoded, and a value's
/// trailing zeros counted rather than written.
fn dump(entries: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        let key = Key::from_bytes(key).unwrap();
        let zeros = value.iter().rev().take_while(|&&byte| byte == 0).count();
        match zeros > 16 {
            true => writeln!(out, "{key}: {:02x?} and {zeros} zeros", &value[..value.len() - zeros]).unwrap(),
            false => writeln!(out, "{key}: {value:02x?}").unwrap(),
        }
    }
    out
}

#[test]
fn snapshot_of_a_tiny_database() {
    let test = TestEnv::new(16 * MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 0, 2);
    let mut wtxn = test.env.write_txn().unwrap();
    for i in 0..10u32 {
        let (x, y) = ((i % 4) as f32, (i / 4) as f32 * 2.0);
        writer.add_item(&mut wtxn, i, &[x, y]).unwrap();
    }
    writer.builder(&mut common::rng(1)).n_trees(2).split_after(3).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    insta::assert_snapshot!(dump(&test.dump()));
}

#[test]
fn default_tree_counts() {
    let mut table = String::from("items \\ dimensions: 2 16 64 128 384 512 768 1000 1024 1536 3072\n");
    for items in [0u64, 1, 100, 1_000, 10_000, 100_000, 1_000_000, 100_000_000] {
        write!(table, "{items}:").unwrap();
        for dimensions in [2, 16, 64, 128, 384, 512, 768, 1000, 1024, 1536, 3072] {
            write!(table, " {}", default_n_trees::<Euclidean>(items, dimensions)).unwrap();
        }
        table.push('\n');
    }
    table.push_str("bits, 100_000 items:");
    for dimensions in [2, 16, 64, 128, 384, 512, 768, 1000, 1024, 1536, 3072] {
        write!(table, " {}", default_n_trees::<Hamming>(100_000, dimensions)).unwrap();
    }
    table.push('\n');
    table.push_str("split_after:");
    for dimensions in [2, 16, 64, 128, 384, 512, 768, 1000, 1024, 1536, 3072] {
        write!(table, " {}", default_split_after(dimensions)).unwrap();
    }
    insta::assert_snapshot!(table);
}

#[test]
fn format_page_test_vectors() {
    let key = Key { index: 1, mode: NodeMode::Item, id: 258 };
    assert_eq!(key.to_bytes(), [0x00, 0x01, 0x02, 0x00, 0x00, 0x01, 0x02]);
    let test = TestEnv::new(MIB);
    let db = test.database::<Euclidean>();
    let writer = Writer::<Euclidean>::new(db, 1, 2);
    let mut wtxn = test.env.write_txn().unwrap();
    writer.add_item(&mut wtxn, 258, &[1.0, -2.0]).unwrap();
    wtxn.commit().unwrap();
    let value = |key: Key| {
        let entries = test.dump();
        entries.into_iter().find(|(k, _)| k[..] == key.to_bytes()).unwrap().1
    };
    let header = Key { index: 1, mode: NodeMode::Metadata, id: 1 };
    assert_eq!(value(header), [6, 0, 0, 0, 2, 0, 0, 0, 9, b'e', b'u', b'c', b'l', b'i', b'd', b'e', b'a', b'n']);
    assert_eq!(value(key), [0x01, 0x00, 0x00, 0x00, 0x00]);
    let slots = Key { index: 1, mode: NodeMode::Slots, id: 0 };
    let chunk = value(slots);
    assert_eq!(chunk.len(), 32_752);
    assert_eq!(chunk[..16], [1, 0, 0, 0, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    assert!(chunk[16..].iter().all(|&byte| byte == 0));

    let mut wtxn = test.env.write_txn().unwrap();
    writer.builder(&mut common::rng(1)).build(&mut wtxn).unwrap();
    wtxn.commit().unwrap();
    assert_eq!(value(key), [0x01, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(value(slots), chunk, "a build writes no slot");
    let tree = Key { index: 1, mode: NodeMode::Tree, id: 0 };
    assert_eq!(value(tree), [0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let directory = Key { index: 1, mode: NodeMode::Directory, id: 0 };
    assert_eq!(value(directory), [0x00, 0x00, 0x00, 0x00]);

    let db = test.database::<Hamming>();
    let mut values = vec![-1.0; 65];
    (values[0], values[64]) = (1.0, 1.0);
    let mut wtxn = test.env.write_txn().unwrap();
    Writer::<Hamming>::new(db, 2, 65).add_item(&mut wtxn, 0, &values).unwrap();
    wtxn.commit().unwrap();
    let slots = Key { index: 2, mode: NodeMode::Slots, id: 0 };
    assert_eq!(value(slots)[..24], [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
}

/// The size of a distance's per-item header, named through the public
/// `internals` module (which the `unnameable_types` lint keeps complete).
fn header_size<D: Machinery>() -> usize {
    std::mem::size_of::<D::Header>()
}

#[test]
fn item_headers_have_the_documented_sizes() {
    use spinney::distances::*;
    let sizes = [
        ("euclidean", header_size::<Euclidean>()),
        ("manhattan", header_size::<Manhattan>()),
        ("cosine", header_size::<Cosine>()),
        ("dot-product", header_size::<DotProduct>()),
        ("binary-quantized-euclidean", header_size::<BinaryQuantizedEuclidean>()),
        ("binary-quantized-cosine", header_size::<BinaryQuantizedCosine>()),
        ("binary-quantized-manhattan", header_size::<BinaryQuantizedManhattan>()),
        ("hamming", header_size::<Hamming>()),
    ];
    let format_page = include_str!("../src/format.md");
    for (name, size) in sizes {
        let row = format_page
            .lines()
            .find(|line| line.contains(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("the FORMAT page has no row for {name}"));
        let documented = match row.split('(').nth(1).and_then(|rest| rest.split(' ').next()) {
            Some(bytes) => bytes.parse::<usize>().unwrap(),
            None => panic!("no size in the row {row:?}"),
        };
        assert_eq!(size, documented, "{name}: the header is {size} bytes, the FORMAT page says {documented}");
    }
}
