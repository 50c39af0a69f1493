//! Delete, restore and purge records.
//!
//! ```no_run
//! use mlmeta_client::{Client, Deletion, ModelFilter, RecordKind};
//!
//! # async fn example() -> mlmeta_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! client.delete(RecordKind::Model, "cnn-run-7").await?;
//! let deleted = client
//!     .list_models(&ModelFilter::default().deletion(Deletion::DeletedOnly))
//!     .await?;
//! assert!(deleted.iter().any(|m| m.name == "cnn-run-7" && m.deleted_at.is_some()));
//! client.restore(RecordKind::Model, "cnn-run-7").await?;
//! // or, for good:
//! client.delete(RecordKind::Model, "cnn-run-7").await?;
//! let purged = client.purge(Some("cnn-run-7")).await?;
//! assert_eq!(purged.models, 1);
//! # Ok(())
//! # }
//! ```

use std::time::SystemTime;

use mlmeta_proto as pb;

use crate::client::Client;
use crate::convert;
use crate::error::Result;
use crate::tags::RecordKind;

/// What a purge removed for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Models.
    pub models: u64,
    /// Their epochs.
    pub epochs: u64,
    /// Deleted datablobs no model used any more.
    pub datablobs: u64,
    /// Deleted model templates no model used any more.
    pub model_templates: u64,
}

impl Client {
    /// Soft-deletes the record of `kind` named `name`; returns when it was
    /// deleted. Deleting a deleted record succeeds (with its first
    /// deletion time). A datablob or template used by a live model is
    /// [`Code::FailedPrecondition`](crate::Code).
    pub async fn delete(&self, kind: RecordKind, name: &str) -> Result<Option<SystemTime>> {
        let request = pb::DeleteRecordRequest {
            target: Some(kind.to_pb(name)),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.delete_record(r).await })
            .await?;
        convert::time("deleted_at", response.deleted_at)
    }

    /// Restores the deleted record of `kind` named `name` exactly as it
    /// was; restoring a live one succeeds. Returns whether it was deleted.
    pub async fn restore(&self, kind: RecordKind, name: &str) -> Result<bool> {
        let request = pb::RestoreRecordRequest {
            target: Some(kind.to_pb(name)),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.restore_record(r).await })
            .await?;
        Ok(!response.was_live)
    }

    /// Removes deleted records of the client's project for good: the
    /// deleted model `model_name`, or (`None`) every deleted model and then
    /// the deleted datablobs and templates no model uses.
    pub async fn purge(&self, model_name: Option<&str>) -> Result<PurgeCounts> {
        let request = pb::PurgeRequest {
            model_name: model_name.unwrap_or_default().to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.purge(r).await })
            .await?;
        Ok(PurgeCounts {
            models: response.models,
            epochs: response.epochs,
            datablobs: response.datablobs,
            model_templates: response.model_templates,
        })
    }
}
