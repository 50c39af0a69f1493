//! The page in a real headless Chromium (chromedriver + fantoccini), on
//! both backends: the models table shows what was inserted, the filter
//! box filters and shows the error of a bad expression, clicking a header
//! sorts, picking rows leads to compare, the model page draws one chart
//! per metric from the right data (and follows a RUNNING run live), the
//! compare page overlays the chosen models with differing params
//! highlighted, the phone width has no sideways scrolling, and the login
//! form works with tokens. Screenshots go to `target/screenshots/`.
//!
//! Without chromedriver these tests print a notice and pass, unless
//! `MLMETA_REQUIRE_BROWSER=1` (see `mlmeta_tests::browser`).

use mlmeta_proto::StartRunRequest;
use mlmeta_tests::browser::Browser;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup, calls, records};
use serde_json::{Value, json};

use crate::security::{READ_TOKEN, tokens_file};
use crate::web_api::seed_zoo;

backend_tests_with_setup! {
    the_page_shows_filters_sorts_charts_and_compares => 180,
    the_login_form_takes_a_token => 120,
}

async fn rows(browser: &Browser) -> Vec<String> {
    browser.texts("#models tbody td.name").await
}

async fn the_page_shows_filters_sorts_charts_and_compares(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let Some(mut browser) = Browser::start(1280, 900).await else {
        return;
    };
    let mut client = server.client();
    seed_zoo(&mut client).await;
    client
        .start_run(StartRunRequest {
            model_name: "alpha".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let base = server.http_url();
    let b = &browser;

    // Models: what was inserted, with status and the chosen metric columns.
    b.client.goto(&format!("{base}/?metrics=loss")).await.unwrap();
    b.wait_ready("models", "true").await;
    assert_eq!(rows(b).await, ["alpha", "beta", "delta", "gamma"]);
    assert_eq!(
        b.texts("#models tbody .status").await,
        ["RUNNING", "CREATED", "CREATED", "CREATED"]
    );
    let headers = b.texts("#models thead th").await;
    assert!(
        headers.contains(&"loss last".to_owned()) && headers.contains(&"Epochs".to_owned()),
        "{headers:?}"
    );
    assert_eq!(b.texts("#page-info").await, ["1–4 of 4 (page 1 of 1)"]);
    assert_eq!(b.texts("#project option").await, ["default"]);
    b.screenshot("models").await;

    // Sorting: a click on a header sorts on the server, a second reverses.
    b.js(
        "document.querySelector('button[data-sort=epochs]').click();",
        vec![],
    )
    .await;
    b.wait_ready("models", "location.search.includes('order=asc')")
        .await;
    assert_eq!(rows(b).await, ["gamma", "beta", "alpha", "delta"]);
    b.js(
        "document.querySelector('button[data-sort=epochs]').click();",
        vec![],
    )
    .await;
    b.wait_ready("models", "location.search.includes('order=desc')")
        .await;
    assert_eq!(rows(b).await, ["delta", "alpha", "beta", "gamma"]);
    let sorted = b.js("return document.querySelector('button[data-sort=epochs]').parentElement.getAttribute('aria-sort');", vec![]).await;
    assert_eq!(sorted, "descending");

    // The filter box: the where language, its error next to the box.
    let filter = b.client.find(fantoccini::Locator::Id("filter")).await.unwrap();
    filter.send_keys("epochs >= 3").await.unwrap();
    b.js(
        "document.querySelector('#filter-form button[type=submit]').click();",
        vec![],
    )
    .await;
    b.wait_ready("models", "location.search.includes('where=')").await;
    assert_eq!(
        rows(b).await,
        ["delta", "alpha"],
        "filtered, still sorted by epochs desc"
    );
    assert_eq!(b.texts("#filter-error").await, [""]);
    let filter = b.client.find(fantoccini::Locator::Id("filter")).await.unwrap();
    filter.clear().await.unwrap();
    filter.send_keys("epochs <").await.unwrap();
    b.js(
        "document.querySelector('#filter-form button[type=submit]').click();",
        vec![],
    )
    .await;
    b.wait_ready(
        "models",
        "document.getElementById('filter-error').textContent !== ''",
    )
    .await;
    assert_eq!(
        b.texts("#filter-error").await,
        ["where: column 9: expected a value after '<'"]
    );
    assert!(rows(b).await.is_empty());

    // Keyboard: rows take focus, arrows move, Space picks, Enter opens.
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait_ready("models", "true").await;
    b.js("document.querySelector('#models tbody tr').focus();", vec![])
        .await;
    let focused = b.client.active_element().await.unwrap();
    focused.send_keys(" ").await.unwrap();
    focused.send_keys("\u{E015}").await.unwrap(); // ArrowDown
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    let picked = b
        .js(
            "return [...document.querySelectorAll('#models tbody input:checked')].map(e => e.dataset.model);",
            vec![],
        )
        .await;
    assert_eq!(picked, json!(["alpha", "beta"]));
    b.js("document.getElementById('compare-button').click();", vec![])
        .await;
    b.wait_ready("compare", "true").await;
    let search = b.js("return location.pathname + location.search;", vec![]).await;
    assert_eq!(search, "/compare?project=default&models=alpha%2Cbeta");

    // Model: one chart per metric, drawn from the data it was sent.
    b.client.goto(&format!("{base}/model/beta")).await.unwrap();
    b.wait_ready("model", "true").await;
    let charts = b.js("return [...document.querySelectorAll('#charts .chart')].map(c => [c.dataset.metric, c.querySelectorAll('canvas').length]);", vec![]).await;
    assert_eq!(charts, json!([["loss", 1], ["val_acc", 1]]));
    let series = b.js("const s = window.mlmeta.series; return [s.loss.beta.epochs, s.loss.beta.values[0], Number.isNaN(s.loss.beta.values[1]), s.val_acc.beta.values];", vec![]).await;
    assert_eq!(
        series,
        json!([[1, 2], 2, true, [0.9, 0.9]]),
        "NaN reaches the chart as NaN (a gap)"
    );
    assert!(
        b.texts("#datablob-hyperparams td")
            .await
            .contains(&"50000".to_owned())
    );
    // The components' tags and descriptions.
    assert_eq!(b.texts("#datablob-tags td").await, ["source", "cifar-10"]);
    assert_eq!(b.texts("#template-tags td").await, ["family", "feedforward"]);
    assert_eq!(b.texts("#datablob-description").await, ["the cifar source"]);
    assert_eq!(b.texts("#template-description").await, ["the mlp family"]);
    let draw = b.js("return window.mlmeta.drawMs;", vec![]).await;
    assert!(draw.as_f64().is_some(), "{draw}");
    b.js("document.getElementById('log-scale').click();", vec![])
        .await;
    b.wait_for(
        "return document.querySelectorAll('#charts canvas').length === 2;",
        vec![],
    )
    .await;

    // Live: a RUNNING model's page appends epochs as they are committed.
    b.client.goto(&format!("{base}/model/alpha")).await.unwrap();
    b.wait_ready("model", "true").await;
    assert_eq!(b.texts("#model-status").await, ["RUNNING"]);
    let before = b
        .js("return window.mlmeta.series.loss.alpha.epochs;", vec![])
        .await;
    assert_eq!(before, json!([1, 2, 3]));
    // The events stream opens asynchronously: insert until one arrives.
    let mut epoch = 4;
    loop {
        calls::insert_epochs(
            &mut client,
            vec![records::epoch(
                "alpha",
                epoch,
                &[("loss", 0.125), ("val_acc", 0.95)],
            )],
        )
        .await;
        let arrived = b
            .js(
                "return window.mlmeta.liveEpoch === undefined ? null : window.mlmeta.liveEpoch;",
                vec![],
            )
            .await;
        if arrived != Value::Null {
            break;
        }
        assert!(epoch < 40, "no live epoch reached the page");
        epoch += 1;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    b.wait_for(&format!("return window.mlmeta.liveEpoch === {epoch};"), vec![])
        .await;
    let after = b
        .js(
            "return window.mlmeta.series.loss.alpha.epochs.slice(-1)[0];",
            vec![],
        )
        .await;
    assert_eq!(after, json!(epoch));
    b.screenshot("model").await;

    // Compare: the chosen models overlaid, params side by side.
    b.client
        .goto(&format!("{base}/compare?models=alpha,beta,gamma&metric=val_acc"))
        .await
        .unwrap();
    b.wait_ready("compare", "true").await;
    let overlay = b.js("return [document.querySelectorAll('#compare-chart canvas').length, Object.keys(window.mlmeta.series.val_acc).sort()];", vec![]).await;
    assert_eq!(overlay, json!([1, ["alpha", "beta"]]), "gamma has no val_acc");
    let legend = b.texts("#compare-chart .u-legend .u-series .u-label").await;
    assert_eq!(legend, ["epoch", "alpha", "beta"]);
    let differs = b
        .js(
            "return [...document.querySelectorAll('#compare-table tr.differs')].map(r => r.dataset.key);",
            vec![],
        )
        .await;
    let differs: Vec<String> = serde_json::from_value(differs).unwrap();
    for key in [
        "datablob",
        "template",
        "template.layers",
        "datablob.rows",
        "status",
        "epochs",
    ] {
        assert!(differs.contains(&key.to_owned()), "{key} differs: {differs:?}");
    }
    for key in ["template.lr", "datablob.augment"] {
        assert!(
            !differs.contains(&key.to_owned()),
            "{key} is the same: {differs:?}"
        );
    }
    b.screenshot("compare").await;

    // Phone width: nothing scrolls sideways but the table's own box.
    browser.resize(390, 844).await;
    let b = &browser;
    b.client.goto(&format!("{base}/?metrics=loss")).await.unwrap();
    b.wait_ready("models", "true").await;
    let fits = b
        .js(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await;
    assert_eq!(fits, true, "the page is no wider than a phone");
    b.screenshot("models-phone").await;
    browser.quit().await;
}

async fn the_login_form_takes_a_token(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let Some(server) = TestServer::with_http(backend, |config| config.auth_tokens = Some(tokens)).await
    else {
        return;
    };
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let b = &browser;
    let base = server.http_url();
    b.client.goto(&format!("{base}/compare")).await.unwrap();
    b.wait_for("return !!document.getElementById('login-form');", vec![])
        .await;
    let token = b.client.find(fantoccini::Locator::Id("token")).await.unwrap();
    token.send_keys("not-the-token").await.unwrap();
    b.js("document.getElementById('login-form').submit();", vec![])
        .await;
    b.wait_for("return !!document.getElementById('login-error');", vec![])
        .await;
    assert!(b.texts("#login-error").await[0].contains("not valid"));
    let token = b.client.find(fantoccini::Locator::Id("token")).await.unwrap();
    token.send_keys(READ_TOKEN).await.unwrap();
    b.js("document.getElementById('login-form').submit();", vec![])
        .await;
    // Back where the browser was going, now with the cookie.
    b.wait_ready("compare", "true").await;
    let at = b.js("return [location.pathname, document.cookie];", vec![]).await;
    assert_eq!(
        at,
        json!(["/compare", ""]),
        "the cookie is HttpOnly: scripts do not see it"
    );
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait_ready("models", "true").await;
    assert_eq!(b.texts("#project option").await, ["default"]);
    browser.quit().await;
}
