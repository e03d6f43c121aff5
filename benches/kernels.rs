//! The distance kernels at 128, 384, 768 and 1536 dimensions (`f32`s, packed
//! bits for Hamming, a block of 32 codes for the fast scan), every
//! implementation this CPU runs; then one query at a fixed `search_k` on
//! 100k x 128 generated vectors, and a build of 10k of them.
//!
//! ```text
//! cargo bench --bench kernels
//! ```

#[path = "../examples/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::Euclidean;
use spinney::{Reader, Writer};

/// Nanoseconds per call of `f`, timed over about 200 ms.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    let mut calls = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| kernel | implementation | 128 | 384 | 768 | 1536 |\n| --- | --- | ---: | ---: | ---: | ---: |");
    for kernels in spinney::available_kernels() {
        for (name, kernel) in [("dot", kernels.dot), ("l2_squared", kernels.l2_squared), ("l1", kernels.l1)] {
            let mut row = format!("| {name} | {} |", kernels.name);
            for dimensions in [128, 384, 768, 1536] {
                // One byte of shift: the loads are unaligned, as from LMDB pages.
                let a: Vec<u8> = (0..dimensions * 4 + 1).map(|i| (i * 7 % 251) as u8).collect();
                let b: Vec<u8> = (0..dimensions * 4 + 1).map(|i| (i * 13 % 241) as u8).collect();
                let ns = time_per_call(|| {
                    black_box(kernel(black_box(&a[1..]), black_box(&b[1..])));
                });
                row.push_str(&format!(" {ns:.1} ns |"));
            }
            println!("{row}");
        }
        let mut row = format!("| dot_f16 (normal) | {} |", kernels.name);
        for dimensions in [128, 384, 768, 1536] {
            let a: Vec<u8> = (0..dimensions * 2 + 1).map(|i| (i * 7 % 251) as u8 & 0xbf).collect();
            let b: Vec<u8> = (0..dimensions * 4 + 1).map(|i| (i * 13 % 241) as u8).collect();
            let ns = time_per_call(|| {
                black_box((kernels.dot_f16)(black_box(&a[1..]), black_box(&b[1..])));
            });
            row.push_str(&format!(" {ns:.1} ns |"));
        }
        println!("{row}");
        let mut row = format!("| hamming (bits) | {} |", kernels.name);
        for dimensions in [128, 384, 768, 1536] {
            let a: Vec<u8> = (0..dimensions / 8 + 1).map(|i| (i * 7 % 251) as u8).collect();
            let b: Vec<u8> = (0..dimensions / 8 + 1).map(|i| (i * 13 % 241) as u8).collect();
            let ns = time_per_call(|| {
                black_box((kernels.hamming)(black_box(&a[1..]), black_box(&b[1..])));
            });
            row.push_str(&format!(" {ns:.1} ns |"));
        }
        println!("{row}");
        // A block of 32 codes against a query's tables: 16 bytes of each per
        // group of four dimensions. The time per code is a 32nd of this.
        let mut row = format!("| fastscan (block of 32 codes) | {} |", kernels.name);
        for dimensions in [128, 384, 768, 1536] {
            let bytes = (dimensions as usize).div_ceil(8) * 2 * 16;
            let block: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
            let tables: Vec<u8> = (0..bytes).map(|i| (i * 13 % 241) as u8).collect();
            let ns = time_per_call(|| {
                black_box((kernels.fastscan)(black_box(&block), black_box(&tables)));
            });
            row.push_str(&format!(" {ns:.1} ns |"));
        }
        println!("{row}");
    }

    let set = support::data::clustered(100_000, 100, 128, 42);
    let (_dir, env, db) = support::temporary::database::<Euclidean>(1 << 30)?;

    let build_10k = {
        let mut wtxn = env.write_txn()?;
        let writer = Writer::<Euclidean>::new(db, 1, 128);
        for i in 0..10_000 {
            writer.append_item(&mut wtxn, i as u32, set.base.get(i))?;
        }
        let start = Instant::now();
        writer.builder(&mut StdRng::seed_from_u64(1)).build(&mut wtxn)?;
        let elapsed = start.elapsed();
        wtxn.abort();
        elapsed
    };

    let mut wtxn = env.write_txn()?;
    let writer = Writer::<Euclidean>::new(db, 0, 128);
    for i in 0..set.base.len() {
        writer.append_item(&mut wtxn, i as u32, set.base.get(i))?;
    }
    writer.builder(&mut StdRng::seed_from_u64(1)).build(&mut wtxn)?;
    wtxn.commit()?;
    let rtxn = env.read_txn()?;
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db)?;
    let search_k = NonZeroUsize::new(960).ok_or("zero")?;
    let mut q = 0;
    let query_ns = time_per_call(|| {
        q = (q + 1) % 100;
        black_box(reader.nns(10).search_k(search_k).by_vector(&rtxn, set.queries.get(q)).ok());
    });
    println!("\nbuild of 10k x 128 (default trees): {:.1} ms", build_10k.as_secs_f64() * 1000.0);
    println!("one query, 100k x 128, search_k 960, one thread: {:.3} ms", query_ns / 1e6);
    Ok(())
}
