//! A pretend trainer: registers its dataset, architecture and model, then
//! "trains" for a number of epochs, logging each epoch's metrics through an
//! `EpochWriter`, and finally asks for the best model so far.
//!
//! It resumes where a previous run of the same model stopped (the server
//! knows the last stored epoch), so running it twice continues the run.
//!
//! ```sh
//! cargo run -p mlmeta-server &                       # a server on 127.0.0.1:50051
//! cargo run -p mlmeta-client --example trainer       # 200 epochs of model "demo-run"
//! cargo run -p mlmeta-client --example trainer -- http://127.0.0.1:50051 demo-run 500
//! ```

use std::error::Error;
use std::time::Duration;

use mlmeta_client::{Client, DataBlob, Direction, Model, ModelFilter, ModelTemplate, RetryPolicy};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let model_name = args.next().unwrap_or_else(|| "demo-run".to_owned());
    let epochs: i64 = args.next().map_or(Ok(200), |n| n.parse())?;

    // Set-up calls retry for a while, in case the server is still starting.
    let client = Client::builder(&url)
        .retry(RetryPolicy::for_duration(Duration::from_secs(30)))
        .connect_lazy()?;
    client
        .put_datablob(
            &DataBlob::new("mnist", "images", json!({"rows": 60000, "scale": 1.0 / 255.0})),
            true,
        )
        .await?;
    client
        .put_model_template(
            &ModelTemplate::new("mlp-2x128", "mlp", json!({"layers": [128, 128], "dropout": 0.1})),
            true,
        )
        .await?;
    client
        .put_model(&Model::new(&model_name, "Mlp", "mnist", "mlp-2x128"), true)
        .await?;

    let first = next_epoch(&client, &model_name).await?;
    println!(
        "training {model_name} from epoch {first} to {}",
        first + epochs - 1
    );

    let writer = client.epoch_writer(&model_name)?;
    for epoch in first..first + epochs {
        let (loss, accuracy) = train_one_epoch(epoch);
        writer
            .log(
                epoch,
                [
                    ("loss", loss),
                    ("accuracy", accuracy),
                    ("val_loss", loss * 1.1),
                    ("val_accuracy", accuracy * 0.98),
                ],
            )
            .await?;
    }
    let counts = writer.close().await?;
    println!(
        "stored {} epochs ({} already there)",
        counts.inserted, counts.skipped
    );

    let best = client
        .best_model("val_accuracy", Direction::Max, &ModelFilter::default())
        .await?;
    println!(
        "best model by val_accuracy: {} (epoch {}, {:.4})",
        best.model.name, best.best_epoch.epoch_num, best.metric_value
    );
    Ok(())
}

/// The epoch to resume from: one after the last stored. The server's
/// current epoch is 0 both with no epochs and with only epoch 0 stored,
/// so 0 needs a look at epoch 0.
async fn next_epoch(client: &Client, model_name: &str) -> mlmeta_client::Result<i64> {
    let current = client.current_epoch(model_name).await?;
    if current.epoch_num > 0 {
        return Ok(current.epoch_num + 1);
    }
    let epoch_zero = mlmeta_client::EpochFilter::models([model_name]).max_epoch_num(0);
    Ok(if client.list_epochs(&epoch_zero).await?.is_empty() {
        0
    } else {
        1
    })
}

/// Pretends to train: a little work, then a loss that falls and an
/// accuracy that rises.
fn train_one_epoch(epoch: i64) -> (f64, f64) {
    std::thread::sleep(Duration::from_millis(2));
    let t = epoch as f64;
    let loss = 2.0 / (1.0 + 0.05 * t) + 0.01 * (t * 0.7).sin().abs();
    let accuracy = 1.0 - 0.9 / (1.0 + 0.04 * t);
    (loss, accuracy)
}
