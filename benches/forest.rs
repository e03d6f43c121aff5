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

use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().is_some_and(|a| a == "--child") {
        let options = support::Options::parse(args[1..].iter().cloned())?;
        let report = support::measure(&options)?;
        report.print();
        for line in report.json_lines() {
            println!("JSON {line}");
        }
        return Ok(());
    }

    let runs: Vec<Vec<String>> = if args.iter().any(|a| a == "--data") {
        vec![args.clone()]
    } else {
        let generated = |n: &str, d: &str| -> Vec<String> {
            ["--n", n, "--dimensions", d].iter().map(|s| s.to_string()).chain(args.iter().cloned()).collect()
        };
        vec![generated("100000", "128"), generated("50000", "768")]
    };
    let mut json = Vec::new();
    for run in runs {
        let output = Command::new(std::env::current_exe()?).arg("--child").args(&run).output()?;
        if !output.status.success() {
            return Err(format!("run {run:?} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        for line in String::from_utf8(output.stdout)?.lines() {
            match line.strip_prefix("JSON ") {
                Some(object) => json.push(object.to_string()),
                None => println!("{line}"),
            }
        }
    }
    println!("JSON lines:");
    for line in json {
        println!("{line}");
    }
    Ok(())
}
