//! Headless Chromium for the page's browser tests: a `chromedriver` child
//! process on a free loopback port and a WebDriver session (fantoccini)
//! to it, both ended when the [`Browser`] is dropped.
//!
//! Without `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`) [`Browser::start`] prints a loud notice and returns
//! `None`, so the tests pass without checking anything, unless
//! `MLMETA_REQUIRE_BROWSER=1` (CI sets it), which makes them fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::process::free_port;

/// Where the tests save their screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// A headless Chromium driven over WebDriver.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`
    /// CSS pixels; `None` (after a notice) when chromedriver is missing
    /// and `MLMETA_REQUIRE_BROWSER` is not `1`.
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        let Some(driver_path) = find_chromedriver() else {
            assert!(
                std::env::var("MLMETA_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "MLMETA_REQUIRE_BROWSER=1 but chromedriver is not installed \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "\n*** NOTICE: chromedriver not found: the browser test is SKIPPED and passes \
                 without checking anything. Install chromium and chromium-driver, or set \
                 MLMETA_REQUIRE_BROWSER=1 to make this a failure. ***\n"
            );
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut options = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                format!("--window-size={width},{height}"),
            ],
        });
        if let Some(binary) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|path| Path::new(path).exists())
        {
            options["binary"] = Value::from(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), Value::from("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut browser = Self {
            client: loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    Err(error) if started.elapsed() < Duration::from_secs(20) => {
                        let _ = error;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => panic!("cannot start a WebDriver session: {error}"),
                }
            },
            driver,
        };
        browser.resize(width, height).await;
        Some(browser)
    }

    /// Ends the session (Chromium exits) and the driver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    /// Makes the viewport `width` × `height` CSS pixels.
    pub async fn resize(&mut self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
    }

    /// Runs `script` (a function body; `arguments` holds `args`).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}: {script}"))
    }

    /// Waits until `window.mlmeta.ready` for `view` (models, model,
    /// compare) and `extra` (a JavaScript expression) holds.
    pub async fn wait_ready(&self, view: &str, extra: &str) {
        let script = format!(
            "return !!(window.mlmeta && window.mlmeta.ready && window.mlmeta.view === arguments[0] && ({extra}));"
        );
        self.wait_for(&script, vec![Value::from(view)]).await;
    }

    /// Waits (15 s at most) until `script` returns true.
    pub async fn wait_for(&self, script: &str, args: Vec<Value>) {
        let started = Instant::now();
        loop {
            if self.js(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            if started.elapsed() > Duration::from_secs(15) {
                let state = self
                    .js("return [location.href, document.getElementById('main') && document.getElementById('main').innerText];", vec![])
                    .await;
                panic!("timed out waiting for {script} (page: {state})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The texts of the elements matching `selector`.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let value = self
            .js(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim());",
                vec![Value::from(selector)],
            )
            .await;
        serde_json::from_value(value).expect("a list of strings")
    }

    /// Saves a PNG screenshot to `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After `quit` the session is over; after a panic, ending the
        // driver is the most a synchronous drop can do.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromedriver"))
        .find(|path| path.is_file())
}
