//! [`GuardedBody`]: the request body of every call, as the guard hands it
//! to the service. It reads each gRPC message's 5-byte prefix (a flag
//! byte, then the message length as a big-endian `u32`) before the
//! message's bytes are read, and then
//!
//! - refuses a message over its method's size limit at once, before
//!   anything of it is buffered;
//! - for the bulk methods, reserves room for the message in the in-flight
//!   budget, waiting while there is none. While it waits it reads nothing,
//!   so HTTP/2 flow control holds the sender back: whatever the number of
//!   large inserts arriving at once, the server holds the bytes of those it
//!   has room for, plus at most one flow-control window per connection;
//! - for streams, ends a stream that completes no message within the idle
//!   timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::Status;

use super::class::RequestSize;
use crate::error::Error;

/// Bytes of memory a bulk request message is charged per byte of its
/// encoding. The server's peak RSS grows by 4.6-4.75x the size of one
/// InsertEpochs request it handles, whether its epochs carry 8, 32 or 128
/// metrics (the wire bytes, prost's decoded epochs, with a `String` and a
/// map per epoch and a `String` per metric name, and the store's copy
/// while it converts them; `mlmeta-bench --workload large
/// --large-requests 1`).
pub(super) const DECODED_BYTES_PER_WIRE_BYTE: usize = 5;

/// Length of the prefix of every gRPC message.
const PREFIX_BYTES: usize = 5;

/// The budget is counted in KiB, so that a `u32` of permits covers any
/// message (`Semaphore::acquire_many` takes a `u32`).
const BUDGET_UNIT: usize = 1024;

/// Size limits and the in-flight budget, shared by every call.
#[derive(Debug)]
pub(super) struct BodyRules {
    /// Largest message of the bulk methods, in bytes (`--max-request-bytes`).
    pub max_bulk_bytes: usize,
    /// Largest message of every other method (`--max-small-request-bytes`).
    pub max_small_bytes: usize,
    /// `--max-inflight-request-bytes`, as configured.
    budget_bytes: usize,
    /// Its capacity in [`BUDGET_UNIT`]s.
    budget_units: u32,
    budget: Arc<Semaphore>,
    /// Longest wait for room in the budget before RESOURCE_EXHAUSTED.
    wait: Duration,
    /// How long a stream may go without completing a message.
    pub idle: Duration,
}

impl BodyRules {
    /// Rules for the given limits; `wait` is how long a message may wait
    /// for room in the budget.
    pub fn new(
        max_bulk_bytes: usize,
        max_small_bytes: usize,
        budget_bytes: usize,
        wait: Duration,
        idle: Duration,
    ) -> Self {
        let units = budget_bytes.div_ceil(BUDGET_UNIT).clamp(1, u32::MAX as usize);
        let budget_units = u32::try_from(units).unwrap_or(u32::MAX);
        Self {
            max_bulk_bytes,
            max_small_bytes,
            budget_bytes,
            budget_units,
            budget: Arc::new(Semaphore::new(budget_units as usize)),
            wait,
            idle,
        }
    }

    /// Budget units a bulk message of `len` encoded bytes is charged: its
    /// decoded size, but never more than the whole budget (so that a
    /// message larger than the budget still runs, alone).
    fn charge(&self, len: usize) -> u32 {
        let units = len
            .saturating_mul(DECODED_BYTES_PER_WIRE_BYTE)
            .div_ceil(BUDGET_UNIT)
            .max(1);
        u32::try_from(units).map_or(self.budget_units, |units| units.min(self.budget_units))
    }
}

/// How long a call keeps the in-flight charge of a message.
pub(super) enum Hold {
    /// A unary call: until the response, when the guard drops the holder
    /// (the service drops the body as soon as it has decoded the message,
    /// but the handler works on the decoded epochs until it answers).
    UntilResponse(Arc<Mutex<Vec<OwnedSemaphorePermit>>>),
    /// A stream: until the service asks for the next message (it is then
    /// done with this one) or the stream ends.
    UntilNextMessage,
}

/// What the guard knows about the call a body belongs to.
pub(super) struct CallBody {
    /// The method, for messages (`ListModels`).
    pub method: String,
    /// Which size limit applies, and whether messages are charged.
    pub size: RequestSize,
    /// How long charges are held.
    pub hold: Hold,
    /// Whether the idle timeout applies (streams).
    pub idle: bool,
    /// The stream's slot of `--max-concurrent-streams`, held as long as
    /// the request stream is open.
    #[expect(dead_code, reason = "held for its Drop, which frees the slot")]
    pub slot: Option<OwnedSemaphorePermit>,
}

type Reserving = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, Status>> + Send>>;

/// A request body checked and charged message by message (see the module
/// documentation).
pub(super) struct GuardedBody<B> {
    inner: B,
    rules: Arc<BodyRules>,
    call: CallBody,
    /// Data received and not yet handed on; `pending[..scan]` is checked.
    pending: Bytes,
    scan: usize,
    /// The prefix of the next message, as far as received.
    prefix: [u8; PREFIX_BYTES],
    prefix_len: usize,
    /// Bytes of the current message not yet scanned.
    message_left: usize,
    /// Messages whose prefix has been read.
    messages: u64,
    /// A reservation being waited for.
    reserving: Option<Reserving>,
    /// A stream's charge for the message being received or handled, and
    /// whether that message has been handed on whole.
    current: Option<OwnedSemaphorePermit>,
    current_delivered: bool,
    /// Since when the stream has been waiting for its next message, and the
    /// timer that ends the wait.
    waiting_since: Option<Instant>,
    idle_timer: Option<Pin<Box<Sleep>>>,
    /// The body has failed (or ended); nothing more comes.
    done: bool,
}

/// What scanning the pending data asks for next.
enum Step {
    /// Hand on these bytes.
    Deliver(Bytes),
    /// Wait for this many budget units first.
    Reserve(u32),
    /// Fail the call.
    Refuse(Status),
}

impl<B> GuardedBody<B> {
    /// Wraps `inner`, the body of `call`.
    pub fn new(inner: B, rules: Arc<BodyRules>, call: CallBody) -> Self {
        Self {
            inner,
            rules,
            call,
            pending: Bytes::new(),
            scan: 0,
            prefix: [0; PREFIX_BYTES],
            prefix_len: 0,
            message_left: 0,
            messages: 0,
            reserving: None,
            current: None,
            current_delivered: false,
            waiting_since: None,
            idle_timer: None,
            done: false,
        }
    }

    /// Checks the pending data from `scan` on, up to the end of the
    /// current message at most, so that each message is handed on (and its
    /// charge can end) before the next one is charged.
    fn advance(&mut self) -> Step {
        while self.scan < self.pending.len() {
            if self.message_left > 0 {
                let take = self.message_left.min(self.pending.len() - self.scan);
                self.scan += take;
                self.message_left -= take;
                if self.message_left == 0 {
                    return self.message_complete();
                }
                continue;
            }
            self.prefix[self.prefix_len] = self.pending[self.scan];
            self.prefix_len += 1;
            self.scan += 1;
            if self.prefix_len < PREFIX_BYTES {
                continue;
            }
            self.prefix_len = 0;
            let [_, a, b, c, d] = self.prefix;
            let len = u32::from_be_bytes([a, b, c, d]) as usize;
            self.messages += 1;
            if let Some(refused) = self.refusal(len) {
                return Step::Refuse(refused);
            }
            self.message_left = len;
            if self.call.size == RequestSize::Bulk && len > 0 {
                return Step::Reserve(self.rules.charge(len));
            }
            if len == 0 {
                return self.message_complete();
            }
        }
        self.scan = 0;
        Step::Deliver(std::mem::take(&mut self.pending))
    }

    /// The current message is scanned whole: hand it on.
    fn message_complete(&mut self) -> Step {
        let piece = self.pending.split_to(self.scan);
        self.scan = 0;
        self.current_delivered = self.current.is_some();
        // The idle clock restarts when the stream waits for the next one.
        self.waiting_since = None;
        Step::Deliver(piece)
    }

    /// Why a message of `len` bytes is refused, if it is.
    fn refusal(&self, len: usize) -> Option<Status> {
        let method = &self.call.method;
        if self.messages > 1 && matches!(self.call.hold, Hold::UntilResponse(_)) {
            return Some(Status::from(Error::InvalidArgument(format!(
                "{method} is a unary call: its request carries one message, this one sent a second"
            ))));
        }
        let error = match self.call.size {
            RequestSize::Small if len > self.rules.max_small_bytes => format!(
                "request message too large: {method} takes messages of at most {} bytes \
                 (--max-small-request-bytes), this one has {len}; only InsertEpochs and \
                 StreamEpochs take up to {} bytes (--max-request-bytes)",
                self.rules.max_small_bytes, self.rules.max_bulk_bytes
            ),
            RequestSize::Bulk if len > self.rules.max_bulk_bytes => format!(
                "request message too large: {method} takes messages of at most {} bytes \
                 (--max-request-bytes), this one has {len}; split the epochs over several messages",
                self.rules.max_bulk_bytes
            ),
            _ => return None,
        };
        Some(Status::from(Error::ResourceExhausted(error)))
    }

    /// Waits for `units` of the budget, for at most the configured wait.
    fn reserve(&self, units: u32, len: usize) -> Reserving {
        let budget = Arc::clone(&self.rules.budget);
        let (wait, limit) = (self.rules.wait, self.rules.budget_bytes);
        let method = self.call.method.clone();
        Box::pin(async move {
            let refused = || {
                Status::from(Error::ResourceExhausted(format!(
                    "the server is busy: this {method} message of {len} bytes waited {wait:?} for room \
                     among the request bytes in flight (--max-inflight-request-bytes = {limit}) and was \
                     not read; nothing of it was stored; retry with backoff"
                )))
            };
            match tokio::time::timeout(wait, budget.acquire_many_owned(units)).await {
                Ok(Ok(permit)) => Ok(permit),
                // The budget is never closed; a closed one would be as full.
                Ok(Err(_)) | Err(_) => Err(refused()),
            }
        })
    }

    /// Keeps the charge of the message whose prefix was just read.
    fn keep(&mut self, permit: OwnedSemaphorePermit) {
        match &self.call.hold {
            Hold::UntilResponse(held) => held.lock().unwrap_or_else(PoisonError::into_inner).push(permit),
            Hold::UntilNextMessage => self.current = Some(permit),
        }
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        self.current = None;
        self.reserving = None;
        Poll::Ready(Some(Err(status)))
    }

    /// The inner body has nothing yet: for a stream, runs the idle clock.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if !self.call.idle {
            return Poll::Pending;
        }
        let idle = self.rules.idle;
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + idle;
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        let method = &self.call.method;
        self.fail(Status::from(Error::StreamIdle(format!(
            "{method} stream idle: it completed no message for {}s (--stream-idle-timeout-secs), \
             so the server ended it; everything it sent before was committed; open a new stream \
             to send more",
            idle.as_secs()
        ))))
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // Asked for more after a whole message: the service is done with it.
        if this.current_delivered {
            this.current = None;
            this.current_delivered = false;
        }
        loop {
            if let Some(reserving) = &mut this.reserving {
                match ready!(reserving.as_mut().poll(cx)) {
                    Ok(permit) => {
                        this.reserving = None;
                        this.keep(permit);
                        // Time spent waiting for room is not the sender's.
                        this.waiting_since = None;
                    }
                    Err(status) => return this.fail(status),
                }
            }
            if !this.pending.is_empty() {
                match this.advance() {
                    Step::Deliver(bytes) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                    Step::Reserve(units) => {
                        this.reserving = Some(this.reserve(units, this.message_left));
                        continue;
                    }
                    Step::Refuse(status) => return this.fail(status),
                }
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(Some(Err(error))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Status::from_error(error.into()))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    this.current = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => return this.poll_idle(cx),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.pending.is_empty() && self.reserving.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(budget_bytes: usize) -> BodyRules {
        BodyRules::new(
            64 << 20,
            1 << 20,
            budget_bytes,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn bulk_messages_are_charged_their_decoded_size_within_the_budget() {
        let rules = rules(256 << 20);
        assert_eq!(rules.charge(1), 1);
        assert_eq!(
            rules.charge(1 << 20),
            (DECODED_BYTES_PER_WIRE_BYTE << 20) as u32 / 1024
        );
        // Larger than the whole budget: charged the whole budget, so it
        // runs alone rather than never.
        assert_eq!(rules.charge(usize::MAX), rules.budget_units);
        assert_eq!(rules.charge(200 << 20), rules.budget_units);
        assert_eq!(self::rules(100).budget_units, 1);
    }
}
