//! Model-based: arbitrary sequences of add / overwrite / delete / clear /
//! build on an index, checked against a plain map after every step (the
//! same checker as the property test in tests/incremental.rs).
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::model::{DIMENSIONS, Op, run};
use spinney::distances::{Cosine, DotProduct, Euclidean, Manhattan};

/// Reads operations from bytes: a tag byte, then the operation's bytes.
fn ops(bytes: &[u8]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut rest = bytes;
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        let mut next = || match rest.split_first() {
            Some((&byte, tail)) => {
                rest = tail;
                byte
            }
            None => 0,
        };
        ops.push(match tag % 16 {
            0..=8 => {
                let id = u32::from(next() % 60);
                Op::Add(id, (0..DIMENSIONS).map(|_| f32::from(next() % 7) - 3.0).collect())
            }
            9..=11 => Op::Delete(u32::from(next() % 60)),
            12 => Op::Clear,
            _ => Op::Build(match next() % 5 {
                0 => None,
                n => Some(n.into()),
            }),
        });
        if ops.len() == 64 {
            break;
        }
    }
    ops
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((&distance, bytes)) = bytes.split_first() else { return };
    let ops = ops(bytes);
    match distance % 4 {
        0 => run::<Euclidean>(&ops),
        1 => run::<Cosine>(&ops),
        2 => run::<DotProduct>(&ops),
        _ => run::<Manhattan>(&ops),
    }
});
