//! The hot loops: dot product, squared L2 and L1 over unaligned vectors.
//!
//! Each loop keeps eight independent accumulators over 32-byte chunks so the
//! compiler can keep them in vector registers without reordering a single
//! float sum; the tail is summed one value at a time.

use crate::vector::{UnalignedF32, read_f32};

const LANES: usize = 8;
const CHUNK: usize = LANES * 4;

#[inline(always)]
fn fold(a: UnalignedF32<'_>, b: UnalignedF32<'_>, term: impl Fn(f32, f32) -> f32) -> f32 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f32; LANES];
    let chunks_a = a.chunks_exact(CHUNK);
    let chunks_b = b.chunks_exact(CHUNK);
    let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for (lane, acc) in acc.iter_mut().enumerate() {
            let at = lane * 4;
            *acc += term(read_f32(&x[at..at + 4]), read_f32(&y[at..at + 4]));
        }
    }
    let mut tail = 0.0;
    for (x, y) in tail_a.chunks_exact(4).zip(tail_b.chunks_exact(4)) {
        tail += term(read_f32(x), read_f32(y));
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + tail
}

/// The dot product of the common prefix of `a` and `b`.
pub fn dot(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    fold(a, b, |x, y| x * y)
}

/// The squared Euclidean distance between `a` and `b`.
pub fn l2_squared(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    fold(a, b, |x, y| {
        let d = x - y;
        d * d
    })
}

/// The Manhattan distance between `a` and `b`.
pub fn l1(a: UnalignedF32<'_>, b: UnalignedF32<'_>) -> f32 {
    fold(a, b, |x, y| (x - y).abs())
}

/// The Euclidean norm of `a`.
pub fn norm(a: UnalignedF32<'_>) -> f32 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..100).prop_flat_map(|len| {
            let v = proptest::collection::vec(-1000.0f32..1000.0, len);
            (v.clone(), v)
        })
    }

    fn close(found: f32, expected: f64, scale: f64) -> bool {
        (found as f64 - expected).abs() <= 1e-4 * scale.max(1.0)
    }

    proptest! {
        #[test]
        fn dot_matches_the_plain_sum((a, b) in pair()) {
            let expected: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let scale: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
            let found = dot(UnalignedF32::from_slice(&a), UnalignedF32::from_slice(&b));
            prop_assert!(close(found, expected, scale), "{found} vs {expected}");
        }

        #[test]
        fn l2_matches_the_plain_sum((a, b) in pair()) {
            let expected: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
            let found = l2_squared(UnalignedF32::from_slice(&a), UnalignedF32::from_slice(&b));
            prop_assert!(close(found, expected, expected), "{found} vs {expected}");
        }

        #[test]
        fn l1_matches_the_plain_sum((a, b) in pair()) {
            let expected: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum();
            let found = l1(UnalignedF32::from_slice(&a), UnalignedF32::from_slice(&b));
            prop_assert!(close(found, expected, expected), "{found} vs {expected}");
        }
    }
}
