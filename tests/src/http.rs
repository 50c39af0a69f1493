//! Requests to a server's HTTP listener, over HTTP/1.1 or HTTP/2 (h2c, or
//! TLS with ALPN), one connection per request so that the protocol is the
//! one asked for; and [`Scrape`], a parsed Prometheus text exposition.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::http;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// HTTP version of a [`Get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1 (over TLS: ALPN `http/1.1` only is offered).
    Http1,
    /// HTTP/2: prior knowledge in clear, ALPN `h2` over TLS.
    Http2,
}

/// A GET request to the HTTP listener at `addr` (or a POST, with
/// [`Get::post_form`]).
#[derive(Clone)]
pub struct Get {
    addr: SocketAddr,
    path: String,
    version: Version,
    bearer: Option<String>,
    tls: Option<TlsConnector>,
    headers: Vec<(String, String)>,
    form: Option<String>,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The protocol the server answered in.
    pub version: http::Version,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Get {
    /// `GET path` over HTTP/1.1 in clear, without a token.
    pub fn new(addr: SocketAddr, path: &str) -> Self {
        Self {
            addr,
            path: path.to_owned(),
            version: Version::Http1,
            bearer: None,
            tls: None,
            headers: Vec::new(),
            form: None,
        }
    }

    /// With header `name: value` (e.g. `cookie`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A `POST` of `body` as `application/x-www-form-urlencoded`.
    pub fn post_form(mut self, body: &str) -> Self {
        self.form = Some(body.to_owned());
        self
    }

    /// Over `version`.
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// With `authorization: Bearer token`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// Over TLS with `connector` (its ALPN offer is replaced by the one
    /// of the version: see [`crate::tls::TestPki::connector_offering`]).
    pub fn tls(mut self, connector: TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// Sends the request; panics when the connection fails.
    pub async fn send(self) -> Reply {
        let tcp = TcpStream::connect(self.addr)
            .await
            .expect("connect to the HTTP listener");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let request = self.request();
        match self.tls.clone() {
            None => self.exchange(tcp, request).await,
            Some(connector) => {
                let name = ServerName::try_from("localhost").expect("a server name");
                let tls = connector.connect(name, tcp).await.expect("TLS handshake");
                let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let expected: &[u8] = match self.version {
                    Version::Http1 => b"http/1.1",
                    Version::Http2 => b"h2",
                };
                assert_eq!(negotiated.as_deref(), Some(expected), "ALPN negotiated");
                self.exchange(tls, request).await
            }
        }
    }

    /// Sends the request over HTTP/1.1 in clear and returns the status
    /// and the body as it arrives (for server-sent events).
    pub async fn open(self) -> (u16, hyper::body::Incoming) {
        let tcp = TcpStream::connect(self.addr)
            .await
            .expect("connect to the HTTP listener");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let response = sender
            .send_request(self.request())
            .await
            .expect("HTTP/1.1 request");
        (response.status().as_u16(), response.into_body())
    }

    fn request(&self) -> http::Request<Full<Bytes>> {
        let authority = format!("localhost:{}", self.addr.port());
        let mut builder = match &self.form {
            None => http::Request::get(&self.path),
            Some(_) => http::Request::post(&self.path)
                .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
        };
        builder = match self.version {
            // HTTP/1.1 needs a Host header; HTTP/2 takes the authority
            // from the URI.
            Version::Http1 => builder.header(http::header::HOST, authority),
            Version::Http2 => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                builder.uri(format!("{scheme}://{authority}{}", self.path))
            }
        };
        if let Some(token) = &self.bearer {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = Bytes::from(self.form.clone().unwrap_or_default());
        builder.body(Full::new(body)).expect("a valid request")
    }

    async fn exchange<IO>(&self, io: IO, request: http::Request<Full<Bytes>>) -> Reply
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let response = match self.version {
            Version::Http1 => {
                let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("HTTP/1.1 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("HTTP/1.1 request")
            }
            Version::Http2 => {
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("HTTP/2 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("HTTP/2 request")
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the response body").to_bytes();
        Reply {
            status: parts.status.as_u16(),
            version: parts.version,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        }
    }
}

/// One sample of a scrape: its metric name (with `_total`, `_bucket`,
/// ... suffixes) and labels.
pub type SampleKey = (String, BTreeMap<String, String>);

/// A Prometheus text exposition, parsed strictly: every line is a
/// comment (`# HELP`, `# TYPE`) or `name{label="value",...} number`; a
/// line that is neither fails the test.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Every sample.
    pub samples: BTreeMap<SampleKey, f64>,
    /// `# TYPE` of each family.
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses `text`.
    pub fn parse(text: &str) -> Self {
        let mut scrape = Self::default();
        for line in text.lines().filter(|line| !line.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
                scrape.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") || line.starts_with("# UNIT ") || line == "# EOF" {
                continue;
            }
            let (key, value) = parse_sample(line);
            assert!(
                scrape.samples.insert(key.clone(), value).is_none(),
                "sample {key:?} appears twice"
            );
        }
        scrape
    }

    /// The sample `name` whose labels include every one of `labels`,
    /// summed over those that match (0 when none does).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((sample, sample_labels), _)| {
                sample == name
                    && labels
                        .iter()
                        .all(|(key, value)| sample_labels.get(*key).map(String::as_str) == Some(*value))
            })
            .map(|(_, value)| value)
            .sum()
    }

    /// Whether any sample is called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.keys().any(|(sample, _)| sample == name)
    }
}

/// `name{a="x",b="y"} 1.5` (labels optional).
fn parse_sample(line: &str) -> (SampleKey, f64) {
    let bad = || -> ! { panic!("not a sample line: {line:?}") };
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad());
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line:?}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let Some((_, c)) = chars.next() else { bad() };
            match c {
                '}' => break,
                ',' if key.is_empty() => {}
                '=' => {
                    assert_eq!(
                        chars.next().map(|(_, c)| c),
                        Some('"'),
                        "label value quoted in {line:?}"
                    );
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(other),
                                None => bad(),
                            },
                            Some(other) => value.push(other),
                            None => bad(),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
        let consumed = chars.next().map_or(inner.len(), |(i, _)| i);
        rest = &inner[consumed..];
    }
    let value_text = rest.trim();
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        text => text.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    ((name.to_owned(), labels), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exposition_format() {
        let scrape = Scrape::parse(
            "# HELP a_total A.\n# TYPE a counter\na_total{x=\"1\",y=\"q\\\"z\"} 3\nb 2.5\nh_bucket{le=\"+Inf\"} 4\n",
        );
        assert_eq!(scrape.types["a"], "counter");
        assert_eq!(scrape.sum("a_total", &[("x", "1")]), 3.0);
        assert_eq!(scrape.sum("a_total", &[("y", "q\"z")]), 3.0);
        assert_eq!(scrape.sum("a_total", &[("x", "2")]), 0.0);
        assert_eq!(scrape.sum("b", &[]), 2.5);
        assert_eq!(scrape.sum("h_bucket", &[("le", "+Inf")]), 4.0);
    }

    #[test]
    #[should_panic(expected = "bad value")]
    fn refuses_garbage() {
        Scrape::parse("what is this\n");
    }
}
