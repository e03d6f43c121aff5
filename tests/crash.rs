//! A build killed with SIGKILL at any point (while trees grow, while nodes
//! are written, before the metadata, before or after the commit) leaves the
//! last committed index intact: LMDB commits atomically, and spinney writes
//! nothing outside the caller's transaction.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{MIB, TestEnv, build_index, data};
use spinney::distances::Euclidean;
use spinney::{MainStep, Reader, Writer};

const CHILD_DIR: &str = "SPINNEY_CRASH_DIR";
const CHILD_POINT: &str = "SPINNEY_CRASH_POINT";
const REACHED: &str = "SPINNEY-CRASH-POINT-REACHED";

fn wait_here_to_be_killed() -> ! {
    println!("{REACHED}");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The child: replaces the index with a larger one and waits to be killed
/// at the point named in its environment. Does nothing in a normal run.
#[test]
#[ignore = "run as a child process by killed_builds_leave_the_last_committed_index"]
fn crash_child() {
    let (Ok(dir), Ok(point)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_POINT)) else { return };
    // SAFETY: the parent closed its environment before starting this process.
    let env = unsafe { spinney::heed::EnvOpenOptions::new().map_size(256 * MIB).open(&dir).unwrap() };
    let test = TestEnv::from_env(env);
    let db = test.database::<Euclidean>();
    let set = data::clustered(20_000, 1, 32, 2);
    let writer = Writer::<Euclidean>::new(db, 0, 32);
    let mut wtxn = test.env.write_txn().unwrap();
    for i in 0..set.base.len() {
        writer.add_item(&mut wtxn, 1_000 + i as u32, set.base.get(i)).unwrap();
    }
    for i in 0..500 {
        writer.del_item(&mut wtxn, i).unwrap();
    }
    let progress = |p: spinney::WriterProgress| {
        let done = p.sub.map_or(0, |s| s.done);
        match (point.as_str(), p.main) {
            ("growing", MainStep::GrowingTrees) if done >= 2 => wait_here_to_be_killed(),
            ("updating", MainStep::UpdatingTrees) => wait_here_to_be_killed(),
            ("writing-nodes", MainStep::WritingNodes) if done >= 3 => wait_here_to_be_killed(),
            ("writing-metadata", MainStep::WritingMetadata) => wait_here_to_be_killed(),
            _ => {}
        }
    };
    // One tree at a time, so that growth is under way when the child waits.
    let mut rng = common::rng(5);
    writer.builder(&mut rng).n_trees(8).available_memory(1).progress(progress).build(&mut wtxn).unwrap();
    if point == "before-commit" {
        wait_here_to_be_killed();
    }
    wtxn.commit().unwrap();
    wait_here_to_be_killed();
}

#[test]
fn killed_builds_leave_the_last_committed_index() {
    let set = data::clustered(1_000, 5, 32, 1);
    for point in ["updating", "growing", "writing-nodes", "writing-metadata", "before-commit", "after-commit"] {
        let test = TestEnv::new(256 * MIB);
        build_index(&test, test.database::<Euclidean>(), 0, &set.base, Some(4), 1);
        let before = answers(&test, &set);
        let TestEnv { env, dir } = test;
        env.prepare_for_closing().wait();

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_POINT, point)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(REACHED) {
                    let _ = sender.send(());
                }
            }
        });
        let reached = receiver.recv_timeout(Duration::from_secs(120));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(reached.is_ok(), "the child never reached {point}");

        let test = TestEnv::from_dir(dir, 256 * MIB);
        let db = test.database::<Euclidean>();
        let rtxn = test.env.read_txn().unwrap();
        let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
        reader.check(&rtxn).unwrap();
        if point == "after-commit" {
            assert_eq!(reader.n_items(), 20_500, "the committed build is whole");
            assert_eq!(reader.n_trees(), 8);
        } else {
            assert_eq!(reader.n_items(), 1_000, "killed at {point}");
            drop(rtxn);
            assert_eq!(answers(&test, &set), before, "killed at {point}");
        }
    }
}

fn answers(test: &TestEnv, set: &data::Dataset) -> Vec<Vec<(u32, f32)>> {
    let db = test.database::<Euclidean>();
    let rtxn = test.env.read_txn().unwrap();
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db).unwrap();
    (0..5).map(|q| reader.nns(10).by_vector(&rtxn, set.queries.get(q)).unwrap()).collect()
}
