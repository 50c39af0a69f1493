//! [`Route`]: how the guard treats a call, decided from its path alone.
//!
//! Every method of `mlmeta.v1.MetadataService` is listed in [`METHODS`]
//! with its [`CallClass`] and its [`RequestSize`]; a test checks the list
//! against the service's file descriptor set, so a method added to the
//! proto fails the build's tests until it is classified here on purpose.
//!
//! Paths that are not gRPC-shaped (`/package.Service/Method`) belong to
//! the HTTP listener: the probes [`HTTP_PROBES`] are open endpoints, a
//! model's server-sent events ([`is_http_events`]) are a watch, and every
//! other path (the page, its `/api/...`) reads.

use super::tokens::Scope;

pub(super) const METADATA_SERVICE: &str = "/mlmeta.v1.MetadataService/";
const HEALTH_SERVICE: &str = "/grpc.health.v1.Health/";
const REFLECTION_SERVICES: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The operator endpoints of the HTTP listener: open unless
/// `--http-probes-token-required`.
pub(crate) const HTTP_PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The paths of the HTTP listener that need no token even when tokens are
/// asked for: the login form (where a token is entered) and the page's
/// static files (the same for everyone, and needed by the form).
const HTTP_OPEN: [&str; 2] = ["/login", "/logout"];
const HTTP_OPEN_PREFIX: &str = "/static/";

/// What kind of call a path is, which decides the token scope it needs,
/// the budget it draws from and the time limit it runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallClass {
    /// Health checks: no token, no budget, no deadline. Load balancers and
    /// orchestrators probe without credentials, and must get an answer
    /// even when the server is at its limits.
    Open,
    /// A unary call that only reads: one slot of `--max-concurrent-calls`
    /// and the per-call deadline.
    UnaryRead,
    /// A unary call that writes, and any path not known here (so that a
    /// method added later is never readable-by-mistake-writable): like
    /// [`CallClass::UnaryRead`] but needs a write token.
    UnaryWrite,
    /// A request stream that writes (`StreamEpochs`, and `WriteEpochs`,
    /// whose answers follow its batches). A trainer may keep it
    /// open for days, mostly idle, so it takes a slot of
    /// `--max-concurrent-streams` instead of a unary one, has no per-call
    /// deadline, and ends when idle for `--stream-idle-timeout-secs`.
    ClientStream,
    /// Reflection: a bidirectional stream of reads that a tool (grpcurl)
    /// keeps open for a few lookups. Budgeted like
    /// [`CallClass::ClientStream`], with a read token.
    ReflectionStream,
    /// The HTTP probes [`HTTP_PROBES`]: no budget, no deadline, and no
    /// token unless `--http-probes-token-required` (then a read token),
    /// for the same reason as [`CallClass::Open`].
    HttpProbe,
    /// Any other HTTP path (the page and its JSON API, and paths that do
    /// not exist, which answer 404 once the token is checked): a read
    /// token, one slot of `--max-concurrent-calls` and the per-call
    /// deadline, like [`CallClass::UnaryRead`].
    HttpRead,
    /// The login form and the static files (`/login`, `/logout`,
    /// `/static/...`): no token, one slot of `--max-concurrent-calls` and
    /// the per-call deadline (a flood of login attempts is budgeted like
    /// any other call).
    HttpOpen,
    /// A model's server-sent events
    /// (`/api/v1/projects/{p}/models/{name}/events`): the HTTP twin of
    /// [`CallClass::ServerStream`] (fed by the same watch hub), so a read
    /// token, no per-call deadline, and a slot of `--max-watchers` for as
    /// long as the client listens.
    HttpEvents,
    /// A long-lived response stream that only reads (`WatchEpochs`,
    /// `WatchModels`): a read token, the project restriction, no per-call
    /// deadline, and a slot of `--max-watchers` for its whole life, so
    /// that watchers never take unary or write-stream slots.
    ServerStream,
}

/// Which request size limit applies to a method's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestSize {
    /// At most `--max-small-request-bytes` per message, not charged to the
    /// in-flight budget (they are small and their number is bounded by the
    /// call and stream slots; reads must never queue behind bulk inserts).
    Small,
    /// At most `--max-request-bytes` per message, each charged to
    /// `--max-inflight-request-bytes` while it is received and handled.
    Bulk,
}

/// Every method of `MetadataService` with its class and request size.
const METHODS: [(&str, CallClass, RequestSize); 32] = {
    use CallClass::{ClientStream, ServerStream, UnaryRead, UnaryWrite};
    use RequestSize::{Bulk, Small};
    [
        ("PutDataBlob", UnaryWrite, Small),
        ("PutModelTemplate", UnaryWrite, Small),
        ("PutModel", UnaryWrite, Small),
        ("InsertEpochs", UnaryWrite, Bulk),
        ("StreamEpochs", ClientStream, Bulk),
        ("ListProjects", UnaryRead, Small),
        ("ListDataBlobs", UnaryRead, Small),
        ("ListModelTemplates", UnaryRead, Small),
        ("ListModels", UnaryRead, Small),
        ("ListEpochs", UnaryRead, Small),
        ("GetCurrentEpoch", UnaryRead, Small),
        ("GetBestModel", UnaryRead, Small),
        ("GetLeaderboard", UnaryRead, Small),
        ("UpdateTags", UnaryWrite, Small),
        ("SetDescription", UnaryWrite, Small),
        ("StartRun", UnaryWrite, Small),
        ("Heartbeat", UnaryWrite, Small),
        ("EndRun", UnaryWrite, Small),
        ("GetModel", UnaryRead, Small),
        ("PutArtifact", UnaryWrite, Small),
        ("ListArtifacts", UnaryRead, Small),
        ("DeleteArtifact", UnaryWrite, Small),
        // Tokens have no admin scope: purge needs a write token.
        ("DeleteRecord", UnaryWrite, Small),
        ("RestoreRecord", UnaryWrite, Small),
        ("Purge", UnaryWrite, Small),
        // Bidirectional, but long-lived through its request stream (its
        // answers only follow the batches): a client stream.
        ("WriteEpochs", ClientStream, Bulk),
        // Content in chunks of up to the bulk limit, for as long as the
        // upload takes.
        ("UploadArtifact", ClientStream, Bulk),
        // A long response (the chunks, a few read ahead of the client):
        // no unary deadline, a slot of --max-watchers while it streams.
        ("DownloadArtifact", ServerStream, Small),
        ("WatchEpochs", ServerStream, Small),
        ("WatchModels", ServerStream, Small),
        // Pages of a whole project, for as long as the client reads:
        // like a download.
        ("Export", ServerStream, Small),
        // Records in batches of up to the bulk limit, for as long as the
        // import takes.
        ("Import", ClientStream, Bulk),
    ]
};

/// How the guard treats one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    /// Scope, budget and time limit.
    pub class: CallClass,
    /// Request size limit and in-flight charging.
    pub size: RequestSize,
}

impl Route {
    /// The route of `path` (`/package.Service/Method`).
    pub fn of(path: &str) -> Self {
        let small = |class| Self {
            class,
            size: RequestSize::Small,
        };
        if path.starts_with(HEALTH_SERVICE) {
            return small(CallClass::Open);
        }
        if REFLECTION_SERVICES.iter().any(|prefix| path.starts_with(prefix)) {
            return small(CallClass::ReflectionStream);
        }
        if !is_grpc_shaped(path) {
            return small(if HTTP_PROBES.contains(&path) {
                CallClass::HttpProbe
            } else if is_http_events(path) {
                CallClass::HttpEvents
            } else if HTTP_OPEN.contains(&path) || path.starts_with(HTTP_OPEN_PREFIX) {
                CallClass::HttpOpen
            } else {
                CallClass::HttpRead
            });
        }
        path.strip_prefix(METADATA_SERVICE)
            .and_then(|method| METHODS.iter().find(|(name, ..)| *name == method))
            .map_or(small(CallClass::UnaryWrite), |&(_, class, size)| Self {
                class,
                size,
            })
    }
}

/// Whether `path` looks like a gRPC method, `/package.Service/Method`: its
/// first segment names a service with its package (a dot), and a method
/// follows. HTTP paths (`/`, `/api/v1/models`, `/healthz`) never do.
fn is_grpc_shaped(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(service, _)| service.contains('.'))
}

/// Whether `path` is a model's events stream,
/// `/api/v1/projects/{p}/models/{name}/events` (one non-empty segment
/// each for the project and the model: names never hold a `/`).
fn is_http_events(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "api", "v1", "projects", project, "models", name, "events"]
            if !project.is_empty() && !name.is_empty()
    )
}

/// Which of the guard's budgets a call takes a slot of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// None (health checks).
    None,
    /// `--max-concurrent-calls`, for the whole call.
    Call,
    /// `--max-concurrent-streams`, while the request stream is open.
    Stream,
    /// `--max-watchers`, while the response stream is open.
    Watch,
}

impl CallClass {
    /// The token scope the call needs; `None`: no token at all.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Self::Open | Self::HttpProbe | Self::HttpOpen => None,
            Self::UnaryRead
            | Self::ReflectionStream
            | Self::HttpRead
            | Self::ServerStream
            | Self::HttpEvents => Some(Scope::Read),
            Self::UnaryWrite | Self::ClientStream => Some(Scope::Write),
        }
    }

    /// The budget the call takes a slot of.
    pub fn slot(self) -> Slot {
        match self {
            Self::Open | Self::HttpProbe => Slot::None,
            Self::UnaryRead | Self::UnaryWrite | Self::HttpRead | Self::HttpOpen => Slot::Call,
            Self::ClientStream | Self::ReflectionStream => Slot::Stream,
            Self::ServerStream | Self::HttpEvents => Slot::Watch,
        }
    }

    /// Whether the request is a stream of messages (idle timeout, and each
    /// message's in-flight charge ends when the next one is asked for)
    /// rather than one message (charge held until the response).
    pub fn is_stream(self) -> bool {
        self.slot() == Slot::Stream
    }

    /// Whether the path belongs to the HTTP listener (refusals are HTTP
    /// statuses, the body is not gRPC-framed).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Self::HttpProbe | Self::HttpRead | Self::HttpOpen | Self::HttpEvents
        )
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn health_is_open_and_unlimited() {
        let route = Route::of("/grpc.health.v1.Health/Check");
        assert_eq!(route.class, CallClass::Open);
        assert_eq!(route.class.scope(), None);
        assert_eq!(route.class.slot(), Slot::None);
        assert_eq!(route.size, RequestSize::Small);
    }

    #[test]
    fn reflection_is_a_read_stream() {
        for path in [
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::ReflectionStream, "{path}");
            assert_eq!(route.class.scope(), Some(Scope::Read));
            assert_eq!(route.class.slot(), Slot::Stream);
            assert_eq!(route.size, RequestSize::Small);
        }
    }

    #[test]
    fn unknown_grpc_paths_are_small_unary_writes() {
        for path in [
            "/mlmeta.v1.MetadataService/DropEverything",
            "/other.Service/ListModels",
            "/other.Service/InsertEpochs",
            "/a.b/",
        ] {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::UnaryWrite, "{path}");
            assert_eq!(route.class.scope(), Some(Scope::Write));
            assert_eq!(route.size, RequestSize::Small, "{path}");
        }
    }

    #[test]
    fn http_paths_are_probes_or_reads() {
        for path in HTTP_PROBES {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::HttpProbe, "{path}");
            assert_eq!(route.class.scope(), None);
            assert_eq!(route.class.slot(), Slot::None);
            assert!(route.class.is_http());
        }
        for path in [
            "/",
            "/api/v1/models",
            "/api/nothing/here",
            "/metrics/",
            "/healthz/x",
            "/favicon.ico",
            "/statics/x",
            "/login/x",
            "",
        ] {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::HttpRead, "{path}");
            assert_eq!(route.class.scope(), Some(Scope::Read), "{path}");
            assert_eq!(route.class.slot(), Slot::Call, "{path}");
            assert!(route.class.is_http() && !route.class.is_stream(), "{path}");
        }
        for path in [
            "/login",
            "/logout",
            "/static/app.js",
            "/static/vendor/uPlot.min.css",
        ] {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::HttpOpen, "{path}");
            assert_eq!(route.class.scope(), None, "{path}");
            assert_eq!(route.class.slot(), Slot::Call, "{path}");
            assert!(route.class.is_http(), "{path}");
        }
        for path in [
            "/grpc.health.v1.Health/Check",
            "/mlmeta.v1.MetadataService/ListModels",
        ] {
            assert!(!Route::of(path).class.is_http(), "{path}");
        }
    }

    /// Every method of the service is classified on purpose: each is in
    /// [`METHODS`] once, its class matches its streaming shape in the
    /// descriptor, reads are listed, the rest are exactly the methods that
    /// write, and only the three epoch inserts take bulk messages.
    #[test]
    fn every_rpc_of_the_service_has_the_intended_class() {
        let set = prost_types::FileDescriptorSet::decode(mlmeta_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service = set
            .file
            .iter()
            .flat_map(|file| &file.service)
            .find(|service| service.name() == "MetadataService")
            .unwrap();
        let (mut writes, mut bulk) = (Vec::new(), Vec::new());
        for method in &service.method {
            let name = method.name();
            assert_eq!(
                METHODS.iter().filter(|(listed, ..)| *listed == name).count(),
                1,
                "{name} must be listed in METHODS exactly once"
            );
            let route = Route::of(&format!("{METADATA_SERVICE}{name}"));
            // A server stream has a class of its own (its response, not
            // its request, is long-lived). A bidirectional stream whose
            // answers follow its requests is a client stream.
            let expected = match (
                method.client_streaming(),
                method.server_streaming(),
                route.class.scope(),
            ) {
                (true, _, _) => CallClass::ClientStream,
                (false, true, _) => CallClass::ServerStream,
                (false, false, Some(Scope::Read)) => CallClass::UnaryRead,
                (false, false, _) => CallClass::UnaryWrite,
            };
            assert_eq!(route.class, expected, "{name}");
            if route.class.scope() == Some(Scope::Write) {
                writes.push(name.to_owned());
            }
            if route.size == RequestSize::Bulk {
                bulk.push(name.to_owned());
            }
        }
        writes.sort();
        assert_eq!(
            writes,
            [
                "DeleteArtifact",
                "DeleteRecord",
                "EndRun",
                "Heartbeat",
                "Import",
                "InsertEpochs",
                "Purge",
                "PutArtifact",
                "PutDataBlob",
                "PutModel",
                "PutModelTemplate",
                "RestoreRecord",
                "SetDescription",
                "StartRun",
                "StreamEpochs",
                "UpdateTags",
                "UploadArtifact",
                "WriteEpochs",
            ]
        );
        bulk.sort();
        assert_eq!(
            bulk,
            [
                "Import",
                "InsertEpochs",
                "StreamEpochs",
                "UploadArtifact",
                "WriteEpochs"
            ]
        );
        assert_eq!(service.method.len(), METHODS.len());
    }

    #[test]
    fn model_events_are_http_watches() {
        for path in [
            "/api/v1/projects/default/models/alpha/events",
            "/api/v1/projects/p-1/models/m.2/events",
        ] {
            let route = Route::of(path);
            assert_eq!(route.class, CallClass::HttpEvents, "{path}");
            assert_eq!(route.class.scope(), Some(Scope::Read), "{path}");
            assert_eq!(route.class.slot(), Slot::Watch, "{path}");
            assert!(route.class.is_http() && !route.class.is_stream(), "{path}");
        }
        for path in [
            "/api/v1/projects/default/models/alpha",
            "/api/v1/projects/default/models/events",
            "/api/v1/projects/default/models//events",
            "/api/v1/projects/default/models/alpha/events/x",
            "/api/v1/projects/default/models/alpha/metrics",
            "/x/api/v1/projects/default/models/alpha/events",
        ] {
            assert_eq!(Route::of(path).class, CallClass::HttpRead, "{path}");
        }
    }

    #[test]
    fn watches_are_read_server_streams_with_their_own_budget() {
        for method in ["WatchEpochs", "WatchModels"] {
            let route = Route::of(&format!("{METADATA_SERVICE}{method}"));
            assert_eq!(route.class, CallClass::ServerStream, "{method}");
            assert_eq!(route.class.scope(), Some(Scope::Read));
            assert_eq!(route.class.slot(), Slot::Watch);
            assert!(
                !route.class.is_stream(),
                "{method}: one request message, no idle timeout"
            );
            assert_eq!(route.size, RequestSize::Small);
        }
    }
}
