//! [`HandshakeDeadline`]: an accepted connection that fails (so that the
//! server drops it and its file descriptor) when the client has not sent
//! the HTTP/2 connection preface by a deadline.
//!
//! hyper's HTTP/2 server waits for the preface forever, and its keepalive
//! pings start only after it, so without this a socket that connects and
//! sends nothing holds a file descriptor for as long as the client likes.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;
use tracing::warn;

use super::throttle::Throttle;

/// Length of the HTTP/2 client connection preface,
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`: the first bytes a live client sends.
const PREFACE_LEN: usize = 24;

/// Where connections that missed their deadline are reported: a
/// throttled warning naming the timeout.
#[derive(Debug)]
pub(crate) struct LateLog {
    timeout: Duration,
    throttle: Throttle,
}

impl LateLog {
    /// Reports connections that missed `timeout`, one line per `every`.
    pub(crate) fn new(timeout: Duration, every: Duration) -> Self {
        Self {
            timeout,
            throttle: Throttle::new(every),
        }
    }

    /// Reports that the connection from `peer` missed the deadline.
    pub(crate) fn missed(&self, peer: SocketAddr) {
        if let Some(suppressed) = self.throttle.admit() {
            warn!(
                %peer,
                suppressed,
                timeout = ?self.timeout,
                "closed a connection that did not finish its TLS handshake and HTTP/2 preface in time \
                 (--handshake-timeout-secs); `suppressed` more were closed since the last such message"
            );
        }
    }
}

/// An accepted connection (plain TCP or TLS) with a deadline for the
/// HTTP/2 preface. Until the preface has been read, every read and write
/// fails with `TimedOut` once the deadline has passed; the preface read,
/// the deadline is gone and the connection behaves exactly as `IO` does.
#[derive(Debug)]
pub(crate) struct HandshakeDeadline<IO> {
    io: IO,
    /// `Some` while the preface is awaited: fires at the deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes of the preface not read yet.
    preface_left: usize,
    expired: bool,
    peer: SocketAddr,
    late: Arc<LateLog>,
}

impl<IO> HandshakeDeadline<IO> {
    /// `io` (from `peer`) must have read the preface by `deadline`.
    pub(crate) fn new(io: IO, deadline: Instant, peer: SocketAddr, late: Arc<LateLog>) -> Self {
        Self {
            io,
            timer: Some(Box::pin(tokio::time::sleep_until(deadline))),
            preface_left: PREFACE_LEN,
            expired: false,
            peer,
            late,
        }
    }

    /// `Err` once the deadline has passed without the preface; polling the
    /// timer also wakes the connection's task when it passes.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(timer) = &mut self.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            self.timer = None;
            self.expired = true;
            self.late.missed(self.peer);
        }
        if self.expired {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface within the handshake timeout",
            ));
        }
        Ok(())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for HandshakeDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.timer.is_some() && matches!(polled, Poll::Ready(Ok(()))) {
            let read = buf.filled().len() - before;
            this.preface_left = this.preface_left.saturating_sub(read);
            if this.preface_left == 0 {
                this.timer = None;
            }
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HandshakeDeadline<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The connection's info (addresses, TLS peer certificates) is that of the
/// connection inside, so request extensions look as tonic makes them.
impl<IO: Connected> Connected for HandshakeDeadline<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, duplex};

    use super::*;

    fn late() -> Arc<LateLog> {
        Arc::new(LateLog::new(Duration::from_millis(50), Duration::from_secs(1)))
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_at_the_deadline() {
        let (server, _client) = duplex(1024);
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut io = HandshakeDeadline::new(server, deadline, peer(), late());
        let mut buf = [0u8; 64];
        let error = io.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(Instant::now() >= deadline);
        assert_eq!(io.write(b"x").await.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn part_of_the_preface_is_not_enough() {
        let (server, mut client) = duplex(1024);
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut io = HandshakeDeadline::new(server, deadline, peer(), late());
        client.write_all(&b"PRI * HTTP/2.0\r\n"[..]).await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 16);
        assert_eq!(
            io.read(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_preface_disarms_the_deadline() {
        let (server, mut client) = duplex(1024);
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut io = HandshakeDeadline::new(server, deadline, peer(), late());
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), PREFACE_LEN);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        client.write_all(b"later").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 5);
        io.write_all(b"fine").await.unwrap();
        let mut answer = [0u8; 4];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"fine");
    }
}
