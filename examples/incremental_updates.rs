//! Incremental updates while readers keep answering: a writer adds,
//! replaces and deletes items and rebuilds, batch after batch, while a
//! reader thread searches. Each read transaction sees the index as of its
//! start: the last committed build, never a half-written one.

#[path = "support/data.rs"]
mod data;
#[path = "support/temporary.rs"]
mod temporary;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::Cosine;
use spinney::{Reader, Writer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dimensions = 128;
    let vectors = data::clustered(12_000, 10, dimensions, 3);
    let (_dir, env, db) = temporary::database::<Cosine>(1 << 30)?;
    let writer = Writer::<Cosine>::new(db, 0, dimensions);
    let mut rng = StdRng::seed_from_u64(5);

    // The first 10,000 items, built once.
    let mut wtxn = env.write_txn()?;
    for id in 0..10_000u32 {
        writer.add_item(&mut wtxn, id, vectors.base.get(id as usize))?;
    }
    writer.builder(&mut rng).build(&mut wtxn)?;
    wtxn.commit()?;

    let done = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<(), Box<dyn std::error::Error>> {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let rtxn = env.read_txn().expect("a read transaction");
                let reader = Reader::<Cosine>::open(&rtxn, 0, db).expect("the index opens");
                let nearest = reader.nns(10).by_vector(&rtxn, vectors.queries.get(0)).expect("a query");
                // Every answer comes from one committed state: 10,000 items
                // and whole batches (each adds 150 net), all of them built.
                let n = reader.n_items();
                assert!(
                    n >= 10_000 && (n - 10_000).is_multiple_of(150) && reader.pending_changes().is_empty(),
                    "{n} items"
                );
                assert!(nearest.iter().all(|(id, _)| reader.item_ids().contains(*id)));
                answered.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Ten batches: 200 new items, 50 replaced, 50 deleted, then a build.
        // The reader stops however the batches end.
        let batches = (|| -> Result<(), Box<dyn std::error::Error>> {
            for batch in 0..10u32 {
                let started = Instant::now();
                let mut wtxn = env.write_txn()?;
                for id in 10_000 + batch * 200..10_000 + (batch + 1) * 200 {
                    writer.add_item(&mut wtxn, id, vectors.base.get(id as usize))?;
                }
                for id in (batch * 100..batch * 100 + 50).map(|id| id * 2) {
                    writer.add_item(&mut wtxn, id, vectors.base.get(id as usize + 1))?;
                    writer.del_item(&mut wtxn, id + 1)?;
                }
                writer.builder(&mut rng).build(&mut wtxn)?;
                wtxn.commit()?;
                println!(
                    "batch {batch}: +200 items, 50 replaced, 50 deleted, rebuilt in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
            Ok(())
        })();
        done.store(true, Ordering::Relaxed);
        batches
    })?;

    let rtxn = env.read_txn()?;
    let reader = Reader::<Cosine>::open(&rtxn, 0, db)?;
    reader.check(&rtxn)?;
    println!("{} items; the reader answered {} queries meanwhile", reader.n_items(), answered.load(Ordering::Relaxed));
    assert_eq!(reader.n_items(), 10_000 + 2_000 - 500);
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
