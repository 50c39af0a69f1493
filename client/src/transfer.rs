//! Export and import of a whole project (issue 18), over the `Export` and
//! `Import` streams.
//!
//! The records are the protobuf messages themselves ([`ExportRecord`]),
//! so that what one client exports any other (in any language) can
//! import; `mlmeta export` writes them as JSON Lines.
//!
//! ```no_run
//! use futures::StreamExt as _;
//! use mlmeta_client::{Client, ExportOptions, ImportOptions};
//!
//! # async fn example(from: Client, to: Client) -> mlmeta_client::Result<()> {
//! let mut records = from.export(&ExportOptions::default()).await?;
//! let (batches, receiver) = futures::channel::mpsc::channel(4);
//! let answer = tokio::spawn(async move { to.import(receiver, &ImportOptions::default()).await });
//! let mut batches = batches;
//! while let Some(record) = records.next().await {
//!     use futures::SinkExt as _;
//!     let _ = batches.send(vec![record?]).await;
//! }
//! drop(batches);
//! let summary = answer.await.expect("the import task")?;
//! println!("{} epochs inserted", summary.epochs.unwrap_or_default().inserted);
//! # Ok(())
//! # }
//! ```

use futures::{Stream, StreamExt as _};
use mlmeta_proto as pb;

use crate::client::Client;
use crate::error::{Error, Result};

pub use mlmeta_proto::export_record::Record as ExportRecordKind;
pub use mlmeta_proto::{
    ArtifactChunk, EpochBatch as ExportedEpochs, ExportHeader, ExportRecord, ExportedArtifact, ExportedModel,
    ImportConflict, ImportCounts, ImportResponse,
};

/// The format version of the records this client reads and writes.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// What an export selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Only these models (and the datablobs and templates they use); empty:
    /// the whole project.
    pub model_names: Vec<String>,
    /// Only models matching this filter-language expression.
    pub where_expr: Option<String>,
    /// Also export the content of artifacts the server holds.
    pub with_artifacts: bool,
}

/// How an import treats records stored already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Replace the tags and description of records stored with the same
    /// immutable content (otherwise a difference there is a conflict).
    pub overwrite_mutable: bool,
}

impl Client {
    /// Exports this client's project: a stream of records in the export's
    /// fixed order (the header first), read from the server as the stream
    /// is polled (the server reads ahead only a few records). Not retried:
    /// an export that broke off is started again.
    pub async fn export(
        &self,
        options: &ExportOptions,
    ) -> Result<impl Stream<Item = Result<ExportRecord>> + Unpin + Send + 'static> {
        let mut request = tonic::Request::new(pb::ExportRequest {
            project: self.project().to_owned(),
            model_names: options.model_names.clone(),
            r#where: options.where_expr.clone().unwrap_or_default(),
            with_artifacts: options.with_artifacts,
        });
        self.authorize(&mut request);
        let mut grpc = self.grpc();
        let records = grpc.export(request).await?.into_inner();
        Ok(records.map(|record| record.map_err(Error::from)))
    }

    /// Imports records (in the order of an export, the header first) into
    /// this client's project. Each item of `batches` goes to the server as
    /// one message: keep batches under the server's bulk request limit
    /// (64 MiB; a few MiB each is plenty). Records are stored as they
    /// arrive; if one fails, the call ends with its error (its position as
    /// `records[i]`) and the records before it stay stored: importing again
    /// skips them. Not retried.
    pub async fn import(
        &self,
        batches: impl Stream<Item = Vec<ExportRecord>> + Send + 'static,
        options: &ImportOptions,
    ) -> Result<ImportResponse> {
        let project = self.project().to_owned();
        let overwrite_mutable = options.overwrite_mutable;
        let mut first = true;
        let messages = batches.map(move |records| {
            let message = pb::ImportRequest {
                project: if first { project.clone() } else { String::new() },
                overwrite_mutable: first && overwrite_mutable,
                records,
            };
            first = false;
            message
        });
        let mut request = tonic::Request::new(messages);
        self.authorize(&mut request);
        let mut grpc = self.grpc();
        Ok(grpc.import(request).await?.into_inner())
    }
}
