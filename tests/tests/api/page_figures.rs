//! The page's performance figures (issue 17), an ignored test: a release
//! `mlmeta-server` (build it first: `cargo build --release -p
//! mlmeta-server`) on a fresh SQLite file (or PostgreSQL with
//! `MLMETA_FIGURES_DATABASE_URL`), 10,000 models with one epoch each and
//! 20 of them with 10,000 epochs; then, median of 5 after a warm-up:
//!
//! - the first 100-row page of the models table (by name, and by
//!   `last(loss)` with the loss columns), timed by the client over
//!   loopback, so server time plus a loopback round trip;
//! - the compare curves of the 20 models (downsampled, and exact): the
//!   first read, reads again (the server keeps decoded curves), and reads
//!   after one new epoch per model (a compare refreshed while runs train);
//! - in headless Chromium: the models page's first render
//!   (`window.mlmeta.renderMs`, from navigation start) and the compare
//!   page's chart draw (`window.mlmeta.drawMs`).
//!
//! ```text
//! cargo build --release -p mlmeta-server
//! cargo nextest run -p mlmeta-tests --run-ignored only -E 'test(/page_figures/)' --no-capture
//! ```
//!
//! Timings are printed, never asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use mlmeta_tests::browser::Browser;
use mlmeta_tests::http::Get;
use mlmeta_tests::process::{ServerProcess, free_port};
use mlmeta_tests::{calls, records};

const MODELS: usize = 10_000;
const COMPARED: usize = 20;
const EPOCHS: i64 = 10_000;
const RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn timed_get(addr: std::net::SocketAddr, path: &str) -> f64 {
    let _warm = Get::new(addr, path).send().await;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let reply = Get::new(addr, path).send().await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    median(times)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "figures: needs a release server binary and minutes; run by hand"]
async fn page_figures() {
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/mlmeta-server");
    assert!(
        release.is_file(),
        "build it first: cargo build --release -p mlmeta-server"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("MLMETA_FIGURES_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("figures.db").display()));
    let (port, http_port) = (free_port(), free_port());
    let (listen, http_listen) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{http_port}"));
    let release = release.to_string_lossy().into_owned();
    // The harness runs its (debug) binary through a wrapper: this one
    // execs the release binary with the same arguments instead.
    let wrapper = ["sh", "-c", "shift; exec \"$0\" \"$@\"", release.as_str()];
    let args = [
        "--database-url",
        &url,
        "--listen",
        &listen,
        "--http-listen",
        &http_listen,
    ];
    let mut server = ServerProcess::spawn_under(&wrapper, &args, None, port, "warn");
    server.wait_healthy(Duration::from_secs(30)).await.unwrap();
    let addr: std::net::SocketAddr = http_listen.parse().unwrap();

    let seeding = Instant::now();
    let mut client = server.client();
    calls::put_datablob(&mut client, "data", "g", r#"{"rows": 1000}"#).await;
    calls::put_template(&mut client, "net", "g", r#"{"layers": 3}"#).await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..MODELS).step_by(8) {
                calls::put_model(&mut client, &format!("model-{i:05}"), "data", "net").await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for chunk in (0..MODELS).collect::<Vec<_>>().chunks(2_000) {
        let epochs = chunk
            .iter()
            .map(|i| records::epoch(&format!("model-{i:05}"), 1, &[("loss", 1.0 / (*i as f64 + 1.0))]))
            .collect();
        calls::insert_epochs(&mut client, epochs).await;
    }
    let compared: Vec<String> = (0..COMPARED).map(|i| format!("model-{:05}", i * 7)).collect();
    for name in &compared {
        for start in (2..=EPOCHS).step_by(5_000) {
            let epochs = (start..(start + 5_000).min(EPOCHS + 1))
                .map(|e| records::epoch(name, e, &[("loss", 1.0 / e as f64), ("val_loss", 1.5 / e as f64)]))
                .collect();
            calls::insert_epochs(&mut client, epochs).await;
        }
    }
    println!(
        "seeded {MODELS} models, {COMPARED} x {EPOCHS} epochs in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let by_name = timed_get(addr, "/api/v1/projects/default/models?limit=100").await;
    let by_loss = timed_get(
        addr,
        "/api/v1/projects/default/models?limit=100&metrics=loss&sort=last(loss)&order=desc",
    )
    .await;
    let last_page = timed_get(
        addr,
        "/api/v1/projects/default/models?limit=100&offset=9900&metrics=loss",
    )
    .await;
    let models = compared.join(",");
    let compare = format!("/api/v1/projects/default/curves?models={models}&metrics=loss&points=2000");
    // The first read of these models' epochs: nothing has read them yet
    // (later reads find their decoded curves kept by the server).
    let started = Instant::now();
    let reply = Get::new(addr, &compare).send().await;
    let cold = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(reply.status, 200, "{compare}: {}", reply.body);
    let curves = timed_get(addr, &compare).await;
    let exact = timed_get(
        addr,
        &format!("/api/v1/projects/default/curves?models={models}&metrics=loss&exact=1"),
    )
    .await;
    // A compare refreshed while the runs train: one new epoch per model
    // since the previous read.
    let mut refreshed = Vec::new();
    for run in 0..RUNS as i64 {
        let epochs = compared
            .iter()
            .map(|name| records::epoch(name, EPOCHS + 1 + run, &[("loss", 0.5), ("val_loss", 0.75)]))
            .collect();
        calls::insert_epochs(&mut client, epochs).await;
        let started = Instant::now();
        let reply = Get::new(addr, &compare).send().await;
        refreshed.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(reply.status, 200, "{compare}: {}", reply.body);
    }
    let refreshed = median(refreshed);
    println!("FIGURE api models page 1 (100 rows of {MODELS}, by name): {by_name:.2} ms");
    println!("FIGURE api models page 1 (by last(loss) desc, loss columns): {by_loss:.2} ms");
    println!("FIGURE api models page 100 (offset 9900, loss columns): {last_page:.2} ms");
    println!(
        "FIGURE api compare curves {COMPARED} x {EPOCHS}, first read (about 2000 points each): {cold:.2} ms"
    );
    println!(
        "FIGURE api compare curves {COMPARED} x {EPOCHS}, read again (about 2000 points each): {curves:.2} ms"
    );
    println!(
        "FIGURE api compare curves {COMPARED} x {EPOCHS}, after one new epoch per model: {refreshed:.2} ms"
    );
    println!("FIGURE api compare curves {COMPARED} x {EPOCHS} (exact=1): {exact:.2} ms");

    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let base = format!("http://{http_listen}");
    let mut render = Vec::new();
    let mut render_metrics = Vec::new();
    for i in 0..=RUNS {
        browser.client.goto(&format!("{base}/")).await.unwrap();
        browser.wait_ready("models", "true").await;
        let ms = browser
            .js("return window.mlmeta.renderMs;", vec![])
            .await
            .as_f64()
            .unwrap();
        browser
            .client
            .goto(&format!("{base}/?metrics=loss&sort=last(loss)&order=desc"))
            .await
            .unwrap();
        browser.wait_ready("models", "true").await;
        let with_metrics = browser
            .js("return window.mlmeta.renderMs;", vec![])
            .await
            .as_f64()
            .unwrap();
        if i > 0 {
            render.push(ms);
            render_metrics.push(with_metrics);
        }
    }
    let mut draw = Vec::new();
    let mut compare_render = Vec::new();
    for i in 0..=RUNS {
        browser
            .client
            .goto(&format!("{base}/compare?models={models}&metric=loss"))
            .await
            .unwrap();
        browser.wait_ready("compare", "true").await;
        let times = browser
            .js("return [window.mlmeta.drawMs, window.mlmeta.renderMs];", vec![])
            .await;
        if i > 0 {
            draw.push(times[0].as_f64().unwrap());
            compare_render.push(times[1].as_f64().unwrap());
        }
    }
    browser.screenshot("compare-20-models").await;
    println!(
        "FIGURE browser models page first render (navigation start to table drawn): {:.1} ms",
        median(render)
    );
    println!(
        "FIGURE browser models page first render, sorted by last(loss) with loss columns: {:.1} ms",
        median(render_metrics)
    );
    println!(
        "FIGURE browser compare {COMPARED} x {EPOCHS}: chart draw {:.1} ms",
        median(draw)
    );
    println!(
        "FIGURE browser compare {COMPARED} x {EPOCHS}: navigation start to drawn {:.1} ms",
        median(compare_render)
    );
    browser.quit().await;
}
