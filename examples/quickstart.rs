//! Builds an index and measures it: build time, size on disk, recall@10 and
//! single-threaded queries per second over a sweep of `search_k`.
//!
//! ```text
//! cargo run --release --example quickstart                       # 100k x 128 generated
//! cargo run --release --example quickstart -- --data ../shared/data/siftsmall
//! ```
//!
//! Options: `--data DIR` (TEXMEX: base.fvecs, query.fvecs, gt_*.ivecs) or
//! `--data FILE.npy`, `--metric` (any distance's name:
//! `euclidean|cosine|manhattan|dot-product`, or over bits
//! `binary-quantized-euclidean|binary-quantized-cosine|binary-quantized-manhattan|hamming`),
//! `--generator clustered|low-rank`, `--n N`, `--dimensions D`,
//! `--queries Q`, `--trees T`, `--split-after S`, `--seed S`.

mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = support::Options::parse(std::env::args().skip(1))?;
    println!("building and measuring; the exact ground truth is computed first when the data has none");
    support::measure(&options)?.print();
    Ok(())
}
