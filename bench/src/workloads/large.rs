//! `large`: the server's memory under bursts of large inserts. For each
//! count N of `--large-requests` (default 16,64), N InsertEpochs requests
//! of about `--large-mib` MiB each (default 60; epochs of
//! `--large-metrics` metrics, at most 100,000 per request) are sent at
//! once, each on its own connection and for its own model. Reports the
//! server's peak RSS during each burst (reset before it), how many
//! requests succeeded and how many were refused with RESOURCE_EXHAUSTED
//! (anything else is a problem), and checks that each model holds all of
//! its epochs or none.
//!
//! The request bodies are generated while they are sent, 64 KiB at a time,
//! so the harness holds almost nothing of them however large the burst. A
//! watchdog kills the spawned server if its RSS passes `--rss-cap-mib`, so
//! that a server without a memory bound cannot take the machine down; the
//! burst is then reported as over the cap.
//!
//! ```text
//! cargo build --release -p mlmeta-bench -p mlmeta-server
//! target/release/mlmeta-bench --spawn sqlite --workload large
//! target/release/mlmeta-bench --spawn postgres --workload large --large-requests 16,64
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Body as _, Frame};
use mlmeta_proto::{Epoch, GetCurrentEpochRequest, InsertEpochsResponse};
use prost::Message;
use prost::encoding::encode_varint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::codegen::{Service, http};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::BenchResult;
use crate::cli::MAX_BATCH;
use crate::data::setup_models;
use crate::report::Report;
use crate::server::{Target, status_kib};
use crate::workloads::Ctx;

/// Bytes of request body generated per chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// First epoch number of every request: numbers from here to 2^21 - 1 all
/// take three bytes as varints, so every epoch has the same encoded size.
const FIRST_EPOCH: u64 = 1 << 14;

/// How often the watchdog reads the server's RSS.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Longest a burst request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs one burst per count of `--large-requests`.
pub async fn run(ctx: &mut Ctx, target: &Target, report: &mut Report) -> BenchResult<()> {
    for &count in &ctx.args.large_requests.clone() {
        burst(ctx, target, report, count).await?;
    }
    Ok(())
}

/// Sends `count` large requests at once and reports on them.
async fn burst(ctx: &mut Ctx, target: &Target, report: &mut Report, count: usize) -> BenchResult<()> {
    let prefix = format!("large{count}");
    let set = setup_models(&ctx.client, &ctx.tag, &prefix, count, 1).await?;
    let shapes: Vec<RequestShape> = set
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            RequestShape::new(
                name,
                ctx.args.large_metrics,
                ctx.args.large_mib << 20,
                ctx.metrics.seed() ^ i as u64,
            )
        })
        .collect();
    let wire_mib = shapes[0].body_bytes() as f64 / f64::from(1 << 20);
    let epochs = shapes[0].epochs;
    eprintln!(
        "  {count} requests at once, {wire_mib:.1} MiB each ({epochs} epochs of {} metrics)",
        ctx.args.large_metrics
    );
    let label = format!("{count} x {wire_mib:.0} MiB");
    let channels = futures::future::try_join_all((0..count).map(|_| connect(&ctx.url))).await?;

    let rss_before = target.rss_kib();
    let rss_reset = target.reset_peak_rss();
    let watchdog = Watchdog::start(target.pid(), ctx.args.rss_cap_mib << 10);
    let start = Instant::now();
    let outcomes = futures::future::join_all(channels.into_iter().zip(shapes.iter().cloned()).map(
        |(channel, shape)| async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, insert(channel, shape)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Status::deadline_exceeded(
                    "no answer within the harness's timeout",
                )),
            }
        },
    ))
    .await;
    let elapsed = start.elapsed();
    let (watched_max_kib, killed) = watchdog.stop();

    if let Some(kib) = rss_before {
        report.add(
            "large",
            format!("{label}: server RSS before"),
            kib as f64 / 1024.0,
            "MiB",
        );
    }
    let peak = target.peak_rss_kib().filter(|_| rss_reset && !killed);
    match (peak, killed) {
        (_, true) => {
            report.add(
                "large",
                format!("{label}: server RSS at kill (over cap)"),
                watched_max_kib as f64 / 1024.0,
                "MiB",
            );
            report.problem(format!(
                "large {label}: the server passed --rss-cap-mib {} and was killed",
                ctx.args.rss_cap_mib
            ));
            return Ok(());
        }
        (Some(kib), false) => report.add(
            "large",
            format!("{label}: server peak RSS"),
            kib as f64 / 1024.0,
            "MiB",
        ),
        (None, false) => {}
    }
    report.add("large", format!("{label}: wall time"), elapsed.as_secs_f64(), "s");
    // Per request: Some(true) all stored, Some(false) nothing stored, None
    // either (a deadline passed: the insert may still have landed).
    let mut expected = Vec::new();
    let (mut ok, mut exhausted) = (0, 0);
    let mut failures: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (shape, outcome) in shapes.iter().zip(&outcomes) {
        match outcome {
            Ok(response) => {
                ok += 1;
                expected.push(Some(true));
                if response.inserted != shape.epochs {
                    report.problem(format!(
                        "large {label}: {} answered {} inserted, {} skipped, of {} epochs",
                        shape.model, response.inserted, response.skipped, shape.epochs
                    ));
                }
            }
            Err(status) => {
                if status.code() == Code::ResourceExhausted {
                    exhausted += 1;
                    expected.push(Some(false));
                } else {
                    expected.push(None);
                }
                let entry = failures
                    .entry(format!("{:?}", status.code()))
                    .or_insert_with(|| (0, status.message().to_owned()));
                entry.0 += 1;
            }
        }
    }
    report.add("large", format!("{label}: succeeded"), f64::from(ok), "requests");
    report.add(
        "large",
        format!("{label}: RESOURCE_EXHAUSTED"),
        f64::from(exhausted),
        "requests",
    );
    for (code, (count, message)) in &failures {
        eprintln!("  {count} x {code}, e.g.: {message}");
        if code != "ResourceExhausted" {
            report.add("large", format!("{label}: {code}"), *count as f64, "requests");
            report.problem(format!(
                "large {label}: {count} requests failed with {code}: {message}"
            ));
        }
    }
    check_all_or_nothing(ctx, report, &label, &shapes, &expected).await
}

/// Checks with GetCurrentEpoch that each model of a successful request
/// holds its last epoch, each of a refused one nothing, and each of one
/// whose outcome is unknown one or the other.
async fn check_all_or_nothing(
    ctx: &Ctx,
    report: &mut Report,
    label: &str,
    shapes: &[RequestShape],
    expected: &[Option<bool>],
) -> BenchResult<()> {
    let mut client = ctx.client.clone();
    for (shape, &stored) in shapes.iter().zip(expected) {
        let current = client
            .get_current_epoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: shape.model.clone(),
            })
            .await
            .map_err(|s| format!("GetCurrentEpoch {}: {s}", shape.model))?
            .into_inner()
            .current_epoch;
        let fine = match stored {
            Some(true) => current == shape.last_epoch(),
            Some(false) => current == 0,
            None => current == 0 || current == shape.last_epoch(),
        };
        if !fine {
            report.problem(format!(
                "large {label}: {} holds epochs up to {current}, expected {}",
                shape.model,
                match stored {
                    Some(true) => shape.last_epoch().to_string(),
                    Some(false) => "none".to_owned(),
                    None => format!("none or {}", shape.last_epoch()),
                }
            ));
        }
    }
    Ok(())
}

async fn connect(url: &str) -> BenchResult<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?)
}

/// One generated request: `epochs` epochs of `model`, numbered from
/// [`FIRST_EPOCH`], each encoded as the same bytes but for its number.
#[derive(Debug, Clone)]
struct RequestShape {
    model: String,
    epochs: u64,
    /// The epoch's fields but its number (field 2), encoded.
    rest: Bytes,
}

impl RequestShape {
    /// About `target_bytes` of epochs of `model` with `metrics` metrics
    /// whose values are drawn from `seed`.
    fn new(model: &str, metrics: usize, target_bytes: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let epoch = Epoch {
            model_name: model.to_owned(),
            epoch_num: 0,
            metrics: (0..metrics)
                .map(|m| (format!("metric_{m:03}"), rng.random_range(0.001..1.0)))
                .collect(),
            steps_per_epoch: Some(500),
            validation_steps_per_epoch: Some(50),
            recorded_at: None,
        };
        let rest = Bytes::from(epoch.encode_to_vec());
        let mut shape = Self {
            model: model.to_owned(),
            epochs: 1,
            rest,
        };
        let per_epoch = shape.epoch_bytes() as u64;
        shape.epochs = (target_bytes as u64 / per_epoch).clamp(1, MAX_BATCH as u64);
        shape
    }

    /// Encoded length of one epoch inside the request (tag, length, epoch).
    fn epoch_bytes(&self) -> usize {
        let inner = self.inner_len();
        1 + prost::encoding::encoded_len_varint(inner as u64) + inner
    }

    /// Encoded length of the epoch message itself.
    fn inner_len(&self) -> usize {
        1 + prost::encoding::encoded_len_varint(FIRST_EPOCH) + self.rest.len()
    }

    /// Length of the InsertEpochsRequest message.
    fn body_bytes(&self) -> usize {
        self.epoch_bytes() * self.epochs as usize
    }

    fn last_epoch(&self) -> i64 {
        (FIRST_EPOCH + self.epochs - 1) as i64
    }
}

/// The gRPC request body of a [`RequestShape`]: the 5-byte message prefix,
/// then the epochs, generated a chunk at a time as the transport asks.
struct GeneratedBody {
    shape: RequestShape,
    prefix_sent: bool,
    next: u64,
}

impl http_body::Body for GeneratedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let mut chunk = BytesMut::with_capacity(CHUNK_BYTES + this.shape.epoch_bytes());
        if !this.prefix_sent {
            this.prefix_sent = true;
            chunk.put_u8(0);
            chunk.put_u32(u32::try_from(this.shape.body_bytes()).unwrap_or(u32::MAX));
        }
        let inner = this.shape.inner_len() as u64;
        while this.next < this.shape.epochs && chunk.len() < CHUNK_BYTES {
            chunk.put_u8(0x0a);
            encode_varint(inner, &mut chunk);
            chunk.put_u8(0x10);
            encode_varint(FIRST_EPOCH + this.next, &mut chunk);
            chunk.put_slice(&this.shape.rest);
            this.next += 1;
        }
        if chunk.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix_sent && self.next >= self.shape.epochs
    }
}

/// Sends one generated InsertEpochs request and reads its answer.
async fn insert(mut channel: Channel, shape: RequestShape) -> Result<InsertEpochsResponse, Status> {
    let body = GeneratedBody {
        shape,
        prefix_sent: false,
        next: 0,
    };
    let mut request = http::Request::new(tonic::body::Body::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/mlmeta.v1.MetadataService/InsertEpochs");
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    futures::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let response = channel
        .call(request)
        .await
        .map_err(|e| Status::unavailable(format!("request failed: {e}")))?;
    let (parts, mut body) = response.into_parts();
    if let Some(status) = Status::from_header_map(&parts.headers).filter(|s| s.code() != Code::Ok) {
        return Err(status);
    }
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = futures::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame?;
        match frame.into_data() {
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    let status = trailers
        .as_ref()
        .and_then(Status::from_header_map)
        .unwrap_or_else(|| Status::internal("no grpc-status in the answer"));
    if status.code() != Code::Ok {
        return Err(status);
    }
    let message = data
        .get(5..)
        .ok_or_else(|| Status::internal("answer without a message"))?;
    InsertEpochsResponse::decode(message).map_err(|e| Status::internal(format!("undecodable answer: {e}")))
}

/// Samples the server's RSS while a burst runs, killing it past the cap.
struct Watchdog {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(pid: Option<u32>, cap_kib: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        if let Some(pid) = pid {
            let (stop, max_kib, killed) = (stop.clone(), max_kib.clone(), killed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(rss) = status_kib(pid, "VmRSS:") else {
                        return;
                    };
                    max_kib.fetch_max(rss, Ordering::Relaxed);
                    if rss > cap_kib {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                        killed.store(true, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(WATCH_INTERVAL);
                }
            });
        }
        Self {
            stop,
            max_kib,
            killed,
        }
    }

    /// Stops watching: the highest RSS seen, and whether it killed.
    fn stop(self) -> (u64, bool) {
        self.stop.store(true, Ordering::Relaxed);
        (
            self.max_kib.load(Ordering::Relaxed),
            self.killed.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_requests_decode_to_the_planned_epochs() {
        let shape = RequestShape::new("model-a", 5, 10_000, 7);
        let expected_len = shape.body_bytes();
        let mut body = GeneratedBody {
            shape: shape.clone(),
            prefix_sent: false,
            next: 0,
        };
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut bytes = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            bytes.extend_from_slice(&frame.into_data().unwrap());
        }
        assert_eq!(bytes.len(), 5 + expected_len);
        assert_eq!(
            u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize,
            expected_len
        );
        let request = mlmeta_proto::InsertEpochsRequest::decode(&bytes[5..]).unwrap();
        assert_eq!(request.epochs.len() as u64, shape.epochs);
        let nums: Vec<i64> = request.epochs.iter().map(|e| e.epoch_num).collect();
        assert_eq!(nums.first(), Some(&(FIRST_EPOCH as i64)));
        assert_eq!(nums.last(), Some(&shape.last_epoch()));
        assert!(
            request
                .epochs
                .iter()
                .all(|e| e.model_name == "model-a" && e.metrics.len() == 5)
        );
    }
}
