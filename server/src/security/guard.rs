//! [`CallGuard`]: the tower layer every call passes before it reaches a
//! service. It checks the bearer token and its scope, caps the number of
//! calls in progress, and puts a deadline on unary calls.
//!
//! It works on HTTP/2 requests rather than as a tonic interceptor because
//! an interceptor cannot see which method is called, and the scope a call
//! needs depends on the method.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::codegen::http;
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::debug;

use super::caller::Caller;
use super::tokens::{Scope, Tokens};
use crate::error::Error;

const METADATA_SERVICE: &str = "/mlmeta.v1.MetadataService/";
const HEALTH_SERVICE: &str = "/grpc.health.v1.Health/";
const REFLECTION_SERVICES: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Methods of `MetadataService` that only read. Every other method (and
/// any path not known here) needs a write token, so that a method added
/// later is never readable-by-mistake-writable.
const READ_METHODS: [&str; 8] = [
    "ListProjects",
    "ListDataBlobs",
    "ListModelTemplates",
    "ListModels",
    "ListEpochs",
    "GetCurrentEpoch",
    "GetBestModel",
    "GetLeaderboard",
];

/// Methods whose request is a stream. They last as long as the caller
/// keeps sending (a trainer may stream for days), so the per-call
/// deadline does not apply to them; the caller's own `grpc-timeout` does.
const STREAMING_METHODS: [&str; 1] = ["StreamEpochs"];

/// How the guard treats a call, decided from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CallClass {
    /// `None` for calls that need no token (health checks).
    scope: Option<Scope>,
    /// Whether the per-call deadline and the concurrency cap apply.
    limited: bool,
    /// Whether the call is a request stream (no per-call deadline).
    streaming: bool,
}

impl CallClass {
    fn of(path: &str) -> Self {
        if path.starts_with(HEALTH_SERVICE) {
            // Load balancers and orchestrators probe health without
            // credentials, and must get an answer even when the server is
            // at its call limit.
            return Self {
                scope: None,
                limited: false,
                streaming: false,
            };
        }
        if REFLECTION_SERVICES.iter().any(|prefix| path.starts_with(prefix)) {
            return Self {
                scope: Some(Scope::Read),
                limited: true,
                streaming: true,
            };
        }
        let method = path.strip_prefix(METADATA_SERVICE);
        let is = |list: &[&str]| method.is_some_and(|m| list.contains(&m));
        Self {
            scope: Some(if is(&READ_METHODS) {
                Scope::Read
            } else {
                Scope::Write
            }),
            limited: true,
            streaming: is(&STREAMING_METHODS),
        }
    }
}

/// Limits on calls, from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Longest time a unary call may take.
    pub call_timeout: Duration,
    /// Calls that may be in progress at once; more are refused.
    pub max_concurrent_calls: usize,
}

#[derive(Debug)]
struct Policy {
    /// `None`: no tokens asked for. Whether tokens are required is fixed
    /// at start; which tokens can be swapped while serving.
    tokens: Option<RwLock<Arc<Tokens>>>,
    limits: CallLimits,
    permits: Arc<Semaphore>,
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
        Self {
            policy: Arc::new(Policy {
                tokens: tokens.map(|tokens| RwLock::new(Arc::new(tokens))),
                limits,
                permits: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
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
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
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
            let class = CallClass::of(request.uri().path());
            match policy.authorize(class, request.uri().path(), request.headers()) {
                // Handlers take the caller from here (the project check).
                Ok(caller) => request.extensions_mut().insert(caller),
                Err(error) => return Ok(Status::from(error).into_http()),
            };
            if !class.limited {
                return inner.call(request).await;
            }
            let Ok(_permit) = policy.permits.clone().try_acquire_owned() else {
                let limit = policy.limits.max_concurrent_calls;
                return Ok(Status::from(Error::ResourceExhausted(format!(
                    "the server is already handling its limit of {limit} concurrent calls \
                     (--max-concurrent-calls); retry with backoff"
                )))
                .into_http());
            };
            let response = if class.streaming {
                inner.call(request).await?
            } else {
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
            };
            Ok(rename_oversized_message(response))
        })
    }
}

impl Policy {
    /// Checks the call's bearer token against the tokens file; returns who
    /// calls.
    fn authorize(&self, class: CallClass, path: &str, headers: &http::HeaderMap) -> Result<Caller, Error> {
        let (Some(tokens), Some(needed)) = (&self.tokens, class.scope) else {
            return Ok(Caller::anonymous());
        };
        let token = bearer_token(headers)?;
        // A poisoned lock still holds a whole `Arc`: the value is usable.
        let tokens = tokens.read().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(identity) = tokens.identify(token) else {
            debug!(path, "refused a call with an unknown token");
            return Err(Error::Unauthenticated("the bearer token is not valid".into()));
        };
        if !identity.scope.allows(needed) {
            debug!(path, token = %identity.name, "refused a call outside the token's scope");
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

/// tonic reports a request message over the size limit as OUT_OF_RANGE;
/// gRPC's own implementations (and the clients that classify errors by
/// code) use RESOURCE_EXHAUSTED for it, so the status is renamed.
fn rename_oversized_message<B: Default>(response: http::Response<B>) -> http::Response<B> {
    match Status::from_header_map(response.headers()) {
        Some(status)
            if status.code() == Code::OutOfRange
                && status.message().contains("decoded message length too large") =>
        {
            Status::from(Error::ResourceExhausted(format!(
                "request message too large (--max-request-bytes): {}",
                status.message()
            )))
            .into_http()
        }
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn health_is_open_and_unlimited() {
        let class = CallClass::of("/grpc.health.v1.Health/Check");
        assert_eq!(class.scope, None);
        assert!(!class.limited);
    }

    #[test]
    fn unknown_paths_need_write() {
        assert_eq!(
            CallClass::of("/mlmeta.v1.MetadataService/DropEverything").scope,
            Some(Scope::Write)
        );
        assert_eq!(
            CallClass::of("/other.Service/ListModels").scope,
            Some(Scope::Write)
        );
    }

    /// Every method of the service is classified on purpose: reads are
    /// listed, and the rest are exactly the methods that write.
    #[test]
    fn every_rpc_of_the_service_has_the_intended_scope() {
        let set = prost_types::FileDescriptorSet::decode(mlmeta_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service = set
            .file
            .iter()
            .flat_map(|file| &file.service)
            .find(|service| service.name() == "MetadataService")
            .unwrap();
        let mut writes = Vec::new();
        for method in &service.method {
            let class = CallClass::of(&format!("{METADATA_SERVICE}{}", method.name()));
            assert_eq!(class.streaming, method.client_streaming(), "{}", method.name());
            if class.scope == Some(Scope::Write) {
                writes.push(method.name().to_owned());
            }
        }
        writes.sort();
        assert_eq!(
            writes,
            [
                "InsertEpochs",
                "PutDataBlob",
                "PutModel",
                "PutModelTemplate",
                "StreamEpochs"
            ]
        );
        assert_eq!(service.method.len(), READ_METHODS.len() + writes.len());
    }

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
