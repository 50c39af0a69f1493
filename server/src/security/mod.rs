//! Who may call the server and how much: TLS, bearer tokens with scopes,
//! and limits on calls.

mod guard;
mod tls;
pub mod tokens;

pub use guard::{CallGuard, CallLimits, Guard};
pub use tls::TlsFiles;
pub use tokens::{Scope, Tokens};
