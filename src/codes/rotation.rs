//! A random orthogonal rotation that costs `O(d log d)`: rounds of random
//! sign flips and Walsh–Hadamard transforms.
//!
//! A Hadamard transform needs a power-of-two length, so with `b` the largest
//! power of two not above the dimensions `d`, each round flips signs and
//! transforms the first `b` values, then flips signs again and transforms
//! the last `b` values. Each step is orthogonal on `R^d`, so the rotation is
//! too, and the two overlapping blocks mix every value with every other in
//! two rounds. The arithmetic is additions, subtractions and one scaling,
//! in a fixed order, so every CPU rotates a vector to the same bits.

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// Rounds of sign flips and transforms.
const ROUNDS: usize = 3;

/// A rotation of `R^d`, drawn from a seed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rotation {
    /// `+1.0` or `-1.0` per value, per step: two steps per round.
    signs: Vec<Vec<f32>>,
    /// The length of a transformed block.
    block: usize,
}

impl Rotation {
    /// The rotation of `dimensions` values drawn from `seed`.
    pub fn new(dimensions: usize, seed: u64) -> Rotation {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let block = 1 << dimensions.max(1).ilog2();
        let signs = (0..2 * ROUNDS)
            .map(|_| (0..dimensions).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect())
            .collect();
        Rotation { signs, block }
    }

    /// Rotates `values` in place.
    pub fn apply(&self, values: &mut [f32]) {
        let d = values.len();
        let scale = (self.block as f32).sqrt().recip();
        for (step, signs) in self.signs.iter().enumerate() {
            values.iter_mut().zip(signs).for_each(|(v, s)| *v *= s);
            let block = match step % 2 {
                0 => &mut values[..self.block],
                _ => &mut values[d - self.block..],
            };
            hadamard(block);
            block.iter_mut().for_each(|v| *v *= scale);
        }
    }
}

/// The (unnormalised) Walsh–Hadamard transform of a power-of-two length.
fn hadamard(values: &mut [f32]) {
    let mut half = 1;
    while half < values.len() {
        for pair in values.chunks_exact_mut(2 * half) {
            let (low, high) = pair.split_at_mut(half);
            for (a, b) in low.iter_mut().zip(high) {
                (*a, *b) = (*a + *b, *a - *b);
            }
        }
        half *= 2;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn rotations_keep_norms_and_dot_products(
            (a, b) in (1usize..300).prop_flat_map(|d| {
                let v = proptest::collection::vec(-10.0f32..10.0, d);
                (v.clone(), v)
            }),
            seed in any::<u64>(),
        ) {
            let rotation = Rotation::new(a.len(), seed);
            let (mut ra, mut rb) = (a.clone(), b.clone());
            rotation.apply(&mut ra);
            rotation.apply(&mut rb);
            let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
            let scale = dot(&a, &a).sqrt() * dot(&b, &b).sqrt();
            prop_assert!((dot(&ra, &rb) - dot(&a, &b)).abs() <= 1e-4 * scale.max(1.0));
            prop_assert!((dot(&ra, &ra) - dot(&a, &a)).abs() <= 1e-4 * dot(&a, &a).max(1.0));
        }
    }

    #[test]
    fn every_value_is_mixed_with_every_other() {
        for d in [5, 64, 100, 384, 768] {
            let rotation = Rotation::new(d, 7);
            for i in [0, d / 2, d - 1] {
                let mut unit = vec![0.0; d];
                unit[i] = 1.0;
                rotation.apply(&mut unit);
                // Sums of ±1/√b can cancel exactly: allow a few zeros.
                let reached = unit.iter().filter(|v| v.abs() > 1e-6).count();
                assert!(reached >= d - d / 64, "{d} dimensions: value {i} reaches {reached}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_rotation() {
        assert_eq!(Rotation::new(100, 3), Rotation::new(100, 3));
        assert_ne!(Rotation::new(100, 3), Rotation::new(100, 4));
    }
}
