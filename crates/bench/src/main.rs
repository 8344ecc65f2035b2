//! `llmxt-bench`: the measurements behind docs/benchmarks.md (run through scripts/bench.sh).
//!
//!   llmxt-bench init  --bin-dir DIR [--runs N] [--node DIR]   init time, exec → first `next`
//!   llmxt-bench instructions --bin-dir DIR                    init instruction count (callgrind)
//!   llmxt-bench warm  [--iterations N]                        handler latency vs its SDK floor
//!   llmxt-bench rss   --bin-dir DIR [--invocations N]         peak RSS over N invocations
//!   llmxt-bench load  --bin-dir DIR [--seconds S] [--in-flight N]  throughput through local-api
//!   llmxt-bench restore [--iterations N]                      restore answer time, buyer vs not
//!   llmxt-bench usage --bin-dir DIR [--seconds S] [--in-flight N]  reserve/commit latency
//!
//! warm, rss, load and restore need DynamoDB Local at LLMXT_TEST_DYNAMODB_ENDPOINT; restore
//! also the SES emulator at LLMXT_TEST_SES_ENDPOINT.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

mod measure;
mod usage;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number =
        |name: &str, default: usize| option(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let bin_dir = std::path::PathBuf::from(
        option("--bin-dir").unwrap_or_else(|| "target/release".to_owned()),
    );
    match args.first().map(String::as_str) {
        Some("init") => measure::init(&bin_dir, number("--runs", 25), option("--node")).await,
        Some("instructions") => measure::instructions(&bin_dir),
        Some("warm") => measure::warm(number("--iterations", 300)).await,
        Some("rss") => measure::rss(&bin_dir, number("--invocations", 1000)).await,
        Some("usage") => {
            usage::usage(
                &bin_dir,
                number("--seconds", 10) as u64,
                number("--in-flight", 16),
            )
            .await
        }
        Some("restore") => measure::restore(number("--iterations", 200)).await,
        Some("load") => {
            measure::load(
                &bin_dir,
                number("--seconds", 20) as u64,
                number("--in-flight", 16),
            )
            .await
        }
        _ => {
            eprintln!(
                "usage: llmxt-bench init|instructions|warm|rss|load|restore|usage [options] (see the source's header)"
            );
            std::process::exit(2);
        }
    }
}
