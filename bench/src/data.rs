//! Generated data and the calls that store and read it back: datablobs,
//! templates and models (untimed setup), seeded epochs with 8 metrics,
//! batched InsertEpochs with a given number of requests in flight, and
//! the stored epoch numbers per model (for verification).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use mlmeta_proto::{
    DataBlob, Epoch, EpochColumns, InsertEpochsRequest, ListEpochsRequest, MetricColumn, Model,
    ModelTemplate, PutDataBlobRequest, PutModelRequest, PutModelTemplateRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::BenchResult;
use crate::client::Client;
use crate::stats::Latencies;

/// The metrics every generated epoch carries.
pub const METRICS: [&str; 8] = [
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "precision",
    "recall",
    "f1",
    "lr",
];

/// Metric values per epoch.
pub const METRICS_PER_EPOCH: u64 = METRICS.len() as u64;

/// Calls in flight while putting setup records.
const SETUP_IN_FLIGHT: usize = 8;

/// Most model names in one ListEpochs filter (the server's limit).
const MAX_FILTER_VALUES: usize = 1_000;

/// Page size when reading epochs back (the server's limit).
const READ_PAGE_SIZE: u32 = 10_000;

/// Models stored by [`setup_models`], with their datablob groups.
#[derive(Debug, Clone, Default)]
pub struct ModelSet {
    /// Key that seeds the metric values of this set (stable across runs).
    pub key: u64,
    /// Model names, in creation order.
    pub names: Vec<String>,
    /// Datablob group of each datablob; model `i` uses datablob
    /// `i % groups.len()`.
    pub groups: Vec<String>,
}

impl ModelSet {
    /// The set [`setup_models`] stores for these arguments, without storing
    /// anything: same names, groups and key (so the same metric values).
    pub fn planned(tag: &str, prefix: &str, n_models: usize, n_groups: usize) -> Self {
        Self {
            key: fnv1a(prefix.as_bytes()),
            names: (0..n_models).map(|i| format!("{tag}-{prefix}-m{i:05}")).collect(),
            groups: (0..n_groups.max(1))
                .map(|g| format!("{tag}-{prefix}-group-{g}"))
                .collect(),
        }
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// Puts `n_groups` datablobs (one per group), two templates and `n_models`
/// models spread round-robin over them, all named `<tag>-<prefix>-...`.
pub async fn setup_models(
    client: &Client,
    tag: &str,
    prefix: &str,
    n_models: usize,
    n_groups: usize,
) -> BenchResult<ModelSet> {
    let set = ModelSet::planned(tag, prefix, n_models, n_groups);
    let n_groups = set.groups.len();
    let blobs: Vec<String> = (0..n_groups)
        .map(|g| format!("{tag}-{prefix}-data-{g}"))
        .collect();
    let templates: Vec<String> = (0..2).map(|t| format!("{tag}-{prefix}-tmpl-{t}")).collect();
    for (g, (blob, group)) in blobs.iter().zip(&set.groups).enumerate() {
        let datablob = DataBlob {
            name: blob.clone(),
            group_name: group.clone(),
            hyperparams_json: format!(
                r#"{{"rows": {}, "source": "synthetic", "shuffle": true}}"#,
                10_000 * (g + 1)
            ),
            ..Default::default()
        };
        client
            .clone()
            .put_data_blob(PutDataBlobRequest {
                project: String::new(),
                datablob: Some(datablob),
                ignore_existing: false,
            })
            .await
            .map_err(|s| format!("PutDataBlob {blob}: {s}"))?;
    }
    for (t, name) in templates.iter().enumerate() {
        let template = ModelTemplate {
            name: name.clone(),
            group_name: format!("{tag}-{prefix}-arch"),
            hyperparams_json: format!(r#"{{"layers": {}, "dropout": 0.1, "optimizer": "adam"}}"#, 4 + t),
            ..Default::default()
        };
        client
            .clone()
            .put_model_template(PutModelTemplateRequest {
                project: String::new(),
                model_template: Some(template),
                ignore_existing: false,
            })
            .await
            .map_err(|s| format!("PutModelTemplate {name}: {s}"))?;
    }
    stream::iter(set.names.iter().enumerate())
        .map(|(i, name)| {
            let mut client = client.clone();
            let model = Model {
                name: name.clone(),
                model_class_name: "Sequential".to_owned(),
                datablob_name: blobs[i % n_groups].clone(),
                model_template_name: templates[i % templates.len()].clone(),
                ..Default::default()
            };
            async move {
                client
                    .put_model(PutModelRequest {
                        project: String::new(),
                        model: Some(model),
                        ignore_existing: false,
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("PutModel {name}: {s}"))
            }
        })
        .buffer_unordered(SETUP_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    Ok(set)
}

/// Seeded generator of plausible training curves: every model has a
/// quality, accuracy climbs towards it and loss falls, with noise.
#[derive(Debug, Clone, Copy)]
pub struct MetricGen {
    seed: u64,
}

impl MetricGen {
    /// A generator whose values depend only on `seed`, the set key, the
    /// model's index and the epoch number.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The seed it was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Epoch `num` of model `index` of `set`, out of `total` epochs.
    pub fn epoch(&self, set: &ModelSet, index: usize, num: usize, total: usize) -> Epoch {
        let model_seed = mix(mix(self.seed ^ set.key) ^ index as u64);
        let quality = 0.6 + 0.38 * unit(model_seed);
        let mut rng = StdRng::seed_from_u64(mix(model_seed ^ num as u64));
        let mut noise = |scale: f64| (rng.random::<f64>() - 0.5) * 2.0 * scale;
        let progress = (num + 1) as f64 / total.max(1) as f64;
        let curve = quality * (1.0 - (-6.0 * progress).exp());
        let accuracy = (curve + 0.02 + noise(0.01)).clamp(0.0, 1.0);
        let val_accuracy = (curve + noise(0.02)).clamp(0.0, 1.0);
        let precision = (val_accuracy + noise(0.03)).clamp(0.0, 1.0);
        let recall = (val_accuracy + noise(0.03)).clamp(0.0, 1.0);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let values = [
            (1.0 - accuracy) * 2.5 + noise(0.02).abs(),
            accuracy,
            (1.0 - val_accuracy) * 2.7 + noise(0.03).abs(),
            val_accuracy,
            precision,
            recall,
            f1,
            1e-3 * 0.5f64.powi((4 * num / total.max(1)) as i32),
        ];
        Epoch {
            model_name: set.names[index].clone(),
            epoch_num: num as i64,
            metrics: METRICS.iter().map(|m| (*m).to_owned()).zip(values).collect(),
            steps_per_epoch: Some(500),
            validation_steps_per_epoch: Some(50),
            recorded_at: None,
        }
    }

    /// InsertEpochs requests for `epochs` epochs of every model of `set`
    /// (model by model, epoch by epoch), `batch` epochs per request; built
    /// lazily.
    pub fn requests<'a>(
        &'a self,
        set: &'a ModelSet,
        epochs: usize,
        batch: usize,
    ) -> impl Iterator<Item = InsertEpochsRequest> + 'a {
        let total = set.len() * epochs;
        let batch = batch.max(1);
        (0..total).step_by(batch).map(move |start| InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: (start..(start + batch).min(total))
                .map(|i| self.epoch(set, i / epochs, i % epochs, epochs))
                .collect(),
        })
    }
}

/// Epochs of a request, rows and columns.
pub fn epochs_in(request: &InsertEpochsRequest) -> usize {
    request.epochs.len() + request.columns.iter().map(|c| c.epoch_nums.len()).sum::<usize>()
}

/// The same epochs in the columnar form: one column set per run of
/// consecutive epochs of one model, a column per metric (with a presence
/// bitmap only when some epoch lacks it).
pub fn to_columnar(request: InsertEpochsRequest) -> InsertEpochsRequest {
    let mut columns: Vec<EpochColumns> = Vec::new();
    let mut runs: Vec<Vec<Epoch>> = Vec::new();
    for epoch in request.epochs {
        match runs.last_mut() {
            Some(run) if run[0].model_name == epoch.model_name => run.push(epoch),
            _ => runs.push(vec![epoch]),
        }
    }
    for run in runs {
        let n = run.len();
        let mut metrics: Vec<MetricColumn> = Vec::new();
        for (i, epoch) in run.iter().enumerate() {
            for (name, value) in &epoch.metrics {
                let j = match metrics.iter().position(|m| &m.name == name) {
                    Some(j) => j,
                    None => {
                        metrics.push(MetricColumn {
                            name: name.clone(),
                            values: vec![0.0; n],
                            present: vec![0; n.div_ceil(8)],
                        });
                        metrics.len() - 1
                    }
                };
                metrics[j].values[i] = *value;
                metrics[j].present[i / 8] |= 1 << (i % 8);
            }
        }
        for metric in &mut metrics {
            if (0..n).all(|i| metric.present[i / 8] >> (i % 8) & 1 == 1) {
                metric.present.clear();
            }
        }
        let steps = |f: fn(&Epoch) -> Option<i64>| -> (Vec<i64>, Vec<u8>) {
            let mut present = vec![0_u8; n.div_ceil(8)];
            let values = run
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    if f(e).is_some() {
                        present[i / 8] |= 1 << (i % 8);
                    }
                    f(e).unwrap_or(0)
                })
                .collect();
            if present.iter().all(|b| *b == 0) {
                return (Vec::new(), Vec::new());
            }
            if (0..n).all(|i| present[i / 8] >> (i % 8) & 1 == 1) {
                present.clear();
            }
            (values, present)
        };
        let (steps_per_epoch, steps_per_epoch_present) = steps(|e| e.steps_per_epoch);
        let (validation_steps_per_epoch, validation_steps_per_epoch_present) =
            steps(|e| e.validation_steps_per_epoch);
        columns.push(EpochColumns {
            model_name: run[0].model_name.clone(),
            epoch_nums: run.iter().map(|e| e.epoch_num).collect(),
            metrics,
            steps_per_epoch,
            steps_per_epoch_present,
            validation_steps_per_epoch,
            validation_steps_per_epoch_present,
        });
    }
    InsertEpochsRequest {
        epochs: Vec::new(),
        columns,
        project: request.project,
    }
}

/// What a run of [`send_batches`] did.
#[derive(Debug, Default)]
pub struct SendOutcome {
    /// Wall time from the first request sent to the last response.
    pub elapsed: Duration,
    /// Duration of each request.
    pub latencies: Latencies,
    /// Epochs sent.
    pub epochs: u64,
    /// Sum of the responses' `inserted`.
    pub inserted: u64,
    /// Sum of the responses' `skipped`.
    pub skipped: u64,
}

/// Sends `requests` with InsertEpochs, `in_flight` at a time (1 is strictly
/// sequential), over the one connection of `client`; stops at the first
/// error.
pub async fn send_batches(
    client: &Client,
    requests: impl Iterator<Item = InsertEpochsRequest>,
    in_flight: usize,
) -> BenchResult<SendOutcome> {
    let mut outcome = SendOutcome::default();
    let start = Instant::now();
    let mut responses = stream::iter(requests)
        .map(|request| {
            let mut client = client.clone();
            async move {
                let n = epochs_in(&request) as u64;
                let sent = Instant::now();
                let result = client.insert_epochs(request).await;
                (n, sent.elapsed(), result)
            }
        })
        .buffer_unordered(in_flight.max(1));
    while let Some((n, took, result)) = responses.next().await {
        let response = result
            .map_err(|s| format!("InsertEpochs of {n} epochs: {s}"))?
            .into_inner();
        outcome.latencies.push(took);
        outcome.epochs += n;
        outcome.inserted += response.inserted;
        outcome.skipped += response.skipped;
    }
    outcome.elapsed = start.elapsed();
    Ok(outcome)
}

/// Stores `epochs` epochs of each model of a new set (untimed), two
/// requests in flight; fails unless every epoch was inserted.
pub async fn populate(
    client: &Client,
    metrics: &MetricGen,
    tag: &str,
    prefix: &str,
    models: usize,
    epochs: usize,
    batch: usize,
) -> BenchResult<ModelSet> {
    let set = setup_models(client, tag, prefix, models, 4).await?;
    let outcome = send_batches(client, metrics.requests(&set, epochs, batch), 2).await?;
    let expected = (models * epochs) as u64;
    if outcome.inserted != expected {
        return Err(format!(
            "populating {prefix}: {} of {expected} epochs inserted ({} skipped)",
            outcome.inserted, outcome.skipped
        )
        .into());
    }
    Ok(set)
}

/// The epoch numbers stored for each of `names`, read with ListEpochs
/// (pages of 10,000), in the order the server returns them.
pub async fn stored_epochs(client: &Client, names: &[String]) -> BenchResult<BTreeMap<String, Vec<i64>>> {
    let mut client = client.clone();
    let mut stored: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for chunk in names.chunks(MAX_FILTER_VALUES) {
        let mut page_token = String::new();
        loop {
            let page = client
                .list_epochs(ListEpochsRequest {
                    project: String::new(),
                    model_names: chunk.to_vec(),
                    min_epoch_num: None,
                    max_epoch_num: None,
                    page_size: READ_PAGE_SIZE,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|s| format!("ListEpochs: {s}"))?
                .into_inner();
            for epoch in page.epochs {
                stored.entry(epoch.model_name).or_default().push(epoch.epoch_num);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            if page.next_page_token == page_token {
                return Err("ListEpochs returned the same page token twice".into());
            }
            page_token = page.next_page_token;
        }
    }
    Ok(stored)
}

/// Total number of epochs stored for `names`.
pub async fn count_stored(client: &Client, names: &[String]) -> BenchResult<u64> {
    Ok(stored_epochs(client, names)
        .await?
        .values()
        .map(|nums| nums.len() as u64)
        .sum())
}

/// 64-bit FNV-1a hash (stable across runs and Rust versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finalizer: spreads seeds that differ in a few bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ModelSet {
        ModelSet {
            key: 7,
            names: (0..n).map(|i| format!("m{i}")).collect(),
            groups: vec!["g".to_owned()],
        }
    }

    #[test]
    fn epochs_are_deterministic_and_complete() {
        let metrics = MetricGen::new(1);
        let s = set(2);
        let a = metrics.epoch(&s, 1, 5, 10);
        assert_eq!(a, metrics.epoch(&s, 1, 5, 10));
        assert_eq!(a.metrics.len(), METRICS.len());
        assert!(a.metrics.values().all(|v| v.is_finite()));
        assert_ne!(a.metrics, metrics.epoch(&s, 0, 5, 10).metrics);
    }

    #[test]
    fn requests_cover_every_epoch_once_in_batches() {
        let metrics = MetricGen::new(1);
        let s = set(3);
        let requests: Vec<_> = metrics.requests(&s, 7, 4).collect();
        assert_eq!(requests.len(), 6);
        assert!(requests.iter().all(|r| r.epochs.len() <= 4));
        let mut all: Vec<(String, i64)> = requests
            .into_iter()
            .flat_map(|r| r.epochs)
            .map(|e| (e.model_name, e.epoch_num))
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 21);
    }
}
