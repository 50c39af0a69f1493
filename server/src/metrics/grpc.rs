//! Per-call gRPC metrics under go-grpc-prometheus's names, so existing
//! dashboards work: `grpc_server_started_total`, `grpc_server_handled_total`
//! (with `grpc_code`), `grpc_server_handling_seconds`,
//! `grpc_server_msg_received_total` / `_sent_total`, all labelled
//! `grpc_type`, `grpc_service`, `grpc_method`; plus
//! `mlmeta_grpc_streams_open`.
//!
//! [`GrpcMetricsLayer`] sits outside the guard, so refused calls count too.
//! Each method's counters are made once, at start, from the file
//! descriptor sets; a call looks its method up by path (a hash of the
//! path) and then only adds to atomics. Paths that name no known method
//! share one `unknown` series, so that callers cannot create series.
//!
//! The code is read where gRPC puts it: in the response headers of a
//! trailers-only answer (most errors), else in the trailers at the end
//! of the stream; a response dropped before its end (the client went
//! away) counts as CANCELLED. Messages are counted from the gRPC framing
//! of the bodies (5-byte headers), without decoding them. Long-lived
//! streams land in the upper buckets of the histogram by nature.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body::Frame;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prost::Message as _;
use tonic::codegen::http;
use tower::{Layer, Service};

use super::histogram::{AtomicHistogram, SECONDS};

/// go-grpc-prometheus's names of the codes, in code order.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

const CANCELLED: usize = 1;
const UNKNOWN: usize = 2;

/// The counters of one method.
#[derive(Debug)]
struct MethodStats {
    kind: &'static str,
    service: String,
    method: String,
    started: AtomicU64,
    handled: [AtomicU64; 17],
    handling: AtomicHistogram,
    received: AtomicU64,
    sent: AtomicU64,
    open: AtomicI64,
}

impl MethodStats {
    fn new(kind: &'static str, service: &str, method: &str) -> Self {
        Self {
            kind,
            service: service.to_owned(),
            method: method.to_owned(),
            started: AtomicU64::new(0),
            handled: std::array::from_fn(|_| AtomicU64::new(0)),
            handling: AtomicHistogram::seconds(SECONDS),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            open: AtomicI64::new(0),
        }
    }

    fn is_stream(&self) -> bool {
        self.kind != "unary"
    }

    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("grpc_type", self.kind),
            ("grpc_service", &self.service),
            ("grpc_method", &self.method),
        ]
    }

    /// The call has ended with `code` after `started`.
    fn finish(&self, code: usize, started: Instant) {
        self.handled[code.min(CODE_NAMES.len() - 1)].fetch_add(1, Ordering::Relaxed);
        self.handling.observe_duration(started.elapsed());
        if self.is_stream() {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Every method's counters; cheap to share.
#[derive(Debug)]
pub(crate) struct GrpcMetrics {
    /// By path, `/package.Service/Method`.
    methods: HashMap<String, Arc<MethodStats>>,
    /// In path order, for a stable exposition.
    ordered: Vec<Arc<MethodStats>>,
    unknown: Arc<MethodStats>,
}

impl GrpcMetrics {
    /// The methods of every service in the encoded file descriptor sets.
    pub(crate) fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut methods = HashMap::new();
        for encoded in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let full = format!("{}.{}", file.package(), service.name());
                    for method in &service.method {
                        let kind = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => "unary",
                            (true, false) => "client_stream",
                            (false, true) => "server_stream",
                            (true, true) => "bidi_stream",
                        };
                        let stats = MethodStats::new(kind, &full, method.name());
                        methods.insert(format!("/{full}/{}", method.name()), Arc::new(stats));
                    }
                }
            }
        }
        let mut ordered: Vec<(&String, &Arc<MethodStats>)> = methods.iter().collect();
        ordered.sort_by_key(|(path, _)| *path);
        let ordered = ordered.into_iter().map(|(_, stats)| Arc::clone(stats)).collect();
        Self {
            methods,
            ordered,
            unknown: Arc::new(MethodStats::new("unary", "unknown", "unknown")),
        }
    }

    /// Records one call with each code for every method (for measuring
    /// the largest exposition); returns the number of methods.
    #[cfg(test)]
    pub(crate) fn populate_every_code(&self) -> usize {
        for stats in &self.ordered {
            for code in 0..CODE_NAMES.len() {
                stats.started.fetch_add(1, Ordering::Relaxed);
                if stats.is_stream() {
                    stats.open.fetch_add(1, Ordering::Relaxed);
                }
                stats.finish(code, Instant::now());
            }
        }
        self.ordered.len()
    }

    fn of(&self, path: &str) -> Arc<MethodStats> {
        Arc::clone(self.methods.get(path).unwrap_or(&self.unknown))
    }

    /// Writes every family into a scrape.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let called: Vec<&MethodStats> = self
            .ordered
            .iter()
            .map(Arc::as_ref)
            .chain([self.unknown.as_ref()])
            .filter(|stats| stats.started.load(Ordering::Relaxed) > 0)
            .collect();
        counters(
            encoder,
            "grpc_server_started",
            "RPCs started on the server.",
            &called,
            |s| &s.started,
        )?;
        let mut handled = encoder.encode_descriptor(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            None,
            MetricType::Counter,
        )?;
        for stats in &called {
            for (code, name) in CODE_NAMES.iter().enumerate() {
                let value = stats.handled[code].load(Ordering::Relaxed);
                if value > 0 {
                    let labels = (stats.labels(), [("grpc_code", *name)]);
                    handled
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
                }
            }
        }
        let mut handling = encoder.encode_descriptor(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC calls, until the end of the response stream.",
            None,
            MetricType::Histogram,
        )?;
        for stats in &called {
            stats.handling.encode(handling.encode_family(&stats.labels())?)?;
        }
        counters(
            encoder,
            "grpc_server_msg_received",
            "RPC stream messages received on the server.",
            &called,
            |s| &s.received,
        )?;
        counters(
            encoder,
            "grpc_server_msg_sent",
            "gRPC stream messages sent by the server.",
            &called,
            |s| &s.sent,
        )?;
        let mut open = encoder.encode_descriptor(
            "mlmeta_grpc_streams_open",
            "gRPC streams (client, server and bidirectional) open now.",
            None,
            MetricType::Gauge,
        )?;
        for stats in called.iter().filter(|stats| stats.is_stream()) {
            let value = stats.open.load(Ordering::Relaxed);
            open.encode_family(&stats.labels())?.encode_gauge(&value)?;
        }
        Ok(())
    }
}

fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    called: &[&MethodStats],
    value: impl Fn(&MethodStats) -> &AtomicU64,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for stats in called {
        let value = value(stats).load(Ordering::Relaxed);
        family
            .encode_family(&stats.labels())?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

/// The tower layer recording every gRPC call; `None`: records nothing
/// (`--no-grpc-metrics`), the bodies passed through as they are.
#[derive(Debug, Clone)]
pub(crate) struct GrpcMetricsLayer(pub Option<Arc<GrpcMetrics>>);

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service made by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    metrics: Option<Arc<GrpcMetrics>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Recorded<S>
where
    S: Service<http::Request<CountedBody<ReqBody>>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<RecordedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        let stats = self
            .metrics
            .as_ref()
            .filter(|_| is_grpc)
            .map(|metrics| metrics.of(request.uri().path()));
        let started = Instant::now();
        if let Some(stats) = &stats {
            stats.started.fetch_add(1, Ordering::Relaxed);
            if stats.is_stream() {
                stats.open.fetch_add(1, Ordering::Relaxed);
            }
        }
        let request = request.map(|body| CountedBody {
            inner: body,
            stats: stats.clone(),
            frames: Frames::default(),
        });
        Box::pin(async move {
            let response = match inner.call(request).await {
                Ok(response) => response,
                Err(error) => {
                    if let Some(stats) = &stats {
                        stats.finish(UNKNOWN, started);
                    }
                    return Err(error);
                }
            };
            let mut call = stats.map(|stats| Call {
                stats,
                started,
                finished: false,
            });
            // Trailers-only: the code is in the headers, and nothing follows.
            if let (Some(call), Some(code)) = (&mut call, grpc_status(response.headers())) {
                call.finish(code);
            }
            Ok(response.map(|body| RecordedBody {
                inner: body,
                call,
                frames: Frames::default(),
            }))
        })
    }
}

/// The `grpc-status` in `headers`, as a code index.
fn grpc_status(headers: &http::HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .parse::<usize>()
        .ok()
        .map(|code| if code < CODE_NAMES.len() { code } else { UNKNOWN })
}

/// A recorded call whose code is not known yet.
#[derive(Debug)]
struct Call {
    stats: Arc<MethodStats>,
    started: Instant,
    finished: bool,
}

impl Call {
    fn finish(&mut self, code: usize) {
        if !std::mem::replace(&mut self.finished, true) {
            self.stats.finish(code, self.started);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or reset it).
        self.finish(CANCELLED);
    }
}

/// Counts the messages of a gRPC body from their 5-byte headers (a flag
/// byte and a big-endian length).
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 5],
    have: usize,
    body_left: u64,
}

impl Frames {
    /// Messages whose header ends in `data`.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut messages = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let take = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                data = &data[take..];
                self.body_left -= take as u64;
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == 5 {
                messages += 1;
                self.have = 0;
                let [_, a, b, c, d] = self.header;
                self.body_left = u64::from(u32::from_be_bytes([a, b, c, d]));
            }
        }
        messages
    }
}

/// A request body whose messages are counted as received.
#[derive(Debug)]
pub struct CountedBody<B> {
    inner: B,
    stats: Option<Arc<MethodStats>>,
    frames: Frames,
}

impl<B> http_body::Body for CountedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let (Some(stats), Some(Ok(frame))) = (&this.stats, &frame)
            && let Some(data) = frame.data_ref()
        {
            let messages = this.frames.feed(data);
            if messages > 0 {
                stats.received.fetch_add(messages, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body whose messages are counted as sent and whose end
/// (trailers) finishes the call.
#[derive(Debug)]
pub struct RecordedBody<B> {
    inner: B,
    call: Option<Call>,
    frames: Frames,
}

impl<B> http_body::Body for RecordedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(call) = &mut this.call {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let messages = this.frames.feed(data);
                        if messages > 0 {
                            call.stats.sent.fetch_add(messages, Ordering::Relaxed);
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        call.finish(grpc_status(trailers).unwrap_or(UNKNOWN));
                    }
                }
                Some(Err(_)) => call.finish(UNKNOWN),
                // Ended without trailers: not a valid gRPC response.
                None => call.finish(UNKNOWN),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_count_messages_across_chunks() {
        let message = |len: u8| {
            let mut bytes = vec![0, 0, 0, 0, len];
            bytes.extend(std::iter::repeat_n(7, usize::from(len)));
            bytes
        };
        let stream: Vec<u8> = [message(3), message(0), message(10)].concat();
        for chunk in 1..stream.len() {
            let mut frames = Frames::default();
            let counted: u64 = stream.chunks(chunk).map(|piece| frames.feed(piece)).sum();
            assert_eq!(counted, 3, "chunks of {chunk}");
        }
    }

    #[test]
    fn methods_come_from_the_descriptors() {
        let metrics = GrpcMetrics::new(&[
            mlmeta_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        let kind = |path: &str| metrics.of(path).kind;
        assert_eq!(kind("/mlmeta.v1.MetadataService/ListModels"), "unary");
        assert_eq!(kind("/mlmeta.v1.MetadataService/StreamEpochs"), "client_stream");
        assert_eq!(kind("/mlmeta.v1.MetadataService/WriteEpochs"), "bidi_stream");
        assert_eq!(kind("/grpc.health.v1.Health/Watch"), "server_stream");
        assert_eq!(metrics.of("/x.Y/Z").service, "unknown");
    }
}
