//! A build's progress, and cancelling it from another thread: a cancelled
//! build returns `Error::BuildCancelled`, the transaction is aborted, and
//! the index is as it was at its last commit.

#[path = "support/data.rs"]
mod data;
#[path = "support/temporary.rs"]
mod temporary;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::Euclidean;
use spinney::{MainStep, Reader, Writer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vectors = data::clustered(20_000, 1, 32, 9);
    let (_dir, env, db) = temporary::database::<Euclidean>(1 << 30)?;
    let writer = Writer::<Euclidean>::new(db, 0, 32);
    let mut wtxn = env.write_txn()?;
    for id in 0..10_000 {
        writer.add_item(&mut wtxn, id, vectors.base.get(id as usize))?;
    }
    writer.builder(&mut StdRng::seed_from_u64(1)).n_trees(10).build(&mut wtxn)?;
    wtxn.commit()?;

    // Add the other half, and start a long build (many trees) that a second
    // thread cancels as soon as trees are growing: a user pressing "stop".
    let cancel = AtomicBool::new(false);
    let growing = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !growing.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("  -> cancelling");
            cancel.store(true, Ordering::Relaxed);
        });
        let result = (|| {
            let mut wtxn = env.write_txn()?;
            for id in 10_000..20_000 {
                writer.add_item(&mut wtxn, id, vectors.base.get(id as usize))?;
            }
            writer
                .builder(&mut StdRng::seed_from_u64(2))
                .n_trees(1_000)
                .progress(|progress| {
                    match progress.sub {
                        None => println!("{:?}", progress.main),
                        Some(sub) if sub.done % 100 == 0 => println!("  {} / {} {}", sub.done, sub.total, sub.unit),
                        Some(_) => {}
                    }
                    if progress.main == MainStep::GrowingTrees {
                        growing.store(true, Ordering::Relaxed);
                    }
                })
                .cancel(|| cancel.load(Ordering::Relaxed))
                .build(&mut wtxn)
            // Dropping `wtxn` here aborts it: nothing of this build is kept.
        })();
        // The other thread stops however the build ended.
        growing.store(true, Ordering::Relaxed);
        result
    });
    println!("the build returned: {outcome:?}");
    assert!(matches!(outcome, Err(spinney::Error::BuildCancelled)));

    let rtxn = env.read_txn()?;
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db)?;
    println!("the index is as committed: {} items, {} trees", reader.n_items(), reader.n_trees());
    assert_eq!((reader.n_items(), reader.n_trees()), (10_000, 10));
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
