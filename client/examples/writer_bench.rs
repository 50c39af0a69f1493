//! Benchmark of one `EpochWriter`: how many epochs per second (8 metrics
//! each) it sustains against a server, and how long `log` takes on the
//! caller's side.
//!
//! Two phases, each on a fresh model:
//! 1. **saturated**: log as fast as possible, then `close()`; the rate is
//!    epochs / (first `log` → `close()` returned), and `log` latencies
//!    include the waits of backpressure once the buffer is full;
//! 2. **paced**: log at a fixed rate well under the server's, so `log`
//!    never waits for room: its latencies are the writer's own cost.
//!
//! ```sh
//! cargo build --release -p mlmeta-server -p mlmeta-client --example writer_bench
//! target/release/mlmeta-server --database-url sqlite:///tmp/bench.db --listen 127.0.0.1:50061 &
//! target/release/examples/writer_bench http://127.0.0.1:50061 1000000 20000
//! ```
//! Arguments: server URL, epochs of the saturated phase (default
//! 1,000,000), rate of the paced phase in epochs/s (default 20,000; it
//! runs for 3 s).

use std::error::Error;
use std::time::{Duration, Instant};

use mlmeta_client::{Client, DataBlob, EpochWriter, Model, ModelTemplate};
use serde_json::json;

const METRICS: [&str; 8] = [
    "loss",
    "val_loss",
    "accuracy",
    "val_accuracy",
    "learning_rate",
    "grad_norm",
    "epoch_seconds",
    "samples_per_second",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let epochs: i64 = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let paced_rate: u64 = args.next().map_or(Ok(20_000), |n| n.parse())?;

    let client = Client::connect(&url).await?;
    let run = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    client
        .put_datablob(&DataBlob::new(format!("{run}-data"), "bench", json!({})), true)
        .await?;
    client
        .put_model_template(
            &ModelTemplate::new(format!("{run}-tmpl"), "bench", json!({})),
            true,
        )
        .await?;

    // Phase 1: saturated.
    let writer = new_writer(&client, &run, "saturated").await?;
    let mut latencies = Vec::with_capacity(usize::try_from(epochs)?);
    let start = Instant::now();
    for i in 0..epochs {
        let metrics = metrics(i);
        let before = Instant::now();
        writer.log(i, metrics).await?;
        latencies.push(before.elapsed());
    }
    let logged_in = start.elapsed();
    let counts = writer.close().await?;
    let elapsed = start.elapsed();
    println!("saturated: {epochs} epochs x 8 metrics, one writer (batch 1,000, buffer 10,000)");
    println!(
        "  logged in {:.2} s, all stored after {:.2} s: {:.0} epochs/s sustained ({} inserted, {} skipped)",
        logged_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        epochs as f64 / elapsed.as_secs_f64(),
        counts.inserted,
        counts.skipped
    );
    print_latencies("  log() incl. backpressure", &mut latencies);

    // Phase 2: paced, in steps of 1 ms.
    let writer = new_writer(&client, &run, "paced").await?;
    let per_ms = (paced_rate / 1_000).max(1);
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut i = 0_i64;
    while start.elapsed() < Duration::from_secs(3) {
        ticker.tick().await;
        for _ in 0..per_ms {
            let metrics = metrics(i);
            let before = Instant::now();
            writer.log(i, metrics).await?;
            latencies.push(before.elapsed());
            i += 1;
        }
    }
    let counts = writer.close().await?;
    println!(
        "paced: {i} epochs at ~{paced_rate}/s over 3 s ({} inserted, {} skipped)",
        counts.inserted, counts.skipped
    );
    print_latencies("  log() without backpressure", &mut latencies);
    Ok(())
}

async fn new_writer(client: &Client, run: &str, phase: &str) -> Result<EpochWriter, Box<dyn Error>> {
    let name = format!("{run}-{phase}");
    let model = Model::new(&name, "Bench", format!("{run}-data"), format!("{run}-tmpl"));
    client.put_model(&model, true).await?;
    Ok(client.epoch_writer(name)?)
}

/// The 8 metrics of epoch `i`, built before the timed `log` call.
fn metrics(i: i64) -> [(&'static str, f64); 8] {
    let x = i as f64;
    let mut values = [0.0; 8];
    for (k, value) in values.iter_mut().enumerate() {
        *value = (x + 1.0).ln() * (k as f64 + 1.0) + 1e-3;
    }
    let mut out = [("", 0.0); 8];
    for (slot, (name, value)) in out.iter_mut().zip(METRICS.iter().zip(values)) {
        *slot = (name, value);
    }
    out
}

fn print_latencies(label: &str, latencies: &mut [Duration]) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?} ({} calls)",
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0),
        latencies.len()
    );
}
