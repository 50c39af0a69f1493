//! Pagination of every listing: default and maximum page sizes, tokens
//! that yield every row exactly once in order, garbage tokens.

use mlmeta_proto::{
    GetLeaderboardRequest, GroupedFilter, ListDataBlobsRequest, ListEpochsRequest, ListModelTemplatesRequest,
    ListModelsRequest, MetricDirection, ModelFilter,
};
use mlmeta_tests::calls::{
    self, Client, expect_status, full_leaderboard, insert_epochs, list_all_datablobs, list_all_epochs,
    list_all_models, list_all_templates,
};
use mlmeta_tests::records::{epoch, leaderboard, strings};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    default_page_size_is_100,
    pages_of_1000_and_10000_work,
    page_size_over_10000_is_invalid,
    following_tokens_yields_every_row_once_in_order,
    garbage_page_tokens_are_invalid,
    pages_stay_exact_when_rows_arrive_between_pages,
    page_size_may_change_between_pages,
    token_for_another_filter_is_invalid,
}

async fn default_page_size_is_100(server: TestServer) {
    let mut client = server.client();
    for i in 0..150 {
        calls::put_datablob(&mut client, &format!("d{i:03}"), "g", "{}").await;
    }
    let first = client
        .list_data_blobs(ListDataBlobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.datablobs.len(), 100, "default page size");
    assert!(!first.next_page_token.is_empty(), "a token when more rows follow");
    let second = client
        .list_data_blobs(ListDataBlobsRequest {
            page_token: first.next_page_token,
            ..ListDataBlobsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.datablobs.len(), 50);
    assert!(second.next_page_token.is_empty(), "no token on the last page");
    assert_eq!(second.datablobs[0].name, "d100");

    // Epochs too.
    calls::seed_model(&mut client, "m").await;
    insert_epochs(
        &mut client,
        (0..101).map(|n| epoch("m", n, &[("loss", 1.0)])).collect(),
    )
    .await;
    let page = client
        .list_epochs(ListEpochsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.epochs.len(), 100);
    assert!(!page.next_page_token.is_empty());
}

async fn pages_of_1000_and_10000_work(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    let mut sent = Vec::new();
    for n in 0..1_250 {
        sent.push(epoch("m", n, &[("loss", n as f64)]));
        sent.push(epoch("n", n, &[("loss", n as f64)]));
    }
    insert_epochs(&mut client, sent).await;
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_epochs(ListEpochsRequest {
                page_size: 1_000,
                page_token: token,
                ..ListEpochsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.epochs.len());
        token = page.next_page_token;
        if token.is_empty() || sizes.len() > 10 {
            break;
        }
    }
    assert_eq!(sizes, vec![1_000, 1_000, 500]);
    let page = client
        .list_epochs(ListEpochsRequest {
            page_size: 10_000,
            ..ListEpochsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.epochs.len(), 2_500);
    assert!(page.next_page_token.is_empty());
}

async fn page_size_over_10000_is_invalid(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    insert_epochs(&mut client, vec![epoch("m", 0, &[("acc", 1.0)])]).await;
    for page_size in [10_001, u32::MAX] {
        let result = client
            .list_data_blobs(ListDataBlobsRequest {
                page_size,
                ..ListDataBlobsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["page_size"]);
        let result = client
            .list_model_templates(ListModelTemplatesRequest {
                page_size,
                ..ListModelTemplatesRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["page_size"]);
        let result = client
            .list_models(ListModelsRequest {
                page_size,
                ..ListModelsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["page_size"]);
        let result = client
            .list_epochs(ListEpochsRequest {
                page_size,
                ..ListEpochsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["page_size"]);
        let result = client
            .get_leaderboard(leaderboard("acc", MetricDirection::Max, page_size))
            .await;
        expect_status(result, Code::InvalidArgument, &["page_size"]);
    }
    // The maximum itself is fine everywhere.
    assert_eq!(list_all_datablobs(&mut client, None, 10_000).await.len(), 1);
    assert_eq!(list_all_templates(&mut client, None, 10_000).await.len(), 1);
    assert_eq!(list_all_models(&mut client, None, 10_000).await.len(), 1);
    let board = full_leaderboard(&mut client, leaderboard("acc", MetricDirection::Max, 10_000)).await;
    assert_eq!(board.len(), 1);
}

/// 23 datablobs in 2 groups, 23 templates, 23 models, 3 epochs per model.
async fn seed_many(client: &mut Client) {
    for i in 0..23 {
        let group = if i % 3 == 0 { "three" } else { "other" };
        calls::put_datablob(client, &format!("d{i:02}"), group, "{}").await;
        calls::put_template(client, &format!("t{i:02}"), group, "{}").await;
        calls::put_model(
            client,
            &format!("m{i:02}"),
            &format!("d{i:02}"),
            &format!("t{i:02}"),
        )
        .await;
    }
    let mut epochs = Vec::new();
    for i in 0..23 {
        for n in 0..3 {
            epochs.push(epoch(
                &format!("m{i:02}"),
                n,
                &[("acc", f64::from(i % 5) + n as f64)],
            ));
        }
    }
    insert_epochs(client, epochs).await;
}

async fn following_tokens_yields_every_row_once_in_order(server: TestServer) {
    let mut client = server.client();
    seed_many(&mut client).await;
    let three = Some(GroupedFilter {
        names: vec![],
        group_names: strings(&["three"]),
        ..Default::default()
    });
    let model_filter = ModelFilter {
        datablob_group_names: strings(&["other"]),
        ..ModelFilter::default()
    };
    let all_blobs = list_all_datablobs(&mut client, None, 10_000).await;
    let three_blobs = list_all_datablobs(&mut client, three.clone(), 10_000).await;
    let all_tmpls = list_all_templates(&mut client, None, 10_000).await;
    let all_models = list_all_models(&mut client, None, 10_000).await;
    let other_models = list_all_models(&mut client, Some(model_filter.clone()), 10_000).await;
    let all_epochs = calls::epochs_of(&mut client, &[]).await;
    let board_request = |page_size| GetLeaderboardRequest {
        filter: Some(model_filter.clone()),
        ..leaderboard("acc", MetricDirection::Max, page_size)
    };
    let full_board = full_leaderboard(&mut client, board_request(10_000)).await;
    assert_eq!(all_blobs.len(), 23);
    assert_eq!(three_blobs.len(), 8);
    assert_eq!(other_models.len(), 15);
    assert_eq!(all_epochs.len(), 69);
    assert_eq!(full_board.len(), 15);
    let mut names: Vec<_> = all_blobs.iter().map(|d| d.name.clone()).collect();
    names.dedup();
    assert_eq!(names.len(), 23, "no datablob twice");

    for page_size in [1, 2, 3, 7, 22, 23, 24] {
        assert_eq!(
            list_all_datablobs(&mut client, None, page_size).await,
            all_blobs,
            "page_size {page_size}"
        );
        assert_eq!(
            list_all_datablobs(&mut client, three.clone(), page_size).await,
            three_blobs
        );
        assert_eq!(list_all_templates(&mut client, None, page_size).await, all_tmpls);
        assert_eq!(list_all_models(&mut client, None, page_size).await, all_models);
        assert_eq!(
            list_all_models(&mut client, Some(model_filter.clone()), page_size).await,
            other_models
        );
        let epochs = list_all_epochs(
            &mut client,
            ListEpochsRequest {
                page_size,
                ..ListEpochsRequest::default()
            },
        )
        .await;
        assert_eq!(epochs, all_epochs, "epochs with page_size {page_size}");
        let board = full_leaderboard(&mut client, board_request(page_size)).await;
        assert_eq!(board, full_board, "leaderboard with page_size {page_size}");
    }
    // Epochs of some models in a range, in pages of 2.
    let ranged = list_all_epochs(
        &mut client,
        ListEpochsRequest {
            project: String::new(),
            model_names: strings(&["m05", "m01", "m22"]),
            min_epoch_num: Some(1),
            max_epoch_num: Some(2),
            page_size: 2,
            page_token: String::new(),
        },
    )
    .await;
    let got: Vec<(&str, i64)> = ranged
        .iter()
        .map(|e| (e.model_name.as_str(), e.epoch_num))
        .collect();
    assert_eq!(
        got,
        vec![
            ("m01", 1),
            ("m01", 2),
            ("m05", 1),
            ("m05", 2),
            ("m22", 1),
            ("m22", 2)
        ]
    );
}

async fn garbage_page_tokens_are_invalid(server: TestServer) {
    let mut client = server.client();
    seed_many(&mut client).await;
    let long = "x".repeat(5_000);
    for token in ["garbage", "!!!", "😀", "%%%%", " ", long.as_str()] {
        let page_token = token.to_owned();
        let result = client
            .list_data_blobs(ListDataBlobsRequest {
                page_token: page_token.clone(),
                ..ListDataBlobsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["token"]);
        let result = client
            .list_model_templates(ListModelTemplatesRequest {
                page_token: page_token.clone(),
                ..ListModelTemplatesRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["token"]);
        let result = client
            .list_models(ListModelsRequest {
                page_token: page_token.clone(),
                ..ListModelsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["token"]);
        let result = client
            .list_epochs(ListEpochsRequest {
                page_token: page_token.clone(),
                ..ListEpochsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["token"]);
        let result = client
            .get_leaderboard(GetLeaderboardRequest {
                page_token,
                ..leaderboard("acc", MetricDirection::Max, 0)
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["token"]);
    }
}

async fn pages_stay_exact_when_rows_arrive_between_pages(server: TestServer) {
    let mut client = server.client();
    for i in 0..12 {
        calls::put_datablob(&mut client, &format!("d{i:02}"), "g", "{}").await;
    }
    calls::seed_model(&mut client, "m").await;
    insert_epochs(
        &mut client,
        (0..12).map(|n| epoch("m", n * 10, &[("loss", 1.0)])).collect(),
    )
    .await;

    // First page of 5, then rows sorting before and after the cursor.
    let first = client
        .list_data_blobs(ListDataBlobsRequest {
            page_size: 5,
            ..ListDataBlobsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    calls::put_datablob(&mut client, "a-before", "g", "{}").await;
    calls::put_datablob(&mut client, "d02x", "g", "{}").await;
    calls::put_datablob(&mut client, "z-after", "g", "{}").await;
    let mut names: Vec<String> = first.datablobs.into_iter().map(|d| d.name).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_data_blobs(ListDataBlobsRequest {
                page_size: 5,
                page_token: token,
                ..ListDataBlobsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.datablobs.into_iter().map(|d| d.name));
        token = page.next_page_token;
        assert!(names.len() < 100, "tokens loop");
    }
    let mut want: Vec<String> = (0..12).map(|i| format!("d{i:02}")).collect();
    want.extend(["m-data".to_owned(), "z-after".to_owned()]);
    assert_eq!(
        names, want,
        "rows before the cursor must neither repeat nor shift the pages"
    );

    // Epochs: a new epoch before the cursor, one after.
    let first = client
        .list_epochs(ListEpochsRequest {
            page_size: 5,
            ..ListEpochsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    insert_epochs(
        &mut client,
        vec![epoch("m", 5, &[("loss", 1.0)]), epoch("m", 115, &[("loss", 1.0)])],
    )
    .await;
    let mut nums: Vec<i64> = first.epochs.iter().map(|e| e.epoch_num).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_epochs(ListEpochsRequest {
                page_size: 5,
                page_token: token,
                ..ListEpochsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        nums.extend(page.epochs.iter().map(|e| e.epoch_num));
        token = page.next_page_token;
        assert!(nums.len() < 100, "tokens loop");
    }
    let mut want: Vec<i64> = (0..12).map(|n| n * 10).collect();
    want.push(115);
    assert_eq!(
        nums, want,
        "epochs before the cursor must neither repeat nor shift the pages"
    );
}

async fn page_size_may_change_between_pages(server: TestServer) {
    let mut client = server.client();
    seed_many(&mut client).await;
    let all = list_all_datablobs(&mut client, None, 10_000).await;
    let all_epochs = calls::epochs_of(&mut client, &[]).await;
    let sizes = [2_u32, 5, 1, 7, 3, 10_000];
    let mut got = Vec::new();
    let mut token = String::new();
    for size in sizes.iter().cycle().take(100) {
        let page = client
            .list_data_blobs(ListDataBlobsRequest {
                page_size: *size,
                page_token: token,
                ..ListDataBlobsRequest::default()
            })
            .await
            .unwrap_or_else(|s| panic!("page of {size} after a page of another size: {s}"))
            .into_inner();
        got.extend(page.datablobs);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(got, all);
    let mut got = Vec::new();
    let mut token = String::new();
    for size in sizes.iter().cycle().take(100) {
        let page = client
            .list_epochs(ListEpochsRequest {
                page_size: *size,
                page_token: token,
                ..ListEpochsRequest::default()
            })
            .await
            .unwrap_or_else(|s| panic!("epoch page of {size} after a page of another size: {s}"))
            .into_inner();
        got.extend(page.epochs);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(got, all_epochs);
}

async fn token_for_another_filter_is_invalid(server: TestServer) {
    let mut client = server.client();
    seed_many(&mut client).await;
    let first = client
        .list_data_blobs(ListDataBlobsRequest {
            page_size: 2,
            ..ListDataBlobsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let result = client
        .list_data_blobs(ListDataBlobsRequest {
            project: String::new(),
            filter: Some(GroupedFilter {
                names: vec![],
                group_names: strings(&["three"]),
                ..Default::default()
            }),
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await;
    expect_status(result, Code::InvalidArgument, &["token"]);
    // A datablob token is not a template token either.
    let result = client
        .list_model_templates(ListModelTemplatesRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..ListModelTemplatesRequest::default()
        })
        .await;
    expect_status(result, Code::InvalidArgument, &["token"]);
    let first = client
        .list_epochs(ListEpochsRequest {
            page_size: 2,
            min_epoch_num: Some(1),
            ..ListEpochsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let result = client
        .list_epochs(ListEpochsRequest {
            page_size: 2,
            min_epoch_num: Some(2),
            page_token: first.next_page_token,
            ..ListEpochsRequest::default()
        })
        .await;
    expect_status(result, Code::InvalidArgument, &["token"]);
    let first = client
        .get_leaderboard(leaderboard("acc", MetricDirection::Max, 2))
        .await
        .unwrap()
        .into_inner();
    let result = client
        .get_leaderboard(GetLeaderboardRequest {
            page_token: first.next_page_token,
            ..leaderboard("acc", MetricDirection::Min, 2)
        })
        .await;
    expect_status(result, Code::InvalidArgument, &["token"]);
}
