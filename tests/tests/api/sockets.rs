//! Connections that never become HTTP/2: sockets that connect and send
//! nothing, or half a preface, or stall in the TLS handshake, or finish it
//! and then say nothing; peers that stop answering keepalive pings. None of
//! them may lock other clients out: the binary raises its soft open-files
//! limit, closes connections that miss `--handshake-timeout-secs`, sets
//! TCP keepalive, and logs (rate-limited) and pauses when accepting fails
//! for want of file descriptors.
//!
//! The binary tests run once (on SQLite): accepting connections does not
//! touch the database. The in-process ones run on both backends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use mlmeta_tests::calls::{self, seed_model};
use mlmeta_tests::process::{ServerProcess, free_port, server_binary};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::tls::TestPki;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup, run_bounded, wait_healthy};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

backend_tests_with_setup! {
    stalled_tls_handshakes_are_closed_while_tls_clients_get_through,
    keepalive_reaps_deaf_peers_and_spares_idle_clients,
}

/// Silent sockets the binary tests hold at once: more than the soft limit
/// they start the server with.
const SILENT: usize = 300;
/// The soft open-files limit the binary tests start the server with.
const SOFT_LIMIT: &str = "256";
/// How long a socket that the server should close may stay open before
/// the test gives up on it (the timeouts under test are 1-2 s).
const CLOSE_LIMIT: Duration = Duration::from_secs(20);
/// How long a client may take to get through.
const CALL_LIMIT: Duration = Duration::from_secs(15);
/// Time each binary test may take once the binary is built.
const LIMIT: Duration = Duration::from_secs(120);
const READY: Duration = Duration::from_secs(60);
/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `count` connections to `addr` that send nothing.
async fn silent_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    sockets
}

/// Reads (and drops) what the server sends on `socket` until it closes
/// the connection (end of stream or an error such as a reset); returns
/// when that happened, or an error after `limit`.
async fn closed_by_server(mut socket: impl AsyncRead + Unpin, limit: Duration) -> Result<Instant, String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return Err(format!("the server left the connection open for {limit:?}")),
            Ok(Ok(0) | Err(_)) => return Ok(Instant::now()),
            // The server's own SETTINGS frame, sent before it reads the preface.
            Ok(Ok(_)) => {}
        }
    }
}

/// Waits until the server closed every socket; returns when the last one
/// was closed.
async fn all_closed_by_server<S: AsyncRead + Unpin>(what: &str, sockets: Vec<S>) -> Instant {
    let count = sockets.len();
    let closes = join_all(sockets.into_iter().map(|s| closed_by_server(s, CLOSE_LIMIT))).await;
    let open = closes.iter().filter(|c| c.is_err()).count();
    assert_eq!(
        open, 0,
        "{open} of {count} {what} still open after {CLOSE_LIMIT:?}"
    );
    closes.into_iter().flatten().max().unwrap_or_else(Instant::now)
}

/// Lets this test process hold the sockets it opens, however many other
/// tests in the process hold (`cargo test` runs them in one process).
fn raise_own_open_files_limit() {
    #[cfg(unix)]
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
}

/// Established server-side sockets on `port` (accepted or queued) in
/// `/proc/net/tcp`, and how many of them have a keepalive timer running
/// (timer field `02`, set by `SO_KEEPALIVE` on an idle connection).
fn server_sockets(port: u16) -> (usize, usize) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    let mut established = 0;
    let mut keepalive = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].ends_with(&local) || fields[3] != "01" {
            continue;
        }
        established += 1;
        if fields[5].starts_with("02:") {
            keepalive += 1;
        }
    }
    (established, keepalive)
}

/// `log` without the ANSI colour sequences of the server's log lines.
fn without_colours(log: &str) -> String {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters... final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// CPU time (user and system) that process `pid` has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses: state is
    // field 3, utime 14, stime 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Starts the binary under `prlimit --nofile=<nofile>` with `extra` flags.
async fn start_limited(nofile: &str, extra: &[&str]) -> (ServerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--database-url", url.as_str(), "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    let limit = format!("--nofile={nofile}");
    let mut server = ServerProcess::spawn_under(&["prlimit", &limit, "--"], &args, None, port, "info");
    server.wait_healthy(READY).await.unwrap();
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_new_clients_past_its_old_open_files_limit() {
    server_binary();
    raise_own_open_files_limit();
    run_bounded("binary_past_the_open_files_limit", LIMIT, async {
        let (server, _dir) = start_limited(&format!("{SOFT_LIMIT}:4096"), &["--handshake-timeout-secs", "60"]).await;
        let log = without_colours(&server.stderr());
        assert!(
            log.contains("raised the soft open-files limit")
                && log.contains(&format!("from={SOFT_LIMIT}"))
                && log.contains("to=4096"),
            "the raised limit is not logged:\n{log}"
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
        let silent = silent_sockets(addr, SILENT).await;

        // A new client, on a connection of its own, gets through while
        // they are all held (the handshake timeout is a minute).
        let mut client = server.client();
        let put = tokio::time::timeout(CALL_LIMIT, calls::put_datablob(&mut client, "d", "g", "{}")).await;
        assert!(
            put.is_ok(),
            "no call got through within {CALL_LIMIT:?} with {SILENT} silent sockets open; stderr:\n{}",
            server.stderr()
        );

        // The server accepted them all, each with TCP keepalive on.
        let mut counts = server_sockets(server.port());
        for _ in 0..150 {
            if counts.1 >= SILENT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            counts = server_sockets(server.port());
        }
        let (established, keepalive) = counts;
        assert!(
            keepalive >= SILENT,
            "{keepalive} of {established} server-side sockets have a TCP keepalive timer, expected at least {SILENT}"
        );
        drop(silent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_out_of_file_descriptors_logs_pauses_and_recovers() {
    server_binary();
    raise_own_open_files_limit();
    run_bounded("binary_out_of_file_descriptors", LIMIT, async {
        // Soft and hard limit alike: the server cannot raise it, and the
        // silent sockets use up every descriptor.
        let (server, _dir) = start_limited(
            &format!("{SOFT_LIMIT}:{SOFT_LIMIT}"),
            &["--handshake-timeout-secs", "2"],
        )
        .await;
        let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
        let opened = Instant::now();
        let silent = silent_sockets(addr, SILENT).await;
        let all_open = Instant::now();

        // Out of descriptors, the accept loop waits between attempts
        // instead of spinning on EMFILE.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (cpu_before, wall_before) = (cpu_time(server.pid()), Instant::now());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu, wall) = (cpu_time(server.pid()) - cpu_before, wall_before.elapsed());

        // Once the silent sockets are closed, new clients get through.
        let mut client = server.client();
        let put = tokio::time::timeout(CALL_LIMIT, calls::put_datablob(&mut client, "d", "g", "{}")).await;
        assert!(
            put.is_ok(),
            "no call got through within {CALL_LIMIT:?}; stderr:\n{}",
            server.stderr()
        );
        let last_closed = all_closed_by_server("silent sockets", silent).await;
        eprintln!(
            "{SILENT} silent sockets against a limit of {SOFT_LIMIT} descriptors: opened in {:?}, \
             all closed by the server {:?} after the last was opened; the server used {cpu:?} of CPU \
             in {wall:?} while out of descriptors",
            all_open - opened,
            last_closed - all_open,
        );

        let log = server.stderr();
        let failures = log.matches("cannot accept connections").count();
        let seconds = opened.elapsed().as_secs() + 2;
        assert!(failures >= 1, "no failed accept logged:\n{log}");
        assert!(
            failures as u64 <= seconds,
            "{failures} lines about failed accepts in about {seconds} s: not rate-limited:\n{log}"
        );
        assert!(
            log.contains("did not finish its TLS handshake and HTTP/2 preface in time"),
            "closing the silent sockets is not logged:\n{log}"
        );
        assert!(
            cpu < wall / 2,
            "the server used {cpu:?} of CPU in {wall:?} while out of file descriptors: it spins on accept"
        );
    })
    .await;
}

async fn stalled_tls_handshakes_are_closed_while_tls_clients_get_through(backend: Backend) {
    let pki = TestPki::generate("stalls");
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let configure = move |config: &mut mlmeta_server::Config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.handshake_timeout_secs = 1;
    };
    let Some(server) = TestServer::with(backend, configure, Some(pki.client_tls())).await else {
        return;
    };
    let addr: SocketAddr = server.url().trim_start_matches("https://").parse().unwrap();

    let silent = silent_sockets(addr, 20).await;
    // A TLS record header announcing a 512-byte ClientHello, and 6 bytes
    // of it.
    let mut partial = Vec::new();
    for _ in 0..20 {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
            .await
            .unwrap();
        partial.push(socket);
    }
    // A finished TLS handshake, then no HTTP/2 preface.
    let connector = pki.raw_connector();
    let mut mute = Vec::new();
    for _ in 0..5 {
        let socket = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        mute.push(connector.connect(name, socket).await.unwrap());
    }

    // A new TLS client gets through meanwhile.
    let channel = Endpoint::from_shared(server.url().to_owned())
        .unwrap()
        .tls_config(pki.client_tls())
        .unwrap()
        .connect()
        .await
        .unwrap();
    wait_healthy(channel.clone(), CALL_LIMIT).await.unwrap();
    calls::put_datablob(&mut mlmeta_tests::Client::new(channel), "d", "g", "{}").await;

    all_closed_by_server("silent sockets", silent).await;
    all_closed_by_server("partial ClientHellos", partial).await;
    all_closed_by_server("TLS connections without a preface", mute).await;
    // The harness's own connection, used again, was not affected.
    calls::put_datablob(&mut server.client(), "e", "g", "{}").await;
}

async fn keepalive_reaps_deaf_peers_and_spares_idle_clients(backend: Backend) {
    let configure = |config: &mut mlmeta_server::Config| {
        config.handshake_timeout_secs = 1;
        config.http2_keepalive_secs = 1;
        config.http2_keepalive_timeout_secs = 1;
    };
    let Some(server) = TestServer::with(backend, configure, None).await else {
        return;
    };
    let addr: SocketAddr = server.url().trim_start_matches("http://").parse().unwrap();
    let mut client = server.client();
    seed_model(&mut client, "m").await;

    // An idle call: a StreamEpochs stream that sends nothing for three
    // keepalive periods. The client answers the server's pings by itself.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut streaming = server.client();
    let call = tokio::spawn(async move { streaming.stream_epochs(ReceiverStream::new(rx)).await });
    let idle_since = Instant::now();

    // Half a preface (then silence) misses the handshake deadline; a
    // complete preface and SETTINGS from a peer that then answers nothing
    // misses the keepalive ping's deadline.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&PREFACE[..16]).await.unwrap();
    let mut deaf = TcpStream::connect(addr).await.unwrap();
    deaf.write_all(PREFACE).await.unwrap();
    deaf.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let (half, deaf) = futures::join!(
        closed_by_server(half, CLOSE_LIMIT),
        closed_by_server(deaf, CLOSE_LIMIT)
    );
    half.unwrap_or_else(|e| panic!("half a preface: {e}"));
    deaf.unwrap_or_else(|e| panic!("a peer that answers no ping: {e}"));

    tokio::time::sleep_until((idle_since + Duration::from_secs(3)).into()).await;
    tx.send(insert(vec![epoch("m", 0, &[("loss", 1.0)])]))
        .await
        .unwrap();
    drop(tx);
    let response = call
        .await
        .unwrap()
        .unwrap_or_else(|s| panic!("the idle stream did not survive the keepalive pings: {s}"))
        .into_inner();
    assert_eq!((response.inserted, response.skipped), (1, 0));
}
