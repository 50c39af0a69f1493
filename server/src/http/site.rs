//! The page's static files, embedded in the binary (`include_bytes!`):
//! `server/static/` (HTML, CSS, vanilla JavaScript, no build step) and the
//! vendored uPlot of `server/static/vendor/` (see its `VENDORED.md`).
//!
//! The page routes in the browser (`history.pushState`), so every page
//! path (`/`, `/model/NAME`, `/compare`) answers with the same
//! `index.html`; the script reads the path and the query.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: &[u8] = include_bytes!("../../static/index.html");

/// Every embedded file but `index.html`, by URL path.
const ASSETS: [Asset; 5] = [
    Asset {
        path: "/static/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/app.js"),
    },
    Asset {
        path: "/static/app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/app.css"),
    },
    Asset {
        path: "/static/vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "/static/vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/vendor/uPlot.min.css"),
    },
    Asset {
        path: "/static/vendor/LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../static/vendor/LICENSE"),
    },
];

/// The pages and the static files.
pub(super) fn router() -> Router {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/compare", get(index))
        .route("/model/{name}", get(index));
    for asset in &ASSETS {
        let (content_type, bytes) = (asset.content_type, asset.bytes);
        router = router.route(asset.path, get(move || async move { file(content_type, bytes) }));
    }
    router
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate every time: a new server binary brings new files under
    // the same names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    /// The vendored files are the ones `VENDORED.md` records (their
    /// SHA-256 sums, in its table of files).
    #[test]
    fn vendored_files_match_vendored_md() {
        let record = include_str!("../../static/vendor/VENDORED.md");
        let mut checked = 0;
        for asset in ASSETS
            .iter()
            .filter(|asset| asset.path.starts_with("/static/vendor/"))
        {
            let file = asset.path.trim_start_matches("/static/vendor/");
            let line = record
                .lines()
                .find(|line| line.starts_with(&format!("| `{file}` |")))
                .unwrap_or_else(|| panic!("VENDORED.md lists no {file}"));
            let sum = hex::encode(Sha256::digest(asset.bytes));
            assert!(
                line.contains(&format!("`{sum}`")),
                "{file}: SHA-256 {sum} is not the recorded one: {line}"
            );
            checked += 1;
        }
        assert_eq!(checked, 3);
        assert!(record.contains("| Version | 1.6.32 |"));
        assert!(record.contains("sha512-"), "the npm integrity is recorded");
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let index = std::str::from_utf8(INDEX).unwrap();
        for needle in [
            "/static/app.js",
            "/static/app.css",
            "/static/vendor/uPlot.iife.min.js",
        ] {
            assert!(index.contains(needle), "{needle}");
        }
        assert!(
            !index.contains("http://") && !index.contains("https://"),
            "no CDN"
        );
    }
}
