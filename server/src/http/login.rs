//! The login form of a server with `--auth-tokens`: `GET /login` shows
//! it, `POST /login` takes a token with read scope and keeps it in the
//! cookie `mlmeta_token` (`HttpOnly`, so the page's script never sees it;
//! `SameSite=Strict`, so other sites cannot send it; `Secure` over TLS),
//! which the guard accepts on HTTP paths like `Authorization: Bearer`.
//! `POST /logout` clears it. A page requested without a valid token gets
//! this form with status 401 (see the guard).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::security::CallGuard;

/// The cookie holding the token.
pub(crate) const COOKIE: &str = "mlmeta_token";

/// What the login routes need.
#[derive(Clone)]
pub(crate) struct Login {
    /// Checks tokens as the guard does.
    pub guard: CallGuard,
    /// Whether the site is served over TLS (the cookie is `Secure`).
    pub secure: bool,
}

pub(super) fn router(login: Login) -> Router {
    Router::new()
        .route("/login", get(show).post(submit))
        .route("/logout", post(logout))
        .with_state(login)
}

async fn show(Query(params): Query<HashMap<String, String>>) -> Response {
    let next = params.get("next").map_or("/", String::as_str);
    page(StatusCode::OK, next, None)
}

async fn submit(State(login): State<Login>, Form(form): Form<HashMap<String, String>>) -> Response {
    let next = form.get("next").map_or("/", String::as_str);
    let token = form.get("token").map_or("", |token| token.trim());
    if token.is_empty() {
        return page(StatusCode::BAD_REQUEST, next, Some("token: enter a token"));
    }
    if let Err(error) = login.guard.check_read_token(token) {
        let message = error.into_http_response().into_body();
        return page(StatusCode::UNAUTHORIZED, next, Some(message.trim_end()));
    }
    // Tokens made by `mlmeta-server token` are URL-safe base64; anything
    // else might not survive as a cookie value.
    let Some(cookie) = cookie_value(token, login.secure) else {
        return page(
            StatusCode::BAD_REQUEST,
            next,
            Some("token: this token has characters a cookie cannot hold; send it as Authorization: Bearer"),
        );
    };
    redirect(local(next), Some(cookie))
}

async fn logout(State(login): State<Login>) -> Response {
    let secure = if login.secure { "; Secure" } else { "" };
    let cleared = HeaderValue::from_str(&format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ));
    redirect("/login", cleared.ok())
}

/// The `Set-Cookie` value for `token`, if it is made of cookie-safe
/// characters.
fn cookie_value(token: &str, secure: bool) -> Option<HeaderValue> {
    let safe = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b));
    if !safe {
        return None;
    }
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .ok()
}

/// `next` if it is a path of this site, else `/` (no open redirect).
fn local(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn redirect(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The form, with `error` shown above it.
pub(crate) fn page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let error = error.map_or(String::new(), |error| {
        format!(
            "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>",
            escape(error)
        )
    });
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>mlmeta: log in</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
<body><main class=\"login\"><h1>mlmeta</h1>{error}\
<form method=\"post\" action=\"/login\" id=\"login-form\">\
<label for=\"token\">Token (read scope)</label>\
<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" autofocus required>\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<button type=\"submit\">Log in</button></form>\
<p class=\"hint\">This server asks for a token (<code>--auth-tokens</code>). \
API clients send it as <code>authorization: Bearer &lt;token&gt;</code>.</p>\
</main></body></html>\n",
        next = escape(local(next)),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local("/model/a?project=p"), "/model/a?project=p");
        for outside in ["https://evil.example/", "//evil.example", "/\\evil", "evil"] {
            assert_eq!(local(outside), "/", "{outside}");
        }
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = cookie_value("mlm_abc-DEF_123", false).unwrap();
        assert_eq!(
            plain,
            "mlmeta_token=mlm_abc-DEF_123; HttpOnly; SameSite=Strict; Path=/"
        );
        let tls = cookie_value("mlm_abc", true).unwrap();
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        assert!(cookie_value("a;b", false).is_none());
        assert!(cookie_value("a b", false).is_none());
    }

    #[test]
    fn errors_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
