//! Compact codes: one bit per dimension and two factors per slot, to
//! estimate distances to many candidates cheaply before ranking the best
//! few by their exact vectors.
//!
//! The code of a vector `v` (the item's vector, or its direction for the
//! cosine distance) follows RaBitQ (Gao & Long, 2024): with `c` the mean of
//! the index's vectors when its forest was first grown and `P` a random
//! rotation (`rotation.rs`), the residual `r = v − c` is stored as the signs
//! of `P r`, `b ∈ {−1, +1}^d`, with `|r|²` and `s = |r|² / |P r|₁`. For any
//! vector `y`, `⟨r, y⟩ ≈ s ⟨b, P y⟩`: exact for `y = r`, and, because the
//! rotation makes the coordinates of `P r` behave like random ones, an
//! estimate whose error shrinks as `1/√d` of `|r| |y|` (RaBitQ proves the
//! bound for the normalised form `⟨b, P y⟩ / ⟨b, P r/|r|⟩`, which this is).
//! Then
//!
//! - Euclidean: `|x − q|² = |r|² + |q − c|² − 2⟨r, q − c⟩`;
//! - cosine: `1 − cos(x, q) = |x̂ − q̂|² / 2`, the same over unit vectors;
//! - dot product: `⟨x, q⟩ = ⟨c, q⟩ + ⟨r, q⟩`;
//! - Manhattan has no such identity: its codes estimate the Euclidean
//!   distance, a proxy whose ranking the exact re-ranking corrects.
//!
//! Estimates are computed 32 codes at a time (`kernels::fastscan`, the
//! layout of the "fast scan" of Faiss and of RaBitQ's library): a block
//! holds, for each group of four dimensions, the 4-bit pieces of 32 codes;
//! the query is a table per group of the 16 values `Σ ±y'_i` a piece can
//! select (`y' = P y`), quantised to bytes, so that one shuffle instruction
//! looks up a group for 16 codes at once. The sums are exact in integers;
//! the only rounding is the tables', half a step of `max range / 255` per
//! group.

mod rotation;

pub(crate) use self::rotation::Rotation;
use crate::item::Leaf;
use crate::{Distance, kernels};

/// How a distance is estimated from codes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSpace {
    /// Squared Euclidean distance between the vectors.
    Euclidean,
    /// One minus the cosine: half the squared distance between directions.
    Cosine,
    /// The negated dot product.
    Dot,
}

/// Codes per block.
pub(crate) const BLOCK: usize = 32;

/// `ε₀` of RaBitQ's error bound: the estimate of `⟨r, y⟩` is within
/// `|r| |y| √(1/⟨ō, o⟩² − 1) ε₀ / √(d − 1)` of the truth with a probability
/// that grows as `1 − exp(−c ε₀²)`. The error is close to normal with that
/// standard deviation at `ε₀ = 1`, so the paper's 1.9, taken here, bounds
/// about 94% of estimates; a true neighbour is lost only if its estimate is
/// too high by more, and is then usually still ranked by a later bound.
const ERROR_BOUND: f32 = 1.9;

/// Below this many dimensions an index has no codes: one bit per dimension
/// estimates too coarsely (the error shrinks as `1/√d`), and exact
/// distances over so few values cost about as much as estimates.
pub const MIN_DIMENSIONS: usize = 128;

/// How codes estimate the distance `D` at `dimensions`, if its index has them.
pub(crate) fn space<D: Distance>(dimensions: usize) -> Option<CodeSpace> {
    D::CODE_SPACE.filter(|_| dimensions >= MIN_DIMENSIONS)
}

/// The groups of four dimensions of a code, an even number (the kernels
/// take groups two by two).
pub(crate) fn groups(dimensions: usize) -> usize {
    dimensions.div_ceil(8) * 2
}

/// The bytes of a block of codes: 16 per group.
pub(crate) fn block_size(dimensions: usize) -> usize {
    groups(dimensions) * 16
}

/// The bytes of the codes of `count` slots: their blocks, then `|r|²` and
/// `s` of each slot (`f32`s).
pub(crate) fn section_size(dimensions: usize, count: usize) -> usize {
    count.div_ceil(BLOCK) * block_size(dimensions) + count * 8
}

/// What codes are made from: the centre and the rotation, drawn once when a
/// forest is first grown and kept by later builds.
///
/// Stored under `(index, Metadata, 2)`: the rotation's seed (`u64`), then
/// the centre, `dimensions` `f32`s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Codebook {
    pub seed: u64,
    pub centre: Vec<f32>,
    rotation: Rotation,
}

impl Codebook {
    pub fn new(seed: u64, centre: Vec<f32>) -> Codebook {
        Codebook { seed, rotation: Rotation::new(centre.len(), seed), centre }
    }

    /// The codebook of `leaves`: their centre (in code space, summed in
    /// `f64` in their order) and the rotation drawn from `seed`.
    pub fn of<'l, 'v: 'l, D: Distance>(
        dimensions: usize,
        leaves: impl Iterator<Item = &'l Leaf<'v, D>>,
        seed: u64,
    ) -> Codebook {
        let (mut sum, mut vector, mut count) = (vec![0f64; dimensions], Vec::new(), 0usize);
        for leaf in leaves {
            D::code_vector(leaf, &mut vector);
            sum.iter_mut().zip(&vector).for_each(|(s, v)| *s += f64::from(*v));
            count += 1;
        }
        Codebook::new(seed, sum.into_iter().map(|s| (s / count.max(1) as f64) as f32).collect())
    }

    pub fn dimensions(&self) -> usize {
        self.centre.len()
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed.to_le_bytes());
        self.centre.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    }

    pub fn decode(bytes: &[u8]) -> Result<Codebook, &'static str> {
        let (seed, centre) = bytes.split_at_checked(8).ok_or("a codebook starts with an 8-byte seed")?;
        if centre.len() % 4 != 0 {
            return Err("the centre is not whole f32s");
        }
        let seed = u64::from_le_bytes(seed.try_into().unwrap_or_default());
        let centre: Vec<f32> = centre.chunks_exact(4).map(crate::vector::read_f32).collect();
        if centre.iter().any(|v| !v.is_finite()) {
            return Err("the centre holds a value that is not finite");
        }
        Ok(Codebook::new(seed, centre))
    }

    /// The rotated residual of `vector` (in code space) in `rotated`, and
    /// its code's factors `(|r|², s)`.
    pub fn rotate(&self, vector: &[f32], rotated: &mut Vec<f32>) -> (f32, f32) {
        rotated.clear();
        rotated.extend(vector.iter().zip(&self.centre).map(|(v, c)| v - c));
        let norm2: f64 = rotated.iter().map(|r| f64::from(*r) * f64::from(*r)).sum();
        self.rotation.apply(rotated);
        let l1: f64 = rotated.iter().map(|r| f64::from(r.abs())).sum();
        let scale = if l1 > 0.0 { (norm2 / l1) as f32 } else { 0.0 };
        (norm2 as f32, scale)
    }
}

/// The codes of one chunk of slots, borrowed: blocks of 32, then `|r|²`
/// of each slot, then `s` of each slot (`f32`s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codes<'a> {
    blocks: &'a [u8],
    norms: &'a [u8],
    scales: &'a [u8],
    block_size: usize,
}

impl<'a> Codes<'a> {
    /// Cuts the code section of a chunk of `count` slots.
    pub fn new(bytes: &'a [u8], dimensions: usize, count: usize) -> Option<Codes<'a>> {
        let block_size = block_size(dimensions);
        let (blocks, factors) = bytes.split_at_checked(count.div_ceil(BLOCK) * block_size)?;
        let (norms, scales) = factors.split_at_checked(count * 4)?;
        (scales.len() == count * 4).then_some(Codes { blocks, norms, scales, block_size })
    }

    /// The number of slots.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.norms.len() / 4
    }

    /// Asks the CPU to fetch the codes of the slots `lanes` covers (whole
    /// blocks of them) into its caches.
    #[inline]
    pub fn prefetch(&self, lanes: std::ops::Range<usize>) {
        let blocks = lanes.start / BLOCK..lanes.end.div_ceil(BLOCK);
        let bytes = &self.blocks[blocks.start * self.block_size..blocks.end * self.block_size];
        crate::kernels::prefetch(bytes, bytes.len().div_ceil(64));
        for factors in [self.norms, self.scales] {
            let bytes = &factors[lanes.start * 4..lanes.end * 4];
            crate::kernels::prefetch(bytes, bytes.len().div_ceil(64));
        }
    }

    /// The 4-bit pieces of slot `at`'s code, group by group, and its factors.
    fn pieces(&self, at: usize) -> (impl Iterator<Item = u8> + '_, [f32; 2]) {
        let block = &self.blocks[at / BLOCK * self.block_size..][..self.block_size];
        let (byte, shift) = (at % 16, 4 * (at % BLOCK / 16));
        let factor = |bytes: &[u8]| bytemuck::pod_read_unaligned(&bytes[at * 4..at * 4 + 4]);
        (block.chunks_exact(16).map(move |row| row[byte] >> shift & 15), [factor(self.norms), factor(self.scales)])
    }

    /// Copies the code of slot `from` to slot `to` of `section`, the code
    /// section of a chunk of `count` slots (zeroed where no code was written).
    pub fn copy_to(&self, from: usize, section: &mut [u8], count: usize, to: usize) {
        let (pieces, factors) = self.pieces(from);
        put(section, self.block_size, count, to, pieces, factors);
    }

    /// The sign bits of slot `at` (dimension `i` in bit `i % 8` of byte
    /// `i / 8`, `groups / 2` bytes) and its factors.
    pub fn code(&self, at: usize) -> (Vec<u8>, [f32; 2]) {
        let (pieces, factors) = self.pieces(at);
        let mut bits = vec![0u8; self.block_size / 32];
        for (group, piece) in pieces.enumerate() {
            bits[group / 2] |= piece << (4 * (group % 2));
        }
        (bits, factors)
    }
}

/// Writes a code's 4-bit pieces and factors `(|r|², s)` as slot `at` of
/// `section`, the code section of a chunk of `count` slots (zeroed where no
/// code was written).
fn put(
    section: &mut [u8],
    block_size: usize,
    count: usize,
    at: usize,
    pieces: impl Iterator<Item = u8>,
    factors: [f32; 2],
) {
    let (blocks, rest) = section.split_at_mut(count.div_ceil(BLOCK) * block_size);
    let block = &mut blocks[at / BLOCK * block_size..][..block_size];
    let (byte, shift) = (at % 16, 4 * (at % BLOCK / 16));
    for (row, piece) in block.chunks_exact_mut(16).zip(pieces) {
        row[byte] |= piece << shift;
    }
    let (norms, scales) = rest.split_at_mut(count * 4);
    norms[at * 4..at * 4 + 4].copy_from_slice(&factors[0].to_le_bytes());
    scales[at * 4..at * 4 + 4].copy_from_slice(&factors[1].to_le_bytes());
}

/// Writes codes into a chunk's code section.
pub(crate) struct CodeWriter<'c> {
    codebook: &'c Codebook,
    vector: Vec<f32>,
    rotated: Vec<f32>,
}

impl<'c> CodeWriter<'c> {
    pub fn new(codebook: &'c Codebook) -> CodeWriter<'c> {
        CodeWriter { codebook, vector: Vec::new(), rotated: Vec::new() }
    }

    /// Writes the code of `leaf` as slot `at` of `section`, the code section
    /// of a chunk of `count` slots (zeroed where no code was written).
    pub fn write<D: Distance>(&mut self, leaf: &Leaf<'_, D>, section: &mut [u8], count: usize, at: usize) {
        let mut vector = std::mem::take(&mut self.vector);
        D::code_vector(leaf, &mut vector);
        self.write_vector(&vector, section, count, at);
        self.vector = vector;
    }

    /// Writes the code of `vector`, in the coordinates of the codes (a
    /// centroid), as slot `at` of `section`, as [`CodeWriter::write`] does.
    pub fn write_vector(&mut self, vector: &[f32], section: &mut [u8], count: usize, at: usize) {
        let (norm2, scale) = self.codebook.rotate(vector, &mut self.rotated);
        let pieces = self
            .rotated
            .chunks(4)
            .map(|values| values.iter().enumerate().fold(0u8, |piece, (k, v)| piece | u8::from(*v > 0.0) << k));
        put(section, block_size(self.codebook.dimensions()), count, at, pieces, [norm2, scale]);
    }
}

/// A query prepared for estimates from codes: a byte table per group.
#[derive(Debug, Clone)]
pub(crate) struct CodeQuery {
    /// 16 bytes per group: the quantised `Σ ±y'_i` of each 4-bit piece.
    tables: Vec<u8>,
    /// An estimate is `a |r|² + b − s (c Σ + d)`, `Σ` the tables' sum.
    affine: [f32; 4],
    /// Its error is at most `e √max(d s² − |r|², 0) + f s`: the first term
    /// RaBitQ's bound, the second the tables' rounding.
    error: [f32; 2],
    dimensions: f32,
}

impl CodeQuery {
    /// Prepares `query` (in code space) for `codebook`'s codes.
    pub fn new(space: CodeSpace, codebook: &Codebook, query: &[f32]) -> CodeQuery {
        let mut y: Vec<f32> = match space {
            CodeSpace::Euclidean | CodeSpace::Cosine => {
                query.iter().zip(&codebook.centre).map(|(q, c)| q - c).collect()
            }
            CodeSpace::Dot => query.to_vec(),
        };
        let constant = match space {
            CodeSpace::Euclidean | CodeSpace::Cosine => y.iter().map(|v| v * v).sum(),
            CodeSpace::Dot => query.iter().zip(&codebook.centre).map(|(q, c)| q * c).sum(),
        };
        let length = y.iter().map(|v| v * v).sum::<f32>().sqrt();
        let dimensions = y.len() as f32;
        codebook.rotation.apply(&mut y);
        let groups = groups(y.len());
        y.resize(groups * 4, 0.0);
        let ranges: Vec<f32> = y.chunks_exact(4).map(|g| 2.0 * g.iter().map(|v| v.abs()).sum::<f32>()).collect();
        let widest = ranges.iter().copied().fold(0.0f32, f32::max);
        let step = if widest > 0.0 { widest / 255.0 } else { 1.0 };
        let mut tables = vec![0u8; groups * 16];
        let mut offset = 0.0;
        for (group, values) in y.chunks_exact(4).enumerate() {
            let lowest = -values.iter().map(|v| v.abs()).sum::<f32>();
            offset += lowest;
            for piece in 0..16u8 {
                let value: f32 =
                    values.iter().enumerate().map(|(k, v)| if piece >> k & 1 == 1 { *v } else { -v }).sum();
                tables[group * 16 + piece as usize] = ((value - lowest) / step).round().clamp(0.0, 255.0) as u8;
            }
        }
        // ⟨r, y⟩ ≈ s (step Σ + offset); see the module's identities. Its
        // error is at most |y| √(d s² − |r|²) ε₀/√(d − 1), and the tables
        // add up to `groups` roundings of half a step, about
        // step √(groups / 12) in all, counted thrice.
        let bound = length * ERROR_BOUND / (dimensions - 1.0).max(1.0).sqrt();
        let rounding = step * (groups as f32 * 0.75).sqrt();
        let (affine, error) = match space {
            CodeSpace::Euclidean => ([1.0, constant, 2.0 * step, 2.0 * offset], [2.0 * bound, 2.0 * rounding]),
            CodeSpace::Cosine => ([0.5, constant / 2.0, step, offset], [bound, rounding]),
            CodeSpace::Dot => ([0.0, -constant, step, offset], [bound, rounding]),
        };
        CodeQuery { tables, affine, error, dimensions }
    }

    /// The estimated internal distances to the slots of block `block` of
    /// `codes`, and the most they can be off by (w.h.p.), into `estimates`
    /// and `errors` (slots past the end of the chunk get garbage).
    #[inline]
    pub fn estimate_block(
        &self,
        codes: &Codes<'_>,
        block: usize,
        estimates: &mut [f32; BLOCK],
        errors: &mut [f32; BLOCK],
    ) {
        let bytes = &codes.blocks[block * codes.block_size..][..codes.block_size];
        let sums = kernels::fastscan(bytes, &self.tables);
        let first = block * BLOCK * 4;
        let norms = codes.norms.get(first..).unwrap_or_default();
        let scales = codes.scales.get(first..).unwrap_or_default();
        let ([a, b, c, d], [e, f]) = (self.affine, self.error);
        let factors = norms.chunks_exact(4).zip(scales.chunks_exact(4));
        for (((estimate, error), sum), (norm2, scale)) in
            estimates.iter_mut().zip(errors.iter_mut()).zip(sums).zip(factors)
        {
            let norm2: f32 = bytemuck::pod_read_unaligned(norm2);
            let scale: f32 = bytemuck::pod_read_unaligned(scale);
            *estimate = a * norm2 + b - scale * (c * sum as f32 + d);
            *error = e * (self.dimensions * scale * scale - norm2).max(0.0).sqrt() + f * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::distances::Euclidean;
    use crate::vector::UnalignedF32;

    fn dataset(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let centre: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        (0..n).map(|_| centre.iter().map(|c| c + rng.random_range(-0.5f32..0.5)).collect()).collect()
    }

    fn leaves(items: &[Vec<f32>]) -> Vec<Leaf<'_, Euclidean>> {
        items.iter().map(|item| Leaf { header: (), vector: UnalignedF32::from_slice(item) }).collect()
    }

    fn codebook(items: &[Vec<f32>], seed: u64) -> Codebook {
        Codebook::of(items[0].len(), leaves(items).iter(), seed)
    }

    /// The code section of `items`, as a chunk stores it.
    fn section(codebook: &Codebook, items: &[Vec<f32>]) -> Vec<u8> {
        let d = codebook.dimensions();
        let mut section = vec![0u8; section_size(d, items.len())];
        let mut writer = CodeWriter::new(codebook);
        for (at, leaf) in leaves(items).iter().enumerate() {
            writer.write(leaf, &mut section, items.len(), at);
        }
        section
    }

    /// Every estimate, with its error bound.
    fn estimates(query: &CodeQuery, codes: &Codes<'_>) -> (Vec<f32>, Vec<f32>) {
        let (mut all, mut bounds) = (Vec::new(), Vec::new());
        let (mut estimates, mut errors) = ([0.0; BLOCK], [0.0; BLOCK]);
        for block in 0..codes.len().div_ceil(BLOCK) {
            query.estimate_block(codes, block, &mut estimates, &mut errors);
            all.extend_from_slice(&estimates);
            bounds.extend_from_slice(&errors);
        }
        all.truncate(codes.len());
        bounds.truncate(codes.len());
        (all, bounds)
    }

    #[test]
    fn estimates_track_exact_euclidean_distances() {
        let d = 200;
        let items = dataset(2_000, d, 1);
        let codebook = codebook(&items, 9);
        let section = section(&codebook, &items);
        let codes = Codes::new(&section, d, items.len()).unwrap();
        // At the centre, an estimate is `|r|²` plus the table's rounding.
        let query = CodeQuery::new(CodeSpace::Euclidean, &codebook, &codebook.centre.clone());
        let norm2 = |v: &[f32]| v.iter().zip(&codebook.centre).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
        let (found, _) = estimates(&query, &codes);
        assert!((found[3] - norm2(&items[3])).abs() < 1e-3 * norm2(&items[3]), "{} {}", found[3], norm2(&items[3]));
        // Against a query, the exact nearest item is among the 40 best
        // estimates, and estimates are off by a few percent on average.
        for q in dataset(5, d, 2) {
            let query = CodeQuery::new(CodeSpace::Euclidean, &codebook, &q);
            let exact: Vec<f32> =
                items.iter().map(|v| v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum()).collect();
            let (found, errors) = estimates(&query, &codes);
            // The error is close to normal, and ε₀ = 1.9 standard
            // deviations leaves about 6% of estimates outside their bound.
            let outside = (0..items.len()).filter(|&i| (found[i] - exact[i]).abs() > errors[i]).count();
            assert!(outside <= items.len() * 8 / 100, "{outside} of {} estimates outside their bound", items.len());
            let nearest = (0..items.len()).min_by(|&a, &b| exact[a].total_cmp(&exact[b])).unwrap();
            let rank = (0..items.len()).filter(|&i| found[i] < found[nearest]).count();
            assert!(rank < 40, "the nearest item ranks {rank} by its estimate");
            let error: f32 = (0..items.len()).map(|i| (found[i] - exact[i]).abs() / exact[i]).sum::<f32>() / 2_000.0;
            assert!(error <= 0.1, "mean relative error {error}");
        }
    }

    #[test]
    fn codes_read_back_their_signs() {
        let d = 13;
        let items = dataset(70, d, 3);
        let codebook = codebook(&items, 4);
        let section = section(&codebook, &items);
        let codes = Codes::new(&section, d, items.len()).unwrap();
        assert!(Codes::new(&section[1..], d, items.len()).is_none());
        let mut rotated = Vec::new();
        for (at, item) in items.iter().enumerate() {
            let (norm2, scale) = codebook.rotate(item, &mut rotated);
            let mut bits = vec![0u8; groups(d) / 2];
            rotated.iter().enumerate().for_each(|(i, v)| bits[i / 8] |= u8::from(*v > 0.0) << (i % 8));
            assert_eq!(codes.code(at), (bits, [norm2, scale]), "slot {at}");
        }
    }

    #[test]
    fn codebooks_round_trip_and_refuse_bad_bytes() {
        let codebook = Codebook::new(5, vec![0.5, -1.0, 2.0]);
        let mut bytes = Vec::new();
        codebook.encode_into(&mut bytes);
        assert_eq!(Codebook::decode(&bytes), Ok(codebook));
        assert!(Codebook::decode(&bytes[..7]).is_err());
        assert!(Codebook::decode(&bytes[..10]).is_err());
        bytes[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(Codebook::decode(&bytes).is_err());
    }
}
