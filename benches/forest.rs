//! The forest benchmark: build time, peak memory, size on disk, and recall@10
//! with single-threaded queries per second over a sweep of `search_k`.
//!
//! ```text
//! cargo bench --bench forest                                  # generated 100k x 128 and 50k x 768
//! cargo bench --bench forest -- --data ../shared/data/siftsmall
//! cargo bench --bench forest -- --data vectors.npy --metric cosine
//! ```
//!
//! Each run happens in a child process of its own, so the peak memory it
//! reports belongs to that run alone (its data included). Results print as
//! Markdown tables, then as JSON lines.

#[path = "../examples/support/mod.rs"]
mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::bench_main(|args| {
        if args.iter().any(|a| a == "--data") {
            return vec![args.to_vec()];
        }
        let generated = |n: &str, d: &str| -> Vec<String> {
            ["--n", n, "--dimensions", d].iter().map(|s| s.to_string()).chain(args.iter().cloned()).collect()
        };
        vec![generated("100000", "128"), generated("50000", "768")]
    })
}
