//! Who may call the server and how much: TLS, bearer tokens with scopes,
//! and limits on calls, streams and request bytes.

mod body;
mod caller;
mod class;
mod guard;
mod tls;
pub mod tokens;

pub use caller::{Caller, DEFAULT_PROJECT, ProjectScope, Projects};
pub use guard::{CallGuard, CallLimits, Guard, Refusals, WatchSlot};
pub use tls::{TlsAcceptors, TlsFiles};
pub use tokens::{Scope, Tokens};
