//! Benchmark data for the examples and benches: TEXMEX folders, `.npy`
//! files, or generated clustered vectors, with exact ground truth.

#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Row-major vectors of one length.
pub struct Vectors {
    pub dimensions: usize,
    pub values: Vec<f32>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.values.len() / self.dimensions
    }

    pub fn get(&self, i: usize) -> &[f32] {
        &self.values[i * self.dimensions..(i + 1) * self.dimensions]
    }

    /// The first `n` vectors.
    pub fn clone_prefix(&self, n: usize) -> Vectors {
        Vectors { dimensions: self.dimensions, values: self.values[..n * self.dimensions].to_vec() }
    }
}

/// Base vectors, queries and, when known, the exact neighbours of each query.
pub struct Dataset {
    pub name: String,
    pub base: Vectors,
    pub queries: Vectors,
    pub ground_truth: Option<Vec<Vec<u32>>>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn read_vecs(path: &Path, mut row: impl FnMut(&[u8])) -> io::Result<usize> {
    let bytes = fs::read(path)?;
    let mut at = 0;
    let mut dimensions = 0;
    while at < bytes.len() {
        let head: [u8; 4] = bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid(format!("{}: truncated", path.display())))?;
        let d = i32::from_le_bytes(head) as usize;
        if dimensions != 0 && d != dimensions || d == 0 {
            return Err(invalid(format!("{}: rows of {d} and {dimensions} values", path.display())));
        }
        dimensions = d;
        let end = at + 4 + 4 * d;
        row(bytes.get(at + 4..end).ok_or_else(|| invalid(format!("{}: truncated row", path.display())))?);
        at = end;
    }
    Ok(dimensions)
}

/// Reads an `.fvecs` file.
pub fn read_fvecs(path: &Path) -> io::Result<Vectors> {
    let mut values = Vec::new();
    let dimensions = read_vecs(path, |row| {
        values.extend(row.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
    })?;
    Ok(Vectors { dimensions, values })
}

/// Reads an `.ivecs` file.
pub fn read_ivecs(path: &Path) -> io::Result<Vec<Vec<u32>>> {
    let mut rows = Vec::new();
    read_vecs(path, |row| {
        rows.push(row.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    })?;
    Ok(rows)
}

/// Reads a TEXMEX folder: `base.fvecs`, `query.fvecs` and, if present,
/// `gt_{metric}.ivecs` (or the classic `groundtruth.ivecs` for Euclidean).
pub fn read_texmex(dir: &Path, metric: &str) -> io::Result<Dataset> {
    let base = read_fvecs(&dir.join("base.fvecs"))?;
    let queries = read_fvecs(&dir.join("query.fvecs"))?;
    if base.dimensions != queries.dimensions {
        return Err(invalid(format!("base has {} dimensions, queries {}", base.dimensions, queries.dimensions)));
    }
    let gt = [format!("gt_{metric}.ivecs"), "groundtruth.ivecs".to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| path.exists() && (metric == "euclidean" || !path.ends_with("groundtruth.ivecs")));
    let ground_truth = gt.map(|path| read_ivecs(&path)).transpose()?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dataset { name, base, queries, ground_truth })
}

/// Reads a 2-D little-endian `float32` `.npy` file in C order.
pub fn read_npy(path: &Path) -> io::Result<Vectors> {
    let bytes = fs::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(invalid(format!("{}: not a .npy file", path.display())));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len).unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(invalid(format!("{}: only C-order <f4 arrays are read, found {header}", path.display())));
    }
    let shape = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).unwrap_or_default();
    let dims: Vec<usize> = shape.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let [n, dimensions] = dims[..] else { return Err(invalid(format!("{}: not a 2-D array", path.display()))) };
    let data = &bytes[start + header_len..];
    if data.len() != n * dimensions * 4 {
        return Err(invalid(format!("{}: {} bytes for shape ({n}, {dimensions})", path.display(), data.len())));
    }
    Ok(Vectors {
        dimensions,
        values: data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    })
}

/// Reads `base` from an `.npy` file and takes `n_queries` of its rows,
/// removed from the base, as queries.
pub fn read_npy_dataset(path: &Path, n_queries: usize, seed: u64) -> io::Result<Dataset> {
    let all = read_npy(path)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picked = vec![false; all.len()];
    let mut queries = Vec::new();
    while queries.len() < n_queries.min(all.len() / 2) * all.dimensions {
        let i = rng.random_range(0..all.len());
        if !std::mem::replace(&mut picked[i], true) {
            queries.extend_from_slice(all.get(i));
        }
    }
    let base = (0..all.len()).filter(|&i| !picked[i]).flat_map(|i| all.get(i).iter().copied()).collect();
    let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dataset {
        name,
        base: Vectors { dimensions: all.dimensions, values: base },
        queries: Vectors { dimensions: all.dimensions, values: queries },
        ground_truth: None,
    })
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `n` vectors around `n / 1000 + 10` random centres, and queries drawn the
/// same way: the shape of real embeddings, not uniform noise.
pub fn clustered(n: usize, n_queries: usize, dimensions: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_centres = n / 1000 + 10;
    let centres: Vec<f32> = (0..n_centres * dimensions).map(|_| gaussian(&mut rng)).collect();
    let mut draw = |count: usize| {
        let mut values = Vec::with_capacity(count * dimensions);
        for _ in 0..count {
            let c = rng.random_range(0..n_centres);
            let spread = rng.random_range(0.2..0.6);
            for d in 0..dimensions {
                values.push(centres[c * dimensions + d] + spread * gaussian(&mut rng));
            }
        }
        Vectors { dimensions, values }
    };
    let base = draw(n);
    let queries = draw(n_queries);
    Dataset { name: format!("clustered-{n}x{dimensions}"), base, queries, ground_truth: None }
}

/// `n` unit vectors shaped like sentence embeddings: topics, each with
/// subtopics, in a space of 64 latent directions mapped into `dimensions`
/// by a fixed random matrix, plus noise in every dimension, normalised.
/// About `n / 400` subtopics (1M items: 2,500) whose spreads exceed the
/// distances between them, so that neighbourhoods overlap as real ones do:
/// as on pypi-minilm, the nearest neighbour is not much nearer than the
/// hundredth (cosine distance about 0.4 against 0.57 at 40k items), and
/// the trees find about as few of the neighbours. Queries are drawn the same
/// way.
pub fn embeddings(n: usize, n_queries: usize, dimensions: usize, seed: u64) -> Dataset {
    const LATENT: usize = 64;
    let mut rng = StdRng::seed_from_u64(seed);
    let map: Vec<f32> = (0..dimensions * LATENT).map(|_| gaussian(&mut rng) / (LATENT as f32).sqrt()).collect();
    let n_topics = (n / 20_000).clamp(8, 200);
    let n_centres = (n / 400).max(n_topics);
    let topics: Vec<f32> = (0..n_topics * LATENT).map(|_| gaussian(&mut rng)).collect();
    let mut centres = Vec::with_capacity(n_centres * LATENT);
    let mut spreads = Vec::with_capacity(n_centres);
    for _ in 0..n_centres {
        let topic = rng.random_range(0..n_topics);
        centres.extend((0..LATENT).map(|l| topics[topic * LATENT + l] + gaussian(&mut rng)));
        spreads.push(rng.random_range(0.7f32..1.6));
    }
    let noise = 0.35 / (dimensions as f32).sqrt();
    let mut draw = |count: usize| {
        let mut values = Vec::with_capacity(count * dimensions);
        let mut latent = [0.0f32; LATENT];
        for _ in 0..count {
            let c = rng.random_range(0..n_centres);
            for (l, z) in latent.iter_mut().enumerate() {
                *z = centres[c * LATENT + l] + spreads[c] * gaussian(&mut rng);
            }
            let start = values.len();
            for row in map.chunks_exact(LATENT) {
                let x: f32 = row.iter().zip(&latent).map(|(m, z)| m * z).sum();
                values.push(x / (LATENT as f32).sqrt() + noise * gaussian(&mut rng));
            }
            let norm = values[start..].iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            values[start..].iter_mut().for_each(|x| *x /= norm);
        }
        Vectors { dimensions, values }
    };
    let base = draw(n);
    let queries = draw(n_queries);
    Dataset { name: format!("embeddings-{n}x{dimensions}"), base, queries, ground_truth: None }
}

/// `n` vectors that vary along only 32 latent directions, mapped into
/// `dimensions` by a fixed random matrix, plus a little noise in every
/// dimension: the low intrinsic dimension of model embeddings, whose values
/// are centred on zero.
pub fn low_rank(n: usize, n_queries: usize, dimensions: usize, seed: u64) -> Dataset {
    const LATENT: usize = 32;
    let mut rng = StdRng::seed_from_u64(seed);
    let map: Vec<f32> = (0..dimensions * LATENT).map(|_| gaussian(&mut rng) / (LATENT as f32).sqrt()).collect();
    let mut draw = |count: usize| {
        let mut values = Vec::with_capacity(count * dimensions);
        let mut latent = [0.0f32; LATENT];
        for _ in 0..count {
            latent.iter_mut().for_each(|z| *z = gaussian(&mut rng));
            for row in map.chunks_exact(LATENT) {
                let x: f32 = row.iter().zip(&latent).map(|(m, z)| m * z).sum();
                values.push(x + 0.1 * gaussian(&mut rng));
            }
        }
        Vectors { dimensions, values }
    };
    let base = draw(n);
    let queries = draw(n_queries);
    Dataset { name: format!("low-rank-{n}x{dimensions}"), base, queries, ground_truth: None }
}

/// The distance of the metric named, smaller is closer.
pub fn exact_distance(metric: &str, a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    match metric {
        "euclidean" => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        "manhattan" => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
        "cosine" => {
            let norms = (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt();
            if norms > 0.0 { 1.0 - dot / norms } else { 1.0 }
        }
        "dot-product" => -dot,
        other => panic!("unknown metric {other}"),
    }
}

/// The exact `k` nearest base vectors of every query, computed in parallel.
pub fn brute_force(dataset: &Dataset, metric: &str, k: usize) -> Vec<Vec<u32>> {
    use rayon::prelude::*;
    (0..dataset.queries.len())
        .into_par_iter()
        .map(|q| {
            let query = dataset.queries.get(q);
            let mut scored: Vec<(f32, u32)> = (0..dataset.base.len())
                .map(|i| (exact_distance(metric, query, dataset.base.get(i)), i as u32))
                .collect();
            let k = k.min(scored.len());
            if k > 0 {
                scored.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            }
            scored.truncate(k);
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// The share of the true `k` nearest found among `found`, averaged over queries.
pub fn recall_at(k: usize, truth: &[Vec<u32>], found: &[Vec<u32>]) -> f64 {
    let mut hits = 0usize;
    for (truth, found) in truth.iter().zip(found) {
        let truth = &truth[..k.min(truth.len())];
        hits += found.iter().take(k).filter(|id| truth.contains(id)).count();
    }
    hits as f64 / (k * truth.len()).max(1) as f64
}
