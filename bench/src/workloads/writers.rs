//! The trainers of `concurrent`: one writer sends its model's epochs one
//! call at a time. They run as tasks of this process, or with
//! `--processes N` spread over N child processes of this same binary, so
//! that the client side of the benchmark is not one process's runtime.
//!
//! Protocol with a child (started with the hidden `--writer-process`),
//! one JSON or text line at a time: the parent writes a [`Job`] on the
//! child's stdin; the child connects its writers and prints `ready`; once
//! every child is ready the parent starts the clock and writes `go`; each
//! child runs its writers and prints one [`ChildResults`] line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlmeta_proto::InsertEpochsRequest;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::BenchResult;
use crate::client::{Client, connect};
use crate::data::{MetricGen, ModelSet};
use crate::stats::Latencies;

/// Line a child prints once its writers are connected.
const READY: &str = "ready";

/// Line the parent sends to start every child's writers at once.
const GO: &str = "go";

/// What one writer did.
#[derive(Debug, Default)]
pub struct WriterOutcome {
    /// Epoch numbers whose call succeeded.
    pub acked: Vec<i64>,
    /// Duration of every call, failed ones included.
    pub latencies: Latencies,
    /// Failed calls.
    pub errors: u64,
    /// Message of the first failure.
    pub first_error: Option<String>,
}

/// The work of one child process.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    /// The server's gRPC URL.
    url: String,
    /// Seed of the metric values ([`MetricGen`]).
    seed: u64,
    /// Key of the model set ([`ModelSet::key`]).
    key: u64,
    /// Names of every model of the set (writer `i` writes model `i`).
    names: Vec<String>,
    /// The writers this child runs.
    indices: Vec<usize>,
    /// Epochs per writer.
    epochs: usize,
}

/// What a child prints when its writers are done.
#[derive(Debug, Serialize, Deserialize)]
struct ChildResults {
    writers: Vec<WriterResult>,
}

/// One writer's [`WriterOutcome`] as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct WriterResult {
    index: usize,
    acked: Vec<i64>,
    /// Every call's duration, in nanoseconds, so the parent can merge the
    /// samples into exact percentiles.
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl From<(usize, WriterOutcome)> for WriterResult {
    fn from((index, outcome): (usize, WriterOutcome)) -> Self {
        Self {
            index,
            acked: outcome.acked,
            latencies_ns: outcome.latencies.to_nanos(),
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

impl From<WriterResult> for (usize, WriterOutcome) {
    fn from(result: WriterResult) -> Self {
        let outcome = WriterOutcome {
            acked: result.acked,
            latencies: Latencies::from_nanos(&result.latencies_ns),
            errors: result.errors,
            first_error: result.first_error,
        };
        (result.index, outcome)
    }
}

/// Runs writer `i` of `set` for each `i` in `indices`, all at once in this
/// process, each on its own connection (opened before the clock starts).
/// Returns the wall time and each writer's outcome.
pub async fn in_this_process(
    url: &str,
    metrics: MetricGen,
    set: Arc<ModelSet>,
    indices: &[usize],
    epochs: usize,
) -> BenchResult<(Duration, Vec<(usize, WriterOutcome)>)> {
    let clients = connect_all(url, indices.len()).await?;
    let start = Instant::now();
    let outcomes = run_writers(clients, metrics, set, indices, epochs).await?;
    Ok((start.elapsed(), outcomes))
}

/// Runs the writers of `set` (writer `i` writes model `i`) spread over
/// `processes` child processes, in contiguous shares. The clock runs from
/// the moment every child is connected to the arrival of the last results.
pub async fn in_processes(
    url: &str,
    metrics: MetricGen,
    set: &ModelSet,
    epochs: usize,
    processes: usize,
) -> BenchResult<(Duration, Vec<(usize, WriterOutcome)>)> {
    let writers = set.len();
    let processes = processes.clamp(1, writers.max(1));
    let jobs: Vec<Job> = (0..processes)
        .map(|p| Job {
            url: url.to_owned(),
            seed: metrics.seed(),
            key: set.key,
            names: set.names.clone(),
            indices: (p * writers / processes..(p + 1) * writers / processes).collect(),
            epochs,
        })
        .collect();
    let exe = std::env::current_exe()?;
    let (elapsed, results) = tokio::task::spawn_blocking(move || run_children(&exe, jobs)).await??;
    Ok((elapsed, results.into_iter().map(Into::into).collect()))
}

/// A child process, killed and reaped if it is still running when this is
/// dropped (on an error path of the parent).
struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl ChildProcess {
    /// The next line of the child's stdout; an error naming `what` when
    /// the child ended without printing it.
    fn read_line(&mut self, what: &str) -> BenchResult<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(format!("writer process exited ({status}) before printing {what}").into());
        }
        Ok(line.trim_end().to_owned())
    }
}

/// Starts one child per job, waits until all are ready, starts them, and
/// collects their results.
fn run_children(exe: &std::path::Path, jobs: Vec<Job>) -> BenchResult<(Duration, Vec<WriterResult>)> {
    let mut children = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let mut child = Command::new(exe)
            .arg("--writer-process")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start writer process {}: {e}", exe.display()))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("writer process without pipes".into());
        };
        writeln!(stdin, "{}", serde_json::to_string(job)?)?;
        stdin.flush()?;
        children.push(ChildProcess {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        });
    }
    for child in &mut children {
        let line = child.read_line("`ready`")?;
        if line != READY {
            return Err(format!("writer process said {line:?} instead of `{READY}`").into());
        }
    }
    let start = Instant::now();
    for child in &mut children {
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{GO}")?;
        }
    }
    // One reader per child, so that each child's results are taken (and
    // timed) as they arrive, not in child order.
    let arrivals: Vec<BenchResult<(Instant, String)>> = std::thread::scope(|scope| {
        let readers: Vec<_> = children
            .iter_mut()
            .map(|child| {
                scope.spawn(move || -> BenchResult<(Instant, String)> {
                    let line = child.read_line("its results")?;
                    Ok((Instant::now(), line))
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| {
                reader
                    .join()
                    .unwrap_or_else(|_| Err("result reader panicked".into()))
            })
            .collect()
    });
    let mut last = start;
    let mut results = Vec::new();
    for arrival in arrivals {
        let (at, line) = arrival?;
        last = last.max(at);
        let parsed: ChildResults =
            serde_json::from_str(&line).map_err(|e| format!("writer process results: {e}: {line}"))?;
        results.extend(parsed.writers);
    }
    for child in &mut children {
        let status = child.child.wait()?;
        if !status.success() {
            return Err(format!("writer process exited with {status}").into());
        }
    }
    Ok((last - start, results))
}

/// The child side (`--writer-process`): reads its [`Job`], connects,
/// prints `ready`, waits for `go`, runs its writers and prints the results.
pub async fn child_main() -> ExitCode {
    match child().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: writer process: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn child() -> BenchResult<()> {
    let job: Job = serde_json::from_str(&read_stdin_line().await?)?;
    let set = Arc::new(ModelSet {
        key: job.key,
        names: job.names,
        groups: Vec::new(),
    });
    if let Some(bad) = job.indices.iter().find(|&&i| i >= set.len()) {
        return Err(format!("writer {bad} has no model").into());
    }
    let clients = connect_all(&job.url, job.indices.len()).await?;
    println!("{READY}");
    let go = read_stdin_line().await?;
    if go != GO {
        return Err(format!("expected `{GO}`, got {go:?}").into());
    }
    let outcomes = run_writers(clients, MetricGen::new(job.seed), set, &job.indices, job.epochs).await?;
    let results = ChildResults {
        writers: outcomes.into_iter().map(Into::into).collect(),
    };
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}

/// One line of stdin, without its line end; an error at end of input.
async fn read_stdin_line() -> BenchResult<String> {
    tokio::task::spawn_blocking(|| -> BenchResult<String> {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 {
            return Err("stdin closed".into());
        }
        Ok(line.trim_end().to_owned())
    })
    .await?
}

/// `n` connections to `url`.
async fn connect_all(url: &str, n: usize) -> BenchResult<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(connect(url).await?);
    }
    Ok(clients)
}

/// Runs writer `indices[k]` on `clients[k]`, all at once.
async fn run_writers(
    clients: Vec<Client>,
    metrics: MetricGen,
    set: Arc<ModelSet>,
    indices: &[usize],
    epochs: usize,
) -> BenchResult<Vec<(usize, WriterOutcome)>> {
    let mut tasks = JoinSet::new();
    for (client, &index) in clients.into_iter().zip(indices) {
        tasks.spawn(write(client, metrics, Arc::clone(&set), index, epochs));
    }
    let mut outcomes = Vec::with_capacity(indices.len());
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined?);
    }
    Ok(outcomes)
}

/// One writer: `n` epochs of model `index`, one call each, in order.
async fn write(
    mut client: Client,
    metrics: MetricGen,
    set: Arc<ModelSet>,
    index: usize,
    n: usize,
) -> (usize, WriterOutcome) {
    let mut outcome = WriterOutcome {
        latencies: Latencies::with_capacity(n),
        ..Default::default()
    };
    for num in 0..n {
        let request = InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![metrics.epoch(&set, index, num, n)],
        };
        let sent = Instant::now();
        let result = client.insert_epochs(request).await;
        outcome.latencies.push(sent.elapsed());
        match result {
            Ok(_) => outcome.acked.push(num as i64),
            Err(status) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| status.to_string());
            }
        }
    }
    (index, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_survive_json() {
        let mut latencies = Latencies::default();
        latencies.push(Duration::from_micros(1_234));
        let outcome = WriterOutcome {
            acked: vec![0, 2],
            latencies,
            errors: 1,
            first_error: Some("boom".to_owned()),
        };
        let line = serde_json::to_string(&ChildResults {
            writers: vec![(7, outcome).into()],
        })
        .unwrap();
        let parsed: ChildResults = serde_json::from_str(&line).unwrap();
        let (index, mut back): (usize, WriterOutcome) = parsed.writers.into_iter().next().unwrap().into();
        assert_eq!((index, back.acked, back.errors), (7, vec![0, 2], 1));
        assert_eq!(back.latencies.percentile(50.0), Duration::from_micros(1_234));
    }
}
