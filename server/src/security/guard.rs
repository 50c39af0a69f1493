//! [`CallGuard`]: the tower layer every call passes before it reaches a
//! service. It checks the bearer token and its scope, gives the call a slot
//! of its budget (unary calls and streams have one each), puts a deadline
//! on unary calls, and wraps the request body in a [`GuardedBody`], which
//! enforces the per-method message size limits, the in-flight request
//! budget and the idle timeout of streams.
//!
//! It works on HTTP/2 requests rather than as a tonic interceptor because
//! an interceptor cannot see which method is called, and the scope a call
//! needs depends on the method.
//!
//! Requests of the HTTP listener pass the same guard: the same tokens,
//! the same unary budget and deadline for the page and its API, refusals
//! as HTTP statuses (401, 403, 429, 504) instead of gRPC ones, and bodies
//! that are not gRPC-framed, hence not wrapped.
//!
//! Why streams have a budget of their own rather than a unary slot while
//! they process a message: a stream that holds a slot for its whole life
//! lets a thousand idle trainers lock every other call out, and one that
//! takes a slot per message would have to wait for (or be refused) a slot
//! in the middle of a stream. What unary slots protect (memory, the
//! database) is bounded for stream messages by the in-flight budget and
//! the group-commit queue anyway, so a stream only needs to be counted:
//! an idle stream costs about 12 KiB (HTTP/2 stream state, the decoder's
//! buffer, the handler's future; 45 MiB for 4,000 in `mlmeta-bench
//! --workload idle`), so the default of 16,384 streams bounds idle streams
//! to about 190 MiB.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::debug;

use super::body::{BodyRules, CallBody, GuardedBody, Hold};
use super::caller::Caller;
use super::class::{CallClass, METADATA_SERVICE, Route, Slot};
use super::tokens::{Scope, Tokens};
use crate::error::Error;

/// Limits on calls, from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Longest time a unary call may take. A bulk message waits for room
    /// in the in-flight budget for at most half of it.
    pub call_timeout: Duration,
    /// Unary calls that may be in progress at once; more are refused.
    pub max_concurrent_calls: usize,
    /// Streams that may be open at once; more are refused.
    pub max_concurrent_streams: usize,
    /// Watches that may be open at once; more are refused.
    pub max_watchers: usize,
    /// A stream that completes no message for this long is ended.
    pub stream_idle_timeout: Duration,
    /// Largest message of InsertEpochs and StreamEpochs, in bytes.
    pub max_request_bytes: usize,
    /// Largest request message of every other method, in bytes.
    pub max_small_request_bytes: usize,
    /// Decoded bytes of InsertEpochs/StreamEpochs messages that may be in
    /// flight at once (see [`CallGuard`]).
    pub max_inflight_request_bytes: usize,
    /// Whether the HTTP probes (`/metrics`, `/healthz`, `/readyz`) need a
    /// read token when tokens are asked for.
    pub http_probes_token_required: bool,
}

/// Calls refused for their token, by reason, since the server started
/// (for `/metrics`).
#[derive(Debug, Default)]
pub struct Refusals {
    /// No `authorization: Bearer` token (or a malformed one).
    pub missing: AtomicU64,
    /// A token the tokens file does not list.
    pub unknown: AtomicU64,
    /// A listed token whose scope does not allow the call.
    pub scope: AtomicU64,
}

#[derive(Debug)]
struct Policy {
    /// `None`: no tokens asked for. Whether tokens are required is fixed
    /// at start; which tokens can be swapped while serving.
    tokens: Option<RwLock<Arc<Tokens>>>,
    limits: CallLimits,
    calls: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    watchers: Arc<Semaphore>,
    bodies: Arc<BodyRules>,
    refusals: Arc<Refusals>,
}

/// The tower [`Layer`] that wraps the whole router in a [`Guard`].
#[derive(Debug, Clone)]
pub struct CallGuard {
    policy: Arc<Policy>,
}

impl CallGuard {
    /// A guard that demands one of `tokens` (none: every call is let in)
    /// and applies `limits`.
    pub fn new(tokens: Option<Tokens>, limits: CallLimits) -> Self {
        let bodies = BodyRules::new(
            limits.max_request_bytes,
            limits.max_small_request_bytes,
            limits.max_inflight_request_bytes,
            limits.call_timeout / 2,
            limits.stream_idle_timeout,
        );
        Self {
            policy: Arc::new(Policy {
                tokens: tokens.map(|tokens| RwLock::new(Arc::new(tokens))),
                limits,
                calls: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
                streams: Arc::new(Semaphore::new(limits.max_concurrent_streams)),
                watchers: Arc::new(Semaphore::new(limits.max_watchers)),
                bodies: Arc::new(bodies),
                refusals: Arc::default(),
            }),
        }
    }
}

impl CallGuard {
    /// Replaces the accepted tokens (a reloaded tokens file); calls already
    /// let in are not affected. Returns `false`, changing nothing, when the
    /// guard was made without tokens.
    pub fn replace_tokens(&self, tokens: Tokens) -> bool {
        let Some(current) = &self.policy.tokens else {
            return false;
        };
        *current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        true
    }

    /// Who `token` is, if it may read (as for a page request); for the
    /// login form. Refusals are counted like the guard's.
    pub(crate) fn check_read_token(&self, token: &str) -> Result<Caller, Error> {
        let mut headers = http::HeaderMap::new();
        let value = http::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Unauthenticated("the token is not valid".into()))?;
        headers.insert(http::header::AUTHORIZATION, value);
        self.policy.authorize(CallClass::HttpRead, "/login", &headers)
    }

    /// The counts of calls refused for their token.
    pub fn refusals(&self) -> Arc<Refusals> {
        Arc::clone(&self.policy.refusals)
    }
}

impl<S> Layer<S> for CallGuard {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service made by [`CallGuard`].
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    policy: Arc<Policy>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Guard<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    ReqBody::Error: Into<tonic::codegen::StdError>,
    ResBody: Default + From<tonic::body::Body> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone is not ready yet; the instance polled ready is taken.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let route = Route::of(&path);
            if route.class.is_http() {
                return policy.http(route.class, &path, request, inner).await;
            }
            match policy.authorize(route.class, &path, request.headers()) {
                // Handlers take the caller from here (the project check).
                Ok(caller) => request.extensions_mut().insert(caller),
                Err(error) => return Ok(Status::from(error).into_http()),
            };
            let method = path.strip_prefix(METADATA_SERVICE).unwrap_or(&path).to_owned();
            let (call_slot, stream_slot) = match policy.take_slot(route.class) {
                Ok(slots) => slots,
                Err(error) => return Ok(Status::from(error).into_http()),
            };
            if route.class.slot() == Slot::Watch {
                // The handler hands it to the watch, which holds it until
                // the stream ends (the response outlives this call).
                match policy.watch_slot() {
                    Ok(slot) => request.extensions_mut().insert(slot),
                    Err(error) => return Ok(Status::from(error).into_http()),
                };
            }
            // A unary call's message charge lasts until its response.
            let held = Arc::new(Mutex::new(Vec::<OwnedSemaphorePermit>::new()));
            let hold = if route.class.is_stream() {
                Hold::UntilNextMessage
            } else {
                Hold::UntilResponse(Arc::clone(&held))
            };
            let call = CallBody {
                method,
                size: route.size,
                hold,
                idle: route.class.is_stream(),
                slot: stream_slot,
            };
            let bodies = Arc::clone(&policy.bodies);
            let request = request.map(|body| tonic::body::Body::new(GuardedBody::new(body, bodies, call)));
            let response = if route.class.slot() == Slot::Call {
                let deadline = policy.limits.call_timeout;
                match tokio::time::timeout(deadline, inner.call(request)).await {
                    Ok(response) => response?,
                    Err(_) => {
                        return Ok(Status::from(Error::DeadlineExceeded(format!(
                            "the call did not finish within the server's deadline of {deadline:?} \
                             (--call-timeout-secs)"
                        )))
                        .into_http());
                    }
                }
            } else {
                inner.call(request).await?
            };
            drop((call_slot, held));
            Ok(response)
        })
    }
}

impl Policy {
    /// The guard of an HTTP request: token, unary slot and deadline as
    /// for a unary call, refusals as HTTP responses, the body untouched.
    async fn http<S, ReqBody, ResBody>(
        &self,
        class: CallClass,
        path: &str,
        request: http::Request<ReqBody>,
        mut inner: S,
    ) -> Result<http::Response<ResBody>, S::Error>
    where
        S: Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
        ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
        ReqBody::Error: Into<tonic::codegen::StdError>,
        ResBody: From<tonic::body::Body>,
    {
        let refuse = |error: Error| {
            Ok(error
                .into_http_response()
                .map(|body| tonic::body::Body::new(body).into()))
        };
        let (mut parts, body) = request.into_parts();
        match self.authorize(class, path, &parts.headers) {
            Ok(caller) => parts.extensions.insert(caller),
            // A person at a browser gets the login form rather than a
            // challenge only API clients understand.
            Err(Error::Unauthenticated(message)) if class == CallClass::HttpRead && is_page(path) => {
                let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let form = crate::http::login_page(http::StatusCode::UNAUTHORIZED, next, Some(&message));
                return Ok(form.map(|body| tonic::body::Body::new(body).into()));
            }
            Err(error) => return refuse(error),
        };
        let (call_slot, _) = match self.take_slot(class) {
            Ok(slots) => slots,
            Err(error) => return refuse(error),
        };
        if class.slot() == Slot::Watch {
            // As for a gRPC watch: the events handler moves it into the
            // feed, which holds it until the client goes away.
            match self.watch_slot() {
                Ok(slot) => parts.extensions.insert(slot),
                Err(error) => return refuse(error),
            };
        }
        let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let response = if class.slot() == Slot::Call {
            let deadline = self.limits.call_timeout;
            match tokio::time::timeout(deadline, inner.call(request)).await {
                Ok(response) => response?,
                Err(_) => {
                    return refuse(Error::DeadlineExceeded(format!(
                        "the request did not finish within the server's deadline of {deadline:?} \
                         (--call-timeout-secs)"
                    )));
                }
            }
        } else {
            inner.call(request).await?
        };
        drop(call_slot);
        Ok(response)
    }

    /// The scope `class` needs here: the HTTP probes need a read token
    /// only when the server was told so.
    fn needed_scope(&self, class: CallClass) -> Option<Scope> {
        match class {
            CallClass::HttpProbe if self.limits.http_probes_token_required => Some(Scope::Read),
            _ => class.scope(),
        }
    }

    /// Checks the call's bearer token against the tokens file; returns who
    /// calls.
    fn authorize(&self, class: CallClass, path: &str, headers: &http::HeaderMap) -> Result<Caller, Error> {
        let (Some(tokens), Some(needed)) = (&self.tokens, self.needed_scope(class)) else {
            return Ok(Caller::anonymous());
        };
        let token = if class.is_http() {
            http_token(headers)
        } else {
            bearer_token(headers)
        };
        let token = token.inspect_err(|_| {
            self.refusals.missing.fetch_add(1, Ordering::Relaxed);
        })?;
        // A poisoned lock still holds a whole `Arc`: the value is usable.
        let tokens = tokens.read().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(identity) = tokens.identify(token) else {
            debug!(path, "refused a call with an unknown token");
            self.refusals.unknown.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Unauthenticated("the bearer token is not valid".into()));
        };
        if !identity.scope.allows(needed) {
            debug!(path, token = %identity.name, "refused a call outside the token's scope");
            self.refusals.scope.fetch_add(1, Ordering::Relaxed);
            return Err(Error::PermissionDenied(format!(
                "token {:?} has scope {}; {path} needs scope {needed}",
                identity.name, identity.scope
            )));
        }
        Ok(Caller {
            token: Some(identity.name),
            scope: identity.scope,
            projects: identity.projects,
        })
    }

    /// A slot of `--max-watchers`, or RESOURCE_EXHAUSTED (HTTP 429) when
    /// every one is held.
    fn watch_slot(&self) -> Result<WatchSlot, Error> {
        match self.watchers.clone().try_acquire_owned() {
            Ok(permit) => Ok(WatchSlot::new(permit)),
            Err(_) => Err(Error::ResourceExhausted(format!(
                "the server already holds its limit of {} open watches and event streams \
                 (--max-watchers); retry with backoff",
                self.limits.max_watchers
            ))),
        }
    }

    /// A slot of the call's budget: (unary slot, stream slot), or
    /// RESOURCE_EXHAUSTED when that budget is used up.
    fn take_slot(
        &self,
        class: CallClass,
    ) -> Result<(Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>), Error> {
        match class.slot() {
            Slot::None | Slot::Watch => Ok((None, None)),
            Slot::Call => match self.calls.clone().try_acquire_owned() {
                Ok(permit) => Ok((Some(permit), None)),
                Err(_) => Err(Error::ResourceExhausted(format!(
                    "the server is already handling its limit of {} concurrent calls \
                     (--max-concurrent-calls); retry with backoff",
                    self.limits.max_concurrent_calls
                ))),
            },
            Slot::Stream => match self.streams.clone().try_acquire_owned() {
                Ok(permit) => Ok((None, Some(permit))),
                Err(_) => Err(Error::ResourceExhausted(format!(
                    "the server already holds its limit of {} open streams \
                     (--max-concurrent-streams); retry with backoff",
                    self.limits.max_concurrent_streams
                ))),
            },
        }
    }
}

/// A slot of `--max-watchers`, put into the request's extensions by the
/// guard for the watch handler to keep until its stream ends.
#[derive(Debug, Clone)]
pub struct WatchSlot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl WatchSlot {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        Self(Arc::new(Mutex::new(Some(permit))))
    }

    /// Takes the slot (once); it is freed when the result is dropped.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Whether `path` is a page of the site (not its JSON API): what a
/// browser navigates to.
fn is_page(path: &str) -> bool {
    !path.starts_with("/api/")
}

/// The token of an HTTP request: `authorization: Bearer <token>`, else
/// the login form's cookie.
fn http_token(headers: &http::HeaderMap) -> Result<&str, Error> {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return bearer_token(headers);
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == crate::http::LOGIN_COOKIE && !value.is_empty()).then_some(value)
        })
        .ok_or_else(|| {
            Error::Unauthenticated(
                "this server requires a token: log in at /login, or send `authorization: Bearer <token>`"
                    .into(),
            )
        })
}

/// The token of `authorization: Bearer <token>`.
fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Error> {
    let missing = || {
        Error::Unauthenticated(
            "this server requires a token: send metadata `authorization: Bearer <token>`".into(),
        )
    };
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let with = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            bearer_token(&headers)
                .map(str::to_owned)
                .map_err(|e| e.to_string())
        };
        assert_eq!(with("Bearer abc").unwrap(), "abc");
        assert_eq!(with("bearer abc").unwrap(), "abc");
        assert!(with("Basic abc").is_err());
        assert!(with("Bearer ").is_err());
        assert!(with("abc").is_err());
        assert!(bearer_token(&http::HeaderMap::new()).is_err());
    }
}
