//! The binary-quantized distances next to the `f32` distances they
//! approximate: build time, peak memory, size on disk, and recall@10 against
//! the exact `f32` neighbours with single-threaded queries per second over a
//! sweep of `search_k`.
//!
//! ```text
//! cargo bench --bench quantized                               # generated 50k x 768, clustered and low-rank
//! cargo bench --bench quantized -- --data ../shared/data/siftsmall
//! cargo bench --bench quantized -- --data vectors.npy
//! ```
//!
//! Hamming is measured against the exact cosine neighbours (the signs of a
//! vector keep its direction). Each run happens in a child process of its
//! own; results print as Markdown tables, then as JSON lines.

#[path = "../examples/support/mod.rs"]
mod support;

/// Each quantized distance after the `f32` distance it approximates.
const METRICS: [&str; 7] = [
    "euclidean",
    "binary-quantized-euclidean",
    "cosine",
    "binary-quantized-cosine",
    "hamming",
    "manhattan",
    "binary-quantized-manhattan",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::bench_main(|args| {
        let datasets: Vec<Vec<String>> = if args.iter().any(|a| a == "--data") {
            vec![args.to_vec()]
        } else {
            ["clustered", "low-rank"]
                .iter()
                .map(|generator| {
                    ["--generator", generator, "--n", "50000", "--dimensions", "768"]
                        .iter()
                        .map(|s| s.to_string())
                        .chain(args.iter().cloned())
                        .collect()
                })
                .collect()
        };
        let mut runs = Vec::new();
        for dataset in datasets {
            for metric in METRICS {
                runs.push(dataset.iter().cloned().chain(["--metric".to_string(), metric.to_string()]).collect());
            }
        }
        runs
    })
}
