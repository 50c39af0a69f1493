//! Tags and descriptions of models, datablobs and templates: the mutable
//! metadata beside the immutable records.

use mlmeta_proto as pb;

use crate::client::Client;
use crate::error::Result;
use crate::types::Tags;

/// What kind of record a tag or description call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A model.
    Model,
    /// A datablob.
    DataBlob,
    /// A model template.
    ModelTemplate,
}

impl RecordKind {
    pub(crate) fn to_pb(self, name: &str) -> pb::RecordRef {
        let kind = match self {
            Self::Model => pb::RecordKind::Model,
            Self::DataBlob => pb::RecordKind::Datablob,
            Self::ModelTemplate => pb::RecordKind::ModelTemplate,
        };
        pb::RecordRef {
            kind: kind as i32,
            name: name.to_owned(),
        }
    }
}

impl Client {
    /// Sets the tags `set` (overwriting values of existing keys) and
    /// removes the keys `unset` of the record of `kind` named `name`, all
    /// or nothing; returns its tags afterwards. Keys starting with
    /// `mlmeta.` are reserved for the server ([`Error::InvalidArgument`](crate::Error::InvalidArgument));
    /// an unknown record is [`Error::NotFound`](crate::Error::NotFound).
    ///
    /// ```no_run
    /// use mlmeta_client::{Client, RecordKind};
    ///
    /// # async fn example(client: Client) -> mlmeta_client::Result<()> {
    /// let set = [("sweep".to_owned(), "lr".to_owned())].into();
    /// let tags = client.update_tags(RecordKind::Model, "run-1", &set, &["draft"]).await?;
    /// assert_eq!(tags["sweep"], "lr");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_tags(
        &self,
        kind: RecordKind,
        name: &str,
        set: &Tags,
        unset: &[&str],
    ) -> Result<Tags> {
        let request = pb::UpdateTagsRequest {
            target: Some(kind.to_pb(name)),
            set: set.clone(),
            unset: unset.iter().map(|&key| key.to_owned()).collect(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.update_tags(r).await })
            .await?;
        Ok(response.tags)
    }

    /// Replaces the description (free text, markdown, at most 64 KiB) of
    /// the record of `kind` named `name`; an empty text clears it.
    pub async fn set_description(&self, kind: RecordKind, name: &str, description: &str) -> Result<()> {
        let request = pb::SetDescriptionRequest {
            target: Some(kind.to_pb(name)),
            description: description.to_owned(),
            project: self.project().to_owned(),
        };
        self.unary(
            request,
            |mut grpc, r| async move { grpc.set_description(r).await },
        )
        .await?;
        Ok(())
    }
}
