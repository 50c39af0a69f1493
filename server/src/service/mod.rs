//! The `mlmeta.v1.MetadataService` implementation. Each handler converts
//! the request (validating it), makes one store call (on a blocking thread,
//! except epoch inserts, which queue for the group-commit writers),
//! and converts the result; errors become statuses in `error.rs`.

mod artifact_content;
mod artifacts;
mod columns;
mod convert;
mod metadata;
mod runs;
mod transfer;
mod watch;
mod write_epochs;

use mlmeta_proto as pb;
use mlmeta_proto::metadata_service_server::MetadataService;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{Error, Result};
use crate::security::{Caller, ProjectScope};
use crate::store::Store;
use crate::store::records::{ComponentKind, InsertCounts};

/// The gRPC service over a [`Store`].
pub struct MetadataApi {
    store: Store,
    watches: watch::Watches,
}

impl MetadataApi {
    /// Serves `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            watches: watch::Watches::new(),
        }
    }

    /// Runs a synchronous store call off the async worker threads.
    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(&store)).await?
    }

    /// [`MetadataApi::run`] for a call about one project: the closure gets
    /// its own copy of the scope, so handlers need not clone it by hand.
    async fn run_in<T: Send + 'static>(
        &self,
        project: &ProjectScope,
        call: impl FnOnce(&Store, &ProjectScope) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let project = project.clone();
        self.run(move |store| call(store, &project)).await
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl MetadataService for MetadataApi {
    async fn put_data_blob(
        &self,
        request: Request<pb::PutDataBlobRequest>,
    ) -> Reply<pb::PutDataBlobResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let datablob = convert::required("datablob", request.datablob)?;
        let new = convert::new_component(
            "datablob",
            &datablob.name,
            &datablob.group_name,
            &datablob.hyperparams_json,
        )?;
        let ignore_existing = request.ignore_existing;
        let put = self
            .run_in(&project, move |store, project| {
                store.put_component(project, ComponentKind::DataBlob, &new, ignore_existing)
            })
            .await?;
        Ok(Response::new(pb::PutDataBlobResponse {
            datablob: Some(convert::datablob(put.record, project.name())),
            already_existed: put.already_existed,
        }))
    }

    async fn put_model_template(
        &self,
        request: Request<pb::PutModelTemplateRequest>,
    ) -> Reply<pb::PutModelTemplateResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let template = convert::required("model_template", request.model_template)?;
        let new = convert::new_component(
            "model_template",
            &template.name,
            &template.group_name,
            &template.hyperparams_json,
        )?;
        let ignore_existing = request.ignore_existing;
        let put = self
            .run_in(&project, move |store, project| {
                store.put_component(project, ComponentKind::ModelTemplate, &new, ignore_existing)
            })
            .await?;
        Ok(Response::new(pb::PutModelTemplateResponse {
            model_template: Some(convert::model_template(put.record, project.name())),
            already_existed: put.already_existed,
        }))
    }

    async fn put_model(&self, request: Request<pb::PutModelRequest>) -> Reply<pb::PutModelResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let new = convert::new_model(convert::required("model", request.model)?)?;
        let ignore_existing = request.ignore_existing;
        let put = self
            .run_in(&project, move |store, project| {
                store.put_model(project, &new, ignore_existing)
            })
            .await?;
        Ok(Response::new(pb::PutModelResponse {
            model: Some(convert::model(put.record, project.name())),
            already_existed: put.already_existed,
        }))
    }

    async fn insert_epochs(
        &self,
        request: Request<pb::InsertEpochsRequest>,
    ) -> Reply<pb::InsertEpochsResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let epochs = convert::new_epochs(request.into_inner())?;
        let counts = self.store.insert_epochs(project, epochs).await?;
        Ok(Response::new(counts_reply(counts)))
    }

    async fn stream_epochs(
        &self,
        request: Request<Streaming<pb::InsertEpochsRequest>>,
    ) -> Reply<pb::InsertEpochsResponse> {
        let caller = caller_of(&request)?.clone();
        let mut stream = request.into_inner();
        let mut total = InsertCounts::default();
        let mut message_index = 0_u64;
        loop {
            // The transport ends a stream with an error when it breaks a
            // limit (message size, in-flight budget wait, idle timeout):
            // the caller still learns what the earlier messages stored.
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => return Err(stream_ended(&status, message_index, total)),
            };
            let stored = async {
                let project = caller.project("project", &message.project)?;
                let epochs = convert::new_epochs(message)?;
                self.store.insert_epochs(project, epochs).await
            }
            .await;
            match stored {
                Ok(counts) => total += counts,
                Err(error) => return Err(stream_failure(error, message_index, total)),
            }
            message_index += 1;
        }
        Ok(Response::new(counts_reply(total)))
    }

    type WriteEpochsStream = write_epochs::Answers;

    async fn upload_artifact(
        &self,
        request: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Reply<pb::UploadArtifactResponse> {
        artifact_content::upload_artifact(self, request).await
    }

    type DownloadArtifactStream = artifact_content::Chunks;

    async fn download_artifact(
        &self,
        request: Request<pb::DownloadArtifactRequest>,
    ) -> Reply<Self::DownloadArtifactStream> {
        artifact_content::download_artifact(self, request).await
    }

    async fn write_epochs(
        &self,
        request: Request<Streaming<pb::WriteEpochsRequest>>,
    ) -> Reply<Self::WriteEpochsStream> {
        let caller = caller_of(&request)?.clone();
        Ok(Response::new(write_epochs::serve(
            self.store.clone(),
            caller,
            request.into_inner(),
        )))
    }

    type WatchEpochsStream = watch::Messages<pb::WatchEpochsResponse>;

    async fn watch_epochs(&self, request: Request<pb::WatchEpochsRequest>) -> Reply<Self::WatchEpochsStream> {
        let project = project_of(&request, &request.get_ref().project)?;
        let slot = watch_slot(&request);
        let spec = watch::epoch_spec(request.into_inner())?;
        Ok(Response::new(
            self.watches.epochs(&self.store, project, spec, slot).await?,
        ))
    }

    type ExportStream = transfer::Records;

    async fn export(&self, request: Request<pb::ExportRequest>) -> Reply<Self::ExportStream> {
        transfer::export(self, request).await
    }

    async fn import(&self, request: Request<Streaming<pb::ImportRequest>>) -> Reply<pb::ImportResponse> {
        transfer::import(self, request).await
    }

    type WatchModelsStream = watch::Messages<pb::WatchModelsResponse>;

    async fn watch_models(&self, request: Request<pb::WatchModelsRequest>) -> Reply<Self::WatchModelsStream> {
        let project = project_of(&request, &request.get_ref().project)?;
        let slot = watch_slot(&request);
        let spec = watch::models_spec(request.into_inner())?;
        Ok(Response::new(
            self.watches.models(&self.store, project, spec, slot).await?,
        ))
    }

    async fn list_data_blobs(
        &self,
        request: Request<pb::ListDataBlobsRequest>,
    ) -> Reply<pb::ListDataBlobsResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let filter = convert::component_filter("filter", request.filter)?;
        let page = convert::page(request.page_size, request.page_token)?;
        let page = self
            .run_in(&project, move |store, project| {
                store.list_components(project, ComponentKind::DataBlob, &filter, &page)
            })
            .await?;
        Ok(Response::new(pb::ListDataBlobsResponse {
            datablobs: page
                .items
                .into_iter()
                .map(|c| convert::datablob(c, project.name()))
                .collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn list_model_templates(
        &self,
        request: Request<pb::ListModelTemplatesRequest>,
    ) -> Reply<pb::ListModelTemplatesResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let filter = convert::component_filter("filter", request.filter)?;
        let page = convert::page(request.page_size, request.page_token)?;
        let page = self
            .run_in(&project, move |store, project| {
                store.list_components(project, ComponentKind::ModelTemplate, &filter, &page)
            })
            .await?;
        Ok(Response::new(pb::ListModelTemplatesResponse {
            model_templates: page
                .items
                .into_iter()
                .map(|c| convert::model_template(c, project.name()))
                .collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn list_models(&self, request: Request<pb::ListModelsRequest>) -> Reply<pb::ListModelsResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let view = convert::model_view(&request)?;
        let filter = convert::model_filter(request.filter)?;
        let page = convert::page(request.page_size, request.page_token)?;
        let page = self
            .run_in(&project, move |store, project| {
                store.list_models(project, &filter, &view, &page)
            })
            .await?;
        Ok(Response::new(pb::ListModelsResponse {
            models: page
                .items
                .into_iter()
                .map(|m| convert::model(m, project.name()))
                .collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let allowed = caller_of(&request)?.projects.clone();
        let request = request.into_inner();
        let page = convert::page(request.page_size, request.page_token)?;
        let page = self
            .run(move |store| store.list_projects(&allowed, &page))
            .await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page.items.into_iter().map(convert::project).collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn list_epochs(&self, request: Request<pb::ListEpochsRequest>) -> Reply<pb::ListEpochsResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let filter = convert::epoch_filter(&request)?;
        let page = convert::page(request.page_size, request.page_token)?;
        let page = self
            .run(move |store| store.list_epochs(&project, &filter, &page))
            .await?;
        Ok(Response::new(pb::ListEpochsResponse {
            epochs: page.items.into_iter().map(convert::epoch).collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn get_current_epoch(
        &self,
        request: Request<pb::GetCurrentEpochRequest>,
    ) -> Reply<pb::GetCurrentEpochResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let model_name = request.into_inner().model_name;
        crate::validate::name("model_name", &model_name)?;
        let current = self
            .run(move |store| store.current_epoch(&project, &model_name))
            .await?;
        Ok(Response::new(pb::GetCurrentEpochResponse {
            current_epoch: current.unwrap_or(0),
            model_exists: current.is_some(),
        }))
    }

    async fn get_best_model(
        &self,
        request: Request<pb::GetBestModelRequest>,
    ) -> Reply<pb::GetBestModelResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let direction = convert::ranking(&request.metric_name, request.direction)?;
        let filter = convert::model_filter(request.filter)?;
        let top_k = convert::top_k(request.top_k)?;
        let columns = convert::columns(&request.columns)?;
        let metric_name = request.metric_name;
        let best = self
            .run_in(&project, move |store, project| {
                store.best_models(project, &metric_name, direction, &filter, top_k, &columns)
            })
            .await?;
        Ok(Response::new(pb::GetBestModelResponse {
            models: best
                .into_iter()
                .map(|b| convert::best_model(b, project.name()))
                .collect(),
        }))
    }

    async fn get_leaderboard(
        &self,
        request: Request<pb::GetLeaderboardRequest>,
    ) -> Reply<pb::GetLeaderboardResponse> {
        let project = project_of(&request, &request.get_ref().project)?;
        let request = request.into_inner();
        let direction = convert::ranking(&request.metric_name, request.direction)?;
        let filter = convert::model_filter(request.filter)?;
        let page = convert::page(request.page_size, request.page_token)?;
        let columns = convert::columns(&request.columns)?;
        let metric_name = request.metric_name;
        let page = self
            .run_in(&project, move |store, project| {
                store.leaderboard(project, &metric_name, direction, &filter, &columns, &page)
            })
            .await?;
        Ok(Response::new(pb::GetLeaderboardResponse {
            rows: page
                .items
                .into_iter()
                .map(|r| convert::leaderboard_row(r, project.name()))
                .collect(),
            next_page_token: page.next_token,
        }))
    }

    // --- Model metadata: tags and descriptions (see metadata.rs) ---

    async fn update_tags(&self, request: Request<pb::UpdateTagsRequest>) -> Reply<pb::UpdateTagsResponse> {
        self.handle_update_tags(request).await
    }

    async fn set_description(
        &self,
        request: Request<pb::SetDescriptionRequest>,
    ) -> Reply<pb::SetDescriptionResponse> {
        self.handle_set_description(request).await
    }

    // Delete, restore, purge (see metadata.rs).

    async fn delete_record(
        &self,
        request: Request<pb::DeleteRecordRequest>,
    ) -> Reply<pb::DeleteRecordResponse> {
        self.handle_delete_record(request).await
    }

    async fn restore_record(
        &self,
        request: Request<pb::RestoreRecordRequest>,
    ) -> Reply<pb::RestoreRecordResponse> {
        self.handle_restore_record(request).await
    }

    async fn purge(&self, request: Request<pb::PurgeRequest>) -> Reply<pb::PurgeResponse> {
        self.handle_purge(request).await
    }

    // Run lifecycle: the handlers live in `runs.rs`.

    async fn start_run(&self, request: Request<pb::StartRunRequest>) -> Reply<pb::StartRunResponse> {
        runs::start_run(self, request).await
    }

    async fn heartbeat(&self, request: Request<pb::HeartbeatRequest>) -> Reply<pb::HeartbeatResponse> {
        runs::heartbeat(self, request).await
    }

    async fn end_run(&self, request: Request<pb::EndRunRequest>) -> Reply<pb::EndRunResponse> {
        runs::end_run(self, request).await
    }

    async fn get_model(&self, request: Request<pb::GetModelRequest>) -> Reply<pb::GetModelResponse> {
        runs::get_model(self, request).await
    }

    // Artifact references: the handlers live in `artifacts.rs`.

    async fn put_artifact(&self, request: Request<pb::PutArtifactRequest>) -> Reply<pb::PutArtifactResponse> {
        artifacts::put_artifact(self, request).await
    }

    async fn list_artifacts(
        &self,
        request: Request<pb::ListArtifactsRequest>,
    ) -> Reply<pb::ListArtifactsResponse> {
        artifacts::list_artifacts(self, request).await
    }

    async fn delete_artifact(
        &self,
        request: Request<pb::DeleteArtifactRequest>,
    ) -> Reply<pb::DeleteArtifactResponse> {
        artifacts::delete_artifact(self, request).await
    }
}

/// Who makes the call, as the guard put it into the request. A request
/// without one did not pass the guard: refused, never served as anyone.
fn caller_of<T>(request: &Request<T>) -> Result<&Caller> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Error::Task("the call has no caller: it did not pass the guard".into()))
}

/// The guard's `--max-watchers` slot of a watch request, for the watch to
/// hold until it ends.
fn watch_slot<T>(request: &Request<T>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    request
        .extensions()
        .get::<crate::security::WatchSlot>()
        .and_then(crate::security::WatchSlot::take)
}

/// The project the request names, if its caller may use it.
fn project_of<T>(request: &Request<T>, requested: &str) -> Result<ProjectScope> {
    caller_of(request)?.project("project", requested)
}

fn counts_reply(counts: InsertCounts) -> pb::InsertEpochsResponse {
    pb::InsertEpochsResponse {
        inserted: counts.inserted,
        skipped: counts.skipped,
    }
}

/// The status of a stream whose transport failed before message `index`
/// arrived whole: its code and message, and what the messages before it
/// stored (they stay committed).
fn stream_ended(status: &Status, index: u64, stored: InsertCounts) -> Status {
    Status::new(
        status.code(),
        format!(
            "{} (the {index} stream message{} before stayed committed: {} epochs inserted, {} skipped; re-sending them is harmless)",
            status.message(),
            if index == 1 { "" } else { "s" },
            stored.inserted,
            stored.skipped
        ),
    )
}

/// The status of a stream that failed at message `index`: the error of that
/// message, and what the messages before it stored (they stay committed).
fn stream_failure(error: Error, index: u64, stored: InsertCounts) -> Status {
    let status = Status::from(error);
    Status::new(
        status.code(),
        format!(
            "stream message {index}: {} (messages before it stayed committed: {} epochs inserted, {} skipped; re-sending them is harmless)",
            status.message(),
            stored.inserted,
            stored.skipped
        ),
    )
}
