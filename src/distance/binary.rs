//! The distances over packed bits: three binary-quantized approximations of
//! the `f32` distances, and Hamming.
//!
//! Why they keep their recall, and how their trees split, is documented on
//! [`crate::distances`].

use std::marker::PhantomData;

use bytemuck::{Pod, Zeroable};

use super::{Distance, Machinery, sealed};
use crate::bits::{Bits, PackedBits, SignedDot, signed_l1, signs};
use crate::item::Leaf;
use crate::kernels;
use crate::vector::{UnalignedF32, VectorCodec};

/// The default oversampling of the distances over bits: comparing bits is
/// cheap, so a query can afford four times the candidates of an `f32` one.
const BINARY_OVERSAMPLING: usize = 4;

/// The leaf header of the binary-quantized distances: what the bits forget.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct ScaleHeader {
    /// The Euclidean norm of the original vector, `|x|`.
    pub norm: f32,
    /// The sum of the absolute values of the original vector, `|x|₁`, which
    /// is also `x · b`.
    pub l1: f32,
}

impl ScaleHeader {
    fn of(values: &[f32]) -> ScaleHeader {
        let norm = kernels::norm(UnalignedF32::from_slice(values));
        ScaleHeader { norm, l1: values.iter().map(|v| v.abs()).sum() }
    }

    /// The estimate of `q · x` is `(q · b) × this`: the estimator of RaBitQ
    /// (Gao & Long, 2024), `(q · b) / (x̂ · b)` with `x̂ = x / |x|`, scaled
    /// back by `|x|`. (RaBitQ proves it unbiased after a random rotation of
    /// the data, which spinney does not apply.)
    fn dot_scale(self) -> f32 {
        if self.l1 > 0.0 { self.norm * self.norm / self.l1 } else { 0.0 }
    }

    /// The mean absolute value over `dimensions`: `mean × b` is the ±1 vector
    /// nearest to `x`.
    fn mean(self, dimensions: usize) -> f32 {
        if dimensions > 0 { self.l1 / dimensions as f32 } else { 0.0 }
    }
}

/// A query of a distance over bits: its signs (to descend the trees), its
/// norm, and what its distance needs prepared (`P`).
#[doc(hidden)]
pub struct BinaryQuery<D: Distance, P> {
    header: D::Header,
    bits: Vec<u64>,
    norm: f32,
    prepared: P,
    marker: PhantomData<D>,
}

impl<D: Distance<Codec = PackedBits>, P> BinaryQuery<D, P> {
    fn new(values: &[f32], prepared: P) -> BinaryQuery<D, P> {
        BinaryQuery {
            header: D::new_header(values),
            bits: PackedBits::encode(values),
            norm: kernels::norm(UnalignedF32::from_slice(values)),
            prepared,
            marker: PhantomData,
        }
    }

    fn leaf(&self) -> Leaf<'_, D> {
        Leaf { header: self.header, vector: Bits::from_words(&self.bits) }
    }
}

/// The items the distances over bits share: codec, split coordinates,
/// planes and margins, and what an item's bits read back as.
macro_rules! stored_as_bits {
    ($one:expr, $zero:expr) => {
        const CODE_SPACE: Option<crate::codes::CodeSpace> = None;
        type Codec = PackedBits;
        type NormalCodec = PackedBits;
        type Context = ();

        fn context<'a>(_leaves: impl Iterator<Item = Leaf<'a, Self>>) {}

        fn values(leaf: &Leaf<'_, Self>, dimensions: usize) -> Vec<f32> {
            leaf.vector.iter(dimensions).map(|bit| if bit { $one } else { $zero }).collect()
        }

        fn query_leaf(query: &Self::Query) -> Leaf<'_, Self> {
            query.leaf()
        }

        fn split_point(leaf: &Leaf<'_, Self>, _context: (), out: &mut Vec<f32>) {
            signs(leaf.vector, leaf.vector.capacity(), out);
        }

        fn plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
            sign_plane(p, q)
        }

        fn margin(normal: Bits<'_>, offset: f32, leaf: &Leaf<'_, Self>) -> f32 {
            offset - 2.0 * kernels::hamming(normal, leaf.vector) as f32
        }
    };
}

/// The items the binary-quantized distances share: the two norms as
/// header, a query prepared as `$prepared` by `$prepare`, and an item asked
/// for its neighbours as the `f32` vector its bits and norms stand for.
macro_rules! estimated_from_norms {
    ($prepared:ty, $prepare:expr) => {
        type Header = ScaleHeader;
        type Query = BinaryQuery<Self, $prepared>;

        fn new_header(values: &[f32]) -> ScaleHeader {
            ScaleHeader::of(values)
        }

        fn query(values: &[f32]) -> Self::Query {
            BinaryQuery::new(values, $prepare(values))
        }

        fn item_query(leaf: &Leaf<'_, Self>, dimensions: usize) -> Self::Query {
            // The item's ±1 values scaled by its mean absolute value: asking
            // for an item's neighbours compares like any other query.
            let mean = leaf.header.mean(dimensions);
            let values: Vec<f32> = Self::values(leaf, dimensions).into_iter().map(|v| v * mean).collect();
            Self::query(&values)
        }
    };
}

/// The plane between two centroids of ±1 vectors with its normal quantized
/// to signs, and the offset that makes `offset − 2 × hamming(normal, b)` the
/// margin of `b` (padding bits are clear in both, so they never differ).
fn sign_plane(p: &[f32], q: &[f32]) -> Option<(Vec<f32>, f32)> {
    if p == q {
        return None;
    }
    let normal: Vec<f32> = p.iter().zip(q).map(|(p, q)| if p > q { 1.0 } else { -1.0 }).collect();
    // n · b = len − 2 × hamming(n, b) for ±1 vectors of `len` values.
    let midpoint: f32 = normal.iter().zip(p.iter().zip(q)).map(|(n, (p, q))| n * (p + q) / 2.0).sum();
    Some((normal, p.len() as f32 - midpoint))
}

/// Euclidean distance to items stored as one bit per dimension: about 32
/// times smaller than [`super::Euclidean`], with distances estimated from
/// an `f32` query, the item's bits and its two norms (see
/// [`crate::distances`]). Results carry the estimated distance.
///
/// `item_vector` returns the ±1 vector of the bits.
#[derive(Debug, Clone, Copy)]
pub enum BinaryQuantizedEuclidean {}

impl sealed::Sealed for BinaryQuantizedEuclidean {}

impl Distance for BinaryQuantizedEuclidean {
    const NAME: &'static str = "binary-quantized-euclidean";
    const QUANTIZED: bool = true;
    const DEFAULT_OVERSAMPLING: usize = BINARY_OVERSAMPLING;
}

impl Machinery for BinaryQuantizedEuclidean {
    stored_as_bits!(1.0, -1.0);
    estimated_from_norms!(SignedDot, SignedDot::new);

    fn distance(query: &Self::Query, item: &Leaf<'_, Self>) -> f32 {
        let dot = item.header.dot_scale() * query.prepared.dot(item.vector);
        (query.norm * query.norm - 2.0 * dot + item.header.norm * item.header.norm).max(0.0)
    }

    fn user_distance(distance: f32) -> f32 {
        distance.sqrt()
    }
}

/// Cosine distance to items stored as one bit per dimension: about 32 times
/// smaller than [`super::Cosine`]; the query stays `f32` and each item's
/// cosine is estimated from its bits and its two norms.
/// Results carry the estimated distance, in `[0, 2]`.
///
/// `item_vector` returns the ±1 vector of the bits.
#[derive(Debug, Clone, Copy)]
pub enum BinaryQuantizedCosine {}

impl sealed::Sealed for BinaryQuantizedCosine {}

impl Distance for BinaryQuantizedCosine {
    const NAME: &'static str = "binary-quantized-cosine";
    const QUANTIZED: bool = true;
    const DEFAULT_OVERSAMPLING: usize = BINARY_OVERSAMPLING;
}

impl Machinery for BinaryQuantizedCosine {
    stored_as_bits!(1.0, -1.0);
    estimated_from_norms!(SignedDot, SignedDot::new);

    fn distance(query: &Self::Query, item: &Leaf<'_, Self>) -> f32 {
        let norms = query.norm * item.header.norm;
        if norms > 0.0 {
            let dot = item.header.dot_scale() * query.prepared.dot(item.vector);
            (1.0 - dot / norms).clamp(0.0, 2.0)
        } else {
            1.0
        }
    }

    fn user_distance(distance: f32) -> f32 {
        distance
    }
}

/// Manhattan (L1) distance to items stored as one bit per dimension: about
/// 32 times smaller than [`super::Manhattan`]; the query stays `f32` and is
/// compared with `mean × b`, `mean` being the item's mean absolute value.
/// Results carry the estimated distance.
///
/// `item_vector` returns the ±1 vector of the bits.
#[derive(Debug, Clone, Copy)]
pub enum BinaryQuantizedManhattan {}

impl sealed::Sealed for BinaryQuantizedManhattan {}

impl Distance for BinaryQuantizedManhattan {
    const NAME: &'static str = "binary-quantized-manhattan";
    const QUANTIZED: bool = true;
    const DEFAULT_OVERSAMPLING: usize = BINARY_OVERSAMPLING;
}

impl Machinery for BinaryQuantizedManhattan {
    stored_as_bits!(1.0, -1.0);
    estimated_from_norms!(Vec<f32>, <[f32]>::to_vec);

    fn distance(query: &Self::Query, item: &Leaf<'_, Self>) -> f32 {
        let values = &query.prepared;
        signed_l1(values, item.header.mean(values.len()), item.vector)
    }

    fn user_distance(distance: f32) -> f32 {
        distance
    }
}

/// The Hamming distance: the number of dimensions whose bits differ, a bit
/// being set when the value is greater than zero. Queries are quantized the
/// same way; results carry the count.
///
/// `item_vector` returns the 0/1 vector of the bits.
#[derive(Debug, Clone, Copy)]
pub enum Hamming {}

impl sealed::Sealed for Hamming {}

impl Distance for Hamming {
    const NAME: &'static str = "hamming";
    const QUANTIZED: bool = true;
    const DEFAULT_OVERSAMPLING: usize = BINARY_OVERSAMPLING;
}

impl Machinery for Hamming {
    stored_as_bits!(1.0, 0.0);
    type Header = ();
    type Query = BinaryQuery<Self, ()>;

    fn new_header(_values: &[f32]) {}

    fn query(values: &[f32]) -> Self::Query {
        BinaryQuery::new(values, ())
    }

    fn distance(query: &Self::Query, item: &Leaf<'_, Self>) -> f32 {
        kernels::hamming(Bits::from_words(&query.bits), item.vector) as f32
    }

    fn user_distance(distance: f32) -> f32 {
        distance
    }
}
