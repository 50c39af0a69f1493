//! Latency of single calls through the client: one-epoch inserts (a
//! write) and current-epoch lookups (a read), one call at a time, so the
//! cost of TLS and token checks shows against a plain server.
//!
//! ```sh
//! cargo build --release -p mlmeta-server -p mlmeta-client --example call_latency
//! target/release/mlmeta-server --database-url sqlite:///tmp/lat.db --listen 127.0.0.1:50061 &
//! target/release/examples/call_latency http://127.0.0.1:50061 2000
//! # against a server with TLS and tokens:
//! MLMETA_CA_CERT=ca.pem MLMETA_TOKEN=mlm_... target/release/examples/call_latency https://127.0.0.1:50062 2000
//! ```
//! Arguments: server URL, calls of each kind (default 2,000). The
//! variables `MLMETA_TOKEN` and `MLMETA_CA_CERT` are used when set.

use std::error::Error;
use std::time::{Duration, Instant};

use mlmeta_client::{Client, DataBlob, Model, ModelTemplate, NewEpoch};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let calls: i64 = args.next().map_or(Ok(2_000), |n| n.parse())?;

    let mut builder = Client::builder(&url);
    if let Ok(token) = std::env::var("MLMETA_TOKEN") {
        builder = builder.token(token);
    }
    if let Ok(ca) = std::env::var("MLMETA_CA_CERT") {
        builder = builder.ca_certificate_file(ca);
    }
    let client = builder.connect().await?;
    let model = format!("latency-{}", std::process::id());
    client
        .put_datablob(&DataBlob::new(format!("{model}-data"), "bench", json!({})), true)
        .await?;
    client
        .put_model_template(
            &ModelTemplate::new(format!("{model}-tmpl"), "bench", json!({})),
            true,
        )
        .await?;
    let record = Model::new(&model, "Net", format!("{model}-data"), format!("{model}-tmpl"));
    client.put_model(&record, true).await?;

    let mut writes = Vec::with_capacity(calls as usize);
    for n in 0..calls {
        let epoch = NewEpoch::new(n, [("loss", 1.0 / (n + 1) as f64), ("val_accuracy", 0.5)]);
        let started = Instant::now();
        client.insert_epochs(&model, [epoch]).await?;
        writes.push(started.elapsed());
    }
    let mut reads = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let started = Instant::now();
        client.current_epoch(&model).await?;
        reads.push(started.elapsed());
    }
    println!("url {url}, {calls} calls each");
    report("insert 1 epoch", &mut writes);
    report("current epoch", &mut reads);
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:>16}: p50 {:>7.1} µs   p99 {:>7.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}
