//! Calls that tests share: seeding records, following pages to the end,
//! asserting error statuses, and snapshots of the whole store.

use mlmeta_proto::metadata_service_client::MetadataServiceClient;
use mlmeta_proto::{
    DataBlob, Epoch, GetLeaderboardRequest, GroupedFilter, LeaderboardRow, ListDataBlobsRequest,
    ListEpochsRequest, ListModelTemplatesRequest, ListModelsRequest, Model, ModelFilter, ModelTemplate,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::records;

/// A client of the metadata service.
pub type Client = MetadataServiceClient<Channel>;

/// Most pages a listing may take before the test assumes the tokens loop.
const MAX_PAGES: usize = 100_000;

/// Puts a datablob, panicking on error.
pub async fn put_datablob(client: &mut Client, name: &str, group: &str, hyperparams: &str) {
    client
        .put_data_blob(records::put_datablob(
            records::datablob(name, group, hyperparams),
            false,
        ))
        .await
        .unwrap_or_else(|s| panic!("PutDataBlob {name:?}: {s}"));
}

/// Puts a model template, panicking on error.
pub async fn put_template(client: &mut Client, name: &str, group: &str, hyperparams: &str) {
    client
        .put_model_template(records::put_template(
            records::template(name, group, hyperparams),
            false,
        ))
        .await
        .unwrap_or_else(|s| panic!("PutModelTemplate {name:?}: {s}"));
}

/// Puts a model of existing datablob and template, panicking on error.
pub async fn put_model(client: &mut Client, name: &str, datablob: &str, template: &str) {
    client
        .put_model(records::put_model(
            records::model(name, datablob, template),
            false,
        ))
        .await
        .unwrap_or_else(|s| panic!("PutModel {name:?}: {s}"));
}

/// Puts model `name` with its own datablob `<name>-data` (group `dg`) and
/// template `<name>-tmpl` (group `tg`).
pub async fn seed_model(client: &mut Client, name: &str) {
    let blob = format!("{name}-data");
    let tmpl = format!("{name}-tmpl");
    put_datablob(client, &blob, "dg", r#"{"rows": 10}"#).await;
    put_template(client, &tmpl, "tg", r#"{"layers": 2}"#).await;
    put_model(client, name, &blob, &tmpl).await;
}

/// Inserts epochs, panicking on error; returns (inserted, skipped).
pub async fn insert_epochs(client: &mut Client, epochs: Vec<Epoch>) -> (u64, u64) {
    let response = client
        .insert_epochs(records::insert(epochs))
        .await
        .unwrap_or_else(|s| panic!("InsertEpochs: {s}"))
        .into_inner();
    (response.inserted, response.skipped)
}

/// Asserts that `result` failed with `code` and a message containing each
/// of `needles` (ignoring ASCII case); returns the status.
#[track_caller]
pub fn expect_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needles: &[&str]) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?}, got success: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        code,
        "expected {code:?}, got {:?}: {}",
        status.code(),
        status.message()
    );
    let message = status.message().to_ascii_lowercase();
    for needle in needles {
        assert!(
            message.contains(&needle.to_ascii_lowercase()),
            "{code:?} message {:?} does not mention {needle:?}",
            status.message()
        );
    }
    status
}

/// Checks one page of a listing: at most `page_size` rows (100 when 0).
#[track_caller]
fn check_page(rows: usize, page_size: u32, pages: usize) {
    let limit = if page_size == 0 { 100 } else { page_size as usize };
    assert!(rows <= limit, "page of {rows} rows for page_size {page_size}");
    assert!(pages < MAX_PAGES, "more than {MAX_PAGES} pages: do tokens loop?");
}

/// Every datablob matching `filter`, following pages of `page_size`.
pub async fn list_all_datablobs(
    client: &mut Client,
    filter: Option<GroupedFilter>,
    page_size: u32,
) -> Vec<DataBlob> {
    let mut all = Vec::new();
    let mut token = String::new();
    for pages in 0.. {
        let page = client
            .list_data_blobs(ListDataBlobsRequest {
                project: String::new(),
                filter: filter.clone(),
                page_size,
                page_token: token,
            })
            .await
            .unwrap_or_else(|s| panic!("ListDataBlobs page {pages}: {s}"))
            .into_inner();
        check_page(page.datablobs.len(), page_size, pages);
        all.extend(page.datablobs);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    all
}

/// Every model template matching `filter`, following pages of `page_size`.
pub async fn list_all_templates(
    client: &mut Client,
    filter: Option<GroupedFilter>,
    page_size: u32,
) -> Vec<ModelTemplate> {
    let mut all = Vec::new();
    let mut token = String::new();
    for pages in 0.. {
        let page = client
            .list_model_templates(ListModelTemplatesRequest {
                project: String::new(),
                filter: filter.clone(),
                page_size,
                page_token: token,
            })
            .await
            .unwrap_or_else(|s| panic!("ListModelTemplates page {pages}: {s}"))
            .into_inner();
        check_page(page.model_templates.len(), page_size, pages);
        all.extend(page.model_templates);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    all
}

/// Every model matching `filter`, following pages of `page_size`.
pub async fn list_all_models(client: &mut Client, filter: Option<ModelFilter>, page_size: u32) -> Vec<Model> {
    let mut all = Vec::new();
    let mut token = String::new();
    for pages in 0.. {
        let page = client
            .list_models(ListModelsRequest {
                project: String::new(),
                filter: filter.clone(),
                page_size,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("ListModels page {pages}: {s}"))
            .into_inner();
        check_page(page.models.len(), page_size, pages);
        all.extend(page.models);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    all
}

/// Every epoch matching `request` (its page_token ignored), following pages
/// of its page_size.
pub async fn list_all_epochs(client: &mut Client, request: ListEpochsRequest) -> Vec<Epoch> {
    let mut all = Vec::new();
    let mut request = ListEpochsRequest {
        page_token: String::new(),
        ..request
    };
    for pages in 0.. {
        let page = client
            .list_epochs(request.clone())
            .await
            .unwrap_or_else(|s| panic!("ListEpochs page {pages}: {s}"))
            .into_inner();
        check_page(page.epochs.len(), request.page_size, pages);
        all.extend(page.epochs);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    all
}

/// Epochs of the given models (all models when empty), every page.
pub async fn epochs_of(client: &mut Client, model_names: &[&str]) -> Vec<Epoch> {
    list_all_epochs(
        client,
        ListEpochsRequest {
            model_names: records::strings(model_names),
            page_size: 10_000,
            ..ListEpochsRequest::default()
        },
    )
    .await
}

/// The whole leaderboard for `request` (its page_token ignored), following
/// pages of its page_size.
pub async fn full_leaderboard(client: &mut Client, request: GetLeaderboardRequest) -> Vec<LeaderboardRow> {
    let mut all = Vec::new();
    let mut request = GetLeaderboardRequest {
        page_token: String::new(),
        ..request
    };
    for pages in 0.. {
        let page = client
            .get_leaderboard(request.clone())
            .await
            .unwrap_or_else(|s| panic!("GetLeaderboard page {pages}: {s}"))
            .into_inner();
        check_page(page.rows.len(), request.page_size, pages);
        all.extend(page.rows);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    all
}

/// An epoch as (model_name, epoch_num, metric name -> value bits), so
/// that NaN compares equal to itself.
pub type EpochKey = (String, i64, Vec<(String, u64)>);

/// Everything stored, for checking that a rejected write changed nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Every datablob, by name.
    pub datablobs: Vec<DataBlob>,
    /// Every model template, by name.
    pub templates: Vec<ModelTemplate>,
    /// Every model, by name.
    pub models: Vec<Model>,
    /// Every epoch, by model name then epoch_num, with metric values as
    /// bits (so NaN compares equal to itself).
    pub epochs: Vec<EpochKey>,
}

impl Snapshot {
    /// Reads the whole store.
    pub async fn take(client: &mut Client) -> Self {
        let epochs = epochs_of(client, &[])
            .await
            .into_iter()
            .map(|e| {
                let metrics = e.metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
                (e.model_name, e.epoch_num, metrics)
            })
            .collect();
        Self {
            datablobs: list_all_datablobs(client, None, 10_000).await,
            templates: list_all_templates(client, None, 10_000).await,
            models: list_all_models(client, None, 10_000).await,
            epochs,
        }
    }

    /// Asserts the store still holds exactly this snapshot.
    pub async fn assert_unchanged(&self, client: &mut Client, after: &str) {
        let now = Self::take(client).await;
        assert!(
            *self == now,
            "the store changed after {after}:\nbefore: {self:#?}\nafter: {now:#?}"
        );
    }
}

/// Parses hyperparameters JSON as the server returned it.
#[track_caller]
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("server returned invalid JSON {text:?}: {e}"))
}
