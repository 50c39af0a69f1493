//! Accepting connections: the accept loop that [`crate::serve`] hands to
//! tonic in place of its own, so that no client can hold the server's file
//! descriptors by connecting and staying silent.
//!
//! - Every connection must finish its TLS handshake and send the HTTP/2
//!   preface within `--handshake-timeout-secs` of being accepted, or it is
//!   closed ([`HandshakeDeadline`]). TLS is done here rather than by tonic
//!   so that this one deadline covers the handshake and the preface after
//!   it: tonic's own TLS timeout would leave a client that finishes the
//!   handshake and then sends nothing connected forever.
//! - Accepted sockets get `TCP_NODELAY` and TCP keepalive, so the kernel
//!   reaps peers that vanished; HTTP/2 keepalive pings (set on tonic's
//!   builder) reap those whose TCP stays up but who no longer answer.
//! - Failed accepts are logged, at most once a second with the count of
//!   those left out, and when the process runs out of file descriptors
//!   (`EMFILE`) the loop pauses briefly instead of spinning; the waiting
//!   connections stay queued in the kernel's backlog meanwhile.

mod deadline;
mod open_files;
mod throttle;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, error};

pub(crate) use deadline::HandshakeDeadline;
use deadline::LateLog;
pub use open_files::raise_open_files_limit;
use throttle::Throttle;

/// At most one log line per this period for each kind of connection
/// trouble.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Pause after an accept failed for want of resources (file descriptors,
/// memory) before trying again: short enough that a freed descriptor is
/// soon used, long enough not to spin on the error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Seconds between TCP keepalive probes once they started, and how many
/// unanswered probes end the connection.
const TCP_KEEPALIVE_PROBE_INTERVAL: Duration = Duration::from_secs(10);
const TCP_KEEPALIVE_PROBES: u32 = 3;

/// Connections accepted but not yet handed to tonic (their handshake is
/// done, tonic has not taken them yet).
const READY_QUEUE: usize = 64;

/// How accepted connections are treated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptSettings {
    /// From accept to the end of the HTTP/2 preface, TLS handshake
    /// included.
    pub handshake_timeout: Duration,
    /// Idle time before the first TCP keepalive probe.
    pub tcp_keepalive: Duration,
}

/// Plain-TCP connections accepted on `listener`, for tonic's
/// `serve_with_incoming_shutdown`. Accepting stops when the stream is
/// dropped, which closes the listener.
pub(crate) fn plaintext(
    listener: TcpListener,
    settings: AcceptSettings,
) -> impl Stream<Item = io::Result<HandshakeDeadline<TcpStream>>> {
    accept(listener, settings, |stream| std::future::ready(Ok(stream)))
}

/// TLS connections accepted on `listener` (see [`plaintext`]).
pub(crate) fn tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    settings: AcceptSettings,
) -> impl Stream<Item = io::Result<HandshakeDeadline<TlsStream<TcpStream>>>> {
    accept(listener, settings, move |stream| acceptor.accept(stream))
}

/// Runs the accept loop in a task of its own and streams the connections
/// whose `handshake` finished in time.
fn accept<IO, H, F>(
    listener: TcpListener,
    settings: AcceptSettings,
    handshake: H,
) -> impl Stream<Item = io::Result<HandshakeDeadline<IO>>>
where
    IO: Send + 'static,
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = io::Result<IO>> + Send + 'static,
{
    let (ready, connections) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, settings, handshake, ready));
    ReceiverStream::new(connections).map(Ok)
}

async fn accept_loop<IO, H, F>(
    listener: TcpListener,
    settings: AcceptSettings,
    handshake: H,
    ready: mpsc::Sender<HandshakeDeadline<IO>>,
) where
    IO: Send + 'static,
    H: Fn(TcpStream) -> F,
    F: Future<Output = io::Result<IO>> + Send + 'static,
{
    let keepalive = TcpKeepalive::new()
        .with_time(settings.tcp_keepalive)
        .with_interval(TCP_KEEPALIVE_PROBE_INTERVAL)
        .with_retries(TCP_KEEPALIVE_PROBES);
    let late = Arc::new(LateLog::new(settings.handshake_timeout, LOG_EVERY));
    let failures = Throttle::new(LOG_EVERY);
    // Dropped (aborting the handshakes under way) when accepting stops.
    let mut handshakes = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            // tonic dropped the stream: the server is stopping.
            () = ready.closed() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_about_one_connection(&error) => {
                debug!(%error, "a connection failed while being accepted");
                continue;
            }
            Err(error) => {
                if let Some(suppressed) = failures.admit() {
                    error!(
                        %error,
                        suppressed,
                        "cannot accept connections; retrying every {ACCEPT_PAUSE:?} \
                         (\"Too many open files\": the open-files limit is used up, see the limit logged at start); \
                         `suppressed` more failures since the last such message"
                    );
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        set_socket_options(&stream, &keepalive);
        let deadline = tokio::time::Instant::now() + settings.handshake_timeout;
        let handshake = handshake(stream);
        let (ready, late) = (ready.clone(), late.clone());
        handshakes.spawn(async move {
            match tokio::time::timeout_at(deadline, handshake).await {
                Ok(Ok(io)) => {
                    // Fails only when the server is stopping.
                    let _ = ready.send(HandshakeDeadline::new(io, deadline, peer, late)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => late.missed(peer),
            }
        });
    }
}

/// Errors of `accept` that concern one connection only (it was reset
/// while queued, a signal interrupted the call), after which the next
/// accept can go ahead at once.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::BrokenPipe
    )
}

fn set_socket_options(stream: &TcpStream, keepalive: &TcpKeepalive) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, "cannot set TCP_NODELAY");
    }
    if let Err(error) = SockRef::from(stream).set_tcp_keepalive(keepalive) {
        debug!(%error, "cannot set TCP keepalive");
    }
}
