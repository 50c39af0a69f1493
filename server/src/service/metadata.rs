//! Handlers of the mutable metadata: UpdateTags and SetDescription. Same
//! shape as the others: validate and convert, one store call on a blocking
//! thread, convert the result.

use mlmeta_proto as pb;
use tonic::{Request, Response};

use super::{MetadataApi, Reply, convert, project_of};
use crate::error::{Error, Result};
use crate::store::records::{ComponentKind, RecordKind, TagUpdate};
use crate::validate;

/// The record a request names (`field` is the RecordRef's path).
fn record(field: &str, target: Option<pb::RecordRef>) -> Result<(RecordKind, String)> {
    let target = convert::required(field, target)?;
    let kind = match pb::RecordKind::try_from(target.kind) {
        Ok(pb::RecordKind::Model) => RecordKind::Model,
        Ok(pb::RecordKind::Datablob) => RecordKind::Component(ComponentKind::DataBlob),
        Ok(pb::RecordKind::ModelTemplate) => RecordKind::Component(ComponentKind::ModelTemplate),
        Ok(pb::RecordKind::Unspecified) => {
            return Err(Error::invalid(
                format!("{field}.kind"),
                "is required: RECORD_KIND_MODEL, RECORD_KIND_DATABLOB or RECORD_KIND_MODEL_TEMPLATE",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                format!("{field}.kind"),
                format!(
                    "unknown value {}: use RECORD_KIND_MODEL (1), RECORD_KIND_DATABLOB (2) or RECORD_KIND_MODEL_TEMPLATE (3)",
                    target.kind
                ),
            ));
        }
    };
    validate::name(|| format!("{field}.name"), &target.name)?;
    Ok((kind, target.name))
}

/// The tag change of an UpdateTags request, validated.
fn tag_update(request: &mut pb::UpdateTagsRequest) -> Result<TagUpdate> {
    let keys = request.set.len() + request.unset.len();
    if keys > validate::MAX_TAGS {
        return Err(Error::invalid(
            "set",
            format!(
                "set and unset may name at most {} keys in all, got {keys}",
                validate::MAX_TAGS
            ),
        ));
    }
    for (key, value) in &request.set {
        validate::tag_key(|| format!("set[{}] (key)", validate::echo(key)), key)?;
        validate::tag_value(|| format!("set[{}]", validate::echo(key)), value)?;
    }
    for (i, key) in request.unset.iter().enumerate() {
        validate::tag_key(|| format!("unset[{i}]"), key)?;
        if request.set.contains_key(key) {
            return Err(Error::invalid(
                format!("unset[{i}]"),
                format!(
                    "key {} is also in set: a key is either set or unset",
                    validate::echo(key)
                ),
            ));
        }
    }
    let mut unset = std::mem::take(&mut request.unset);
    unset.sort_unstable();
    unset.dedup();
    Ok(TagUpdate {
        set: std::mem::take(&mut request.set).into_iter().collect(),
        unset,
    })
}

impl MetadataApi {
    pub(super) async fn handle_delete_record(
        &self,
        request: Request<pb::DeleteRecordRequest>,
    ) -> Reply<pb::DeleteRecordResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let (kind, name) = record("target", request.into_inner().target)?;
        let outcome = self
            .run(move |store| store.delete_record(&project, kind, &name))
            .await?;
        Ok(Response::new(pb::DeleteRecordResponse {
            already_deleted: !outcome.changed,
            deleted_at: outcome.deleted_at.and_then(convert::timestamp),
        }))
    }

    pub(super) async fn handle_restore_record(
        &self,
        request: Request<pb::RestoreRecordRequest>,
    ) -> Reply<pb::RestoreRecordResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let (kind, name) = record("target", request.into_inner().target)?;
        let outcome = self
            .run(move |store| store.restore_record(&project, kind, &name))
            .await?;
        Ok(Response::new(pb::RestoreRecordResponse {
            was_live: !outcome.changed,
        }))
    }

    pub(super) async fn handle_purge(&self, request: Request<pb::PurgeRequest>) -> Reply<pb::PurgeResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let model_name = Some(request.into_inner().model_name).filter(|name| !name.is_empty());
        if let Some(name) = &model_name {
            validate::name("model_name", name)?;
        }
        let counts = self
            .run(move |store| store.purge(&project, model_name.as_deref()))
            .await?;
        Ok(Response::new(pb::PurgeResponse {
            models: counts.models,
            epochs: counts.epochs,
            datablobs: counts.datablobs,
            model_templates: counts.model_templates,
        }))
    }

    pub(super) async fn handle_update_tags(
        &self,
        request: Request<pb::UpdateTagsRequest>,
    ) -> Reply<pb::UpdateTagsResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let mut request = request.into_inner();
        let (kind, name) = record("target", request.target.take())?;
        let change = tag_update(&mut request)?;
        let tags = self
            .run(move |store| store.update_tags(&project, kind, &name, &change))
            .await?;
        Ok(Response::new(pb::UpdateTagsResponse {
            tags: tags.into_iter().collect(),
        }))
    }

    pub(super) async fn handle_set_description(
        &self,
        request: Request<pb::SetDescriptionRequest>,
    ) -> Reply<pb::SetDescriptionResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let (kind, name) = record("target", request.target)?;
        validate::description("description", &request.description)?;
        let description = Some(request.description).filter(|d| !d.is_empty());
        self.run(move |store| store.set_description(&project, kind, &name, description.as_deref()))
            .await?;
        Ok(Response::new(pb::SetDescriptionResponse {}))
    }
}
