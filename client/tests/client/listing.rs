//! Listings follow page tokens to the end, with filters, whole or as
//! streams.

use futures::{StreamExt, TryStreamExt};
use mlmeta_client::{
    Client, DataBlob, EpochFilter, GroupedFilter, Model, ModelFilter, ModelTemplate, NewEpoch,
};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

backend_tests! {
    listings_follow_pages_with_filters,
    epoch_listings_stream_page_by_page,
}

/// A client that asks for pages of 3 rows, so every listing spans pages.
async fn small_pages(server: &TestServer) -> Client {
    Client::builder(server.url())
        .page_size(3)
        .connect()
        .await
        .unwrap()
}

async fn listings_follow_pages_with_filters(server: TestServer) {
    let client = small_pages(&server).await;
    for i in 0..10 {
        let group = if i % 2 == 0 { "even" } else { "odd" };
        client
            .put_datablob(
                &DataBlob::new(format!("blob-{i:02}"), group, json!({"i": i})),
                false,
            )
            .await
            .unwrap();
        client
            .put_model_template(
                &ModelTemplate::new(format!("tmpl-{i:02}"), group, json!({})),
                false,
            )
            .await
            .unwrap();
    }
    for i in 0..10 {
        let model = Model::new(
            format!("model-{i:02}"),
            "Net",
            format!("blob-{i:02}"),
            format!("tmpl-{:02}", 9 - i),
        );
        client.put_model(&model, false).await.unwrap();
    }

    let blobs = client.list_datablobs(&GroupedFilter::default()).await.unwrap();
    let names: Vec<String> = blobs.iter().map(|b| b.name.clone()).collect();
    assert_eq!(names, (0..10).map(|i| format!("blob-{i:02}")).collect::<Vec<_>>());
    assert_eq!(blobs[3].hyperparams, json!({"i": 3}));

    let odd = client
        .list_model_templates(&GroupedFilter::default().group_names(["odd"]))
        .await
        .unwrap();
    assert_eq!(odd.len(), 5);
    assert!(odd.iter().all(|t| t.group_name == "odd"));
    let picked = client
        .list_datablobs(
            &GroupedFilter::default()
                .names(["blob-01", "blob-02"])
                .group_names(["even"]),
        )
        .await
        .unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].name, "blob-02");

    let models = client.list_models(&ModelFilter::default()).await.unwrap();
    assert_eq!(models.len(), 10);
    let even_blobs = client
        .list_models(&ModelFilter::default().datablob_group_names(["even"]))
        .await
        .unwrap();
    assert_eq!(even_blobs.len(), 5);
    let by_template = client
        .list_models(&ModelFilter::default().model_template_names(["tmpl-00", "tmpl-01"]))
        .await
        .unwrap();
    let names: Vec<&str> = by_template.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["model-08", "model-09"]);
    let both = client
        .list_models(
            &ModelFilter::default()
                .datablob_names(["blob-01", "blob-02", "blob-03"])
                .model_template_group_names(["even"]),
        )
        .await
        .unwrap();
    // blob-01 goes with tmpl-08, blob-02 with tmpl-07, blob-03 with tmpl-06.
    let names: Vec<&str> = both.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["model-01", "model-03"]);

    let streamed: Vec<Model> = client
        .list_models_stream(&ModelFilter::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, models);
    let none = client
        .list_datablobs(&GroupedFilter::default().names(["nothing"]))
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn epoch_listings_stream_page_by_page(server: TestServer) {
    let client = small_pages(&server).await;
    for name in ["a", "b"] {
        crate::support::seed_model(&client, name).await;
        let epochs = (0..20).map(|i| NewEpoch::new(i, [("loss", i as f64)]));
        client.insert_epochs(name, epochs).await.unwrap();
    }
    let all = client.list_epochs(&EpochFilter::default()).await.unwrap();
    let keys: Vec<(String, i64)> = all.iter().map(|e| (e.model_name.clone(), e.epoch_num)).collect();
    let want: Vec<(String, i64)> = ["a", "b"]
        .iter()
        .flat_map(|m| (0..20).map(move |i| ((*m).to_owned(), i)))
        .collect();
    assert_eq!(keys, want);

    let range = client
        .list_epochs(&EpochFilter::models(["b"]).min_epoch_num(5).max_epoch_num(12))
        .await
        .unwrap();
    let nums: Vec<i64> = range.iter().map(|e| e.epoch_num).collect();
    assert_eq!(nums, (5..=12).collect::<Vec<_>>());

    // A stream can stop early, and yields the same items in order.
    let first: Vec<i64> = client
        .list_epochs_stream(&EpochFilter::models(["a"]))
        .take(4)
        .map(|e| e.unwrap().epoch_num)
        .collect()
        .await;
    assert_eq!(first, [0, 1, 2, 3]);
    let mut stream = client.list_epochs_stream(&EpochFilter::models(["a", "b"]));
    let mut count = 0;
    while let Some(epoch) = stream.try_next().await.unwrap() {
        assert_eq!(epoch.metrics["loss"], epoch.epoch_num as f64);
        count += 1;
    }
    assert_eq!(count, 40);
}
