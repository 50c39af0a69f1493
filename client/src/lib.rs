//! Typed Rust client of mlmeta, the training-metadata service.
//!
//! - [`Client`]: one method per server operation, on plain Rust types
//!   ([`DataBlob`], [`ModelTemplate`], [`Model`], [`Epoch`], [`BestModel`],
//!   [`LeaderboardRow`]) with hyperparameters as [`serde_json::Value`] and
//!   metrics as a [`BTreeMap`](std::collections::BTreeMap) of name → `f64`.
//!   Listings follow page tokens by themselves, collected whole or as a
//!   stream that holds one page at a time. [`Client::insert_epochs`] takes
//!   any number of epochs and splits them under the server's limits.
//! - [`EpochWriter`]: for trainers; `log` costs next to nothing, epochs
//!   go to the server in batches from a background task, which retries
//!   while the server is away; memory stays bounded.
//! - [`Error`]: one variant per kind of failure, to match on.
//!
//! Every write is idempotent on the server, so any call can be retried:
//! epochs already stored are skipped, never duplicated or overwritten.
//!
//! ```no_run
//! use mlmeta_client::{Client, DataBlob, Direction, EpochFilter, Model, ModelFilter, ModelTemplate};
//! use serde_json::json;
//!
//! # async fn example() -> mlmeta_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! client.put_datablob(&DataBlob::new("cifar10", "images", json!({"rows": 50000})), true).await?;
//! client.put_model_template(&ModelTemplate::new("cnn", "conv", json!({"layers": 4})), true).await?;
//! client.put_model(&Model::new("cnn-run-7", "Cnn", "cifar10", "cnn"), true).await?;
//!
//! let writer = client.epoch_writer("cnn-run-7")?;
//! for epoch in 0..50 {
//!     writer.log(epoch, [("loss", 2.0 / (epoch + 1) as f64)]).await?;
//! }
//! writer.close().await?;
//!
//! let epochs = client.list_epochs(&EpochFilter::models(["cnn-run-7"])).await?;
//! assert_eq!(epochs.len(), 50);
//! let best = client.best_model("loss", Direction::Min, &ModelFilter::default()).await?;
//! assert_eq!(best.best_epoch.epoch_num, 49);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
// Unit tests may unwrap; the library build (checked without `test`) may not.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod artifact_content;
mod artifacts;
mod builder;
mod client;
mod columns;
mod convert;
mod deletion;
mod error;
mod filter;
pub mod limits;
mod listing;
mod paging;
mod retry;
mod runs;
mod tags;
mod transfer;
mod types;
mod watch;
mod writer;

pub use artifact_content::{ArtifactUpload, UPLOAD_CHUNK_BYTES, UploadOptions, digest_file};
pub use artifacts::{Artifact, ArtifactPut};
pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PAGE_SIZE, DEFAULT_PROJECT};
pub use client::Client;
pub use deletion::PurgeCounts;
pub use error::{Error, Result};
pub use filter::{Deletion, EpochFilter, GroupedFilter, ModelFilter};
pub use retry::RetryPolicy;
pub use runs::{MetricSummary, ModelDetail, RunContext, RunInfo, RunStatus, StatusChange};
pub use tags::RecordKind;
pub use tonic::Code;
pub use transfer::{
    ArtifactChunk, EXPORT_FORMAT_VERSION, ExportHeader, ExportOptions, ExportRecord, ExportRecordKind,
    ExportedArtifact, ExportedEpochs, ExportedModel, ImportConflict, ImportCounts, ImportOptions,
    ImportResponse,
};
pub use types::{
    BestModel, ColumnValue, CurrentEpoch, DataBlob, Direction, Epoch, InsertCounts, LeaderboardRow, Metrics,
    Model, ModelTemplate, ModelView, NewEpoch, Project, Put, Tags,
};
pub use watch::{EpochBatch, ModelChange, ModelEvent, ModelEvents, WatchOptions};
pub use writer::{EpochWriter, WhenFull, WriterOptions, WriterStats};

#[cfg(test)]
mod tests {
    /// The handles are meant to be shared between tasks and threads.
    #[test]
    fn handles_are_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<super::Client>();
        shareable::<super::EpochWriter>();
        shareable::<super::Error>();
        shareable::<super::ClientBuilder>();
    }
}
