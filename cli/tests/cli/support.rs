//! [`mlmeta`]: the real binary as a fluent builder, and the data the
//! query tests share.

use std::process::Stdio;

use mlmeta_client::{Client, DataBlob, Model, ModelTemplate, NewEpoch};
use mlmeta_tests::TestServer;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// An `mlmeta` invocation against `server`.
pub fn mlmeta(server: &TestServer) -> Cmd {
    Cmd::new().server(server.url())
}

/// An invocation of the binary, built up then [`Cmd::run`].
pub struct Cmd {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// No arguments yet, and no `MLMETA_*` connection setting from the
    /// environment.
    pub fn new() -> Self {
        Self {
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// `--server URL`.
    pub fn server(self, url: &str) -> Self {
        self.args(["--server", url])
    }

    /// More arguments.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// `--format FORMAT`.
    pub fn format(self, format: &str) -> Self {
        self.args(["--format", format])
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Bytes on standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs the binary to its end.
    pub async fn run(self) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mlmeta"));
        command
            .args(&self.args)
            .env_remove("MLMETA_SERVER")
            .env_remove("MLMETA_TOKEN")
            .env_remove("MLMETA_CA_CERT")
            .env_remove("MLMETA_CLIENT_CERT")
            .env_remove("MLMETA_CLIENT_KEY")
            .env_remove("MLMETA_RETRY_SECS")
            .env_remove("MLMETA_PROJECT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the mlmeta binary");
        if let Some(bytes) = self.stdin {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&bytes).await.unwrap();
        }
        let output = child.wait_with_output().await.unwrap();
        Run {
            args: self.args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }
}

/// What a run printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    /// The arguments, for messages.
    pub args: String,
    /// The exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and nothing on stderr; returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "`mlmeta {}` failed: {self:#?}", self.args);
        assert_eq!(self.stderr, "", "`mlmeta {}` wrote to stderr", self.args);
        self.stdout
    }

    /// Asserts exit code `code`, nothing on stdout and one `error: ` line
    /// on stderr; returns that line without the prefix.
    #[track_caller]
    pub fn fails(self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "`mlmeta {}`: {self:#?}", self.args);
        assert_eq!(self.stdout, "", "`mlmeta {}` printed output", self.args);
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(!line.contains('\n'), "more than one line on stderr: {self:#?}");
        line.strip_prefix("error: ")
            .unwrap_or_else(|| panic!("no `error: ` prefix: {self:#?}"))
            .to_owned()
    }

    /// [`Run::ok`], parsed as one JSON document.
    #[track_caller]
    pub fn json(self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Puts the records the query tests share:
///
/// | model        | datablob (group)  | template (group) |
/// |--------------|-------------------|------------------|
/// | m-cnn-mnist  | mnist-a (mnist)   | cnn (conv)       |
/// | m-mlp-mnist  | mnist-a (mnist)   | mlp (dense)      |
/// | m-cnn-cifar  | cifar (cifar)     | cnn (conv)       |
/// | m-empty      | cifar (cifar)     | mlp (dense)      | (no epochs)
///
/// Best `val_accuracy`: m-mlp-mnist 0.9100000000000001 (epoch 1), then
/// m-cnn-mnist 0.91 (epoch 1; its NaN at epoch 2 never counts), then
/// m-cnn-cifar 0.3. Best `loss` (min): m-cnn-cifar -inf (epoch 1), then
/// m-cnn-mnist 0.25, m-mlp-mnist 0.5 (its epoch 0 has inf).
pub async fn seed(server: &TestServer) {
    let client = Client::connect(server.url()).await.unwrap();
    for blob in [
        DataBlob::new(
            "mnist-a",
            "mnist",
            json!({"batch_size": 128, "aug": {"flip": true}}),
        ),
        DataBlob::new("cifar", "cifar", json!({"batch_size": 64})),
    ] {
        client.put_datablob(&blob, false).await.unwrap();
    }
    for template in [
        ModelTemplate::new("cnn", "conv", json!({"layers": 4, "opt": {"lr": 0.001}})),
        ModelTemplate::new("mlp", "dense", json!({})),
    ] {
        client.put_model_template(&template, false).await.unwrap();
    }
    for (name, blob, template) in [
        ("m-cnn-mnist", "mnist-a", "cnn"),
        ("m-mlp-mnist", "mnist-a", "mlp"),
        ("m-cnn-cifar", "cifar", "cnn"),
        ("m-empty", "cifar", "mlp"),
    ] {
        client
            .put_model(&Model::new(name, "Net", blob, template), false)
            .await
            .unwrap();
    }
    let epochs = [
        (
            "m-cnn-mnist",
            vec![
                NewEpoch::new(0, [("val_accuracy", 0.5), ("loss", 1.0)]),
                NewEpoch::new(1, [("val_accuracy", 0.91), ("loss", 0.3)]).with_steps(100),
                NewEpoch::new(2, [("val_accuracy", f64::NAN), ("loss", 0.25)]),
            ],
        ),
        (
            "m-mlp-mnist",
            vec![
                NewEpoch::new(0, [("val_accuracy", 0.1 + 0.2), ("loss", f64::INFINITY)]),
                NewEpoch::new(1, [("val_accuracy", 0.9100000000000001), ("loss", 0.5)]),
            ],
        ),
        (
            "m-cnn-cifar",
            vec![
                NewEpoch::new(0, [("val_accuracy", 0.3), ("loss", 2.0)]),
                NewEpoch::new(1, [("loss", f64::NEG_INFINITY), ("grad", 1e-7)]),
            ],
        ),
    ];
    for (model, epochs) in epochs {
        client.insert_epochs(model, epochs).await.unwrap();
    }
}

/// `text` as lines of CSV fields (the tests' CSV has no quoted newlines).
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}
