//! `mlmeta artifact add|list|upload|download|rm`.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    artifacts_are_added_listed_and_removed,
    bad_artifacts_and_conflicts_fail_with_the_reason,
    files_are_uploaded_and_downloaded_bit_for_bit,
}

const SHA: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

async fn artifacts_are_added_listed_and_removed(server: TestServer) {
    seed(&server).await;
    let add = [
        "artifact",
        "add",
        "m-cnn-mnist",
        "checkpoint",
        "--uri",
        "s3://models/m-cnn-mnist/epoch-2.pt",
        "--sha256",
        SHA,
        "--size",
        "48213990",
        "--media-type",
        "application/octet-stream",
    ];
    assert_eq!(
        mlmeta(&server).args(add).run().await.ok(),
        "stored artifact \"checkpoint\" of model \"m-cnn-mnist\"\n"
    );
    // Again: the same record (the digest is stored in lower case).
    let doc = mlmeta(&server).args(add).format("json").run().await.json();
    assert_eq!(doc["already_existed"], true);
    assert_eq!(doc["replaced"], false);
    assert_eq!(doc["model"], "m-cnn-mnist");
    assert_eq!(doc["artifact"]["sha256"], SHA.to_ascii_lowercase());
    mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "onnx",
            "--uri",
            "gs://exports/m-cnn-mnist.onnx",
        ])
        .run()
        .await
        .ok();

    let listed = mlmeta(&server)
        .args(["artifact", "list", "m-cnn-mnist"])
        .format("json")
        .run()
        .await
        .json();
    let created_at = listed[0]["created_at"].as_str().unwrap().to_owned();
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert_eq!(
        listed,
        json!([
            {
                "name": "checkpoint",
                "uri": "s3://models/m-cnn-mnist/epoch-2.pt",
                "sha256": SHA.to_ascii_lowercase(),
                "size_bytes": 48_213_990,
                "media_type": "application/octet-stream",
                "created_at": created_at,
                "content_stored": false,
            },
            {
                "name": "onnx",
                "uri": "gs://exports/m-cnn-mnist.onnx",
                "sha256": null,
                "size_bytes": null,
                "media_type": null,
                "created_at": listed[1]["created_at"],
                "content_stored": false,
            }
        ])
    );
    let table = mlmeta(&server)
        .args(["artifact", "list", "m-cnn-mnist"])
        .run()
        .await
        .ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("name        uri"), "{table}");
    assert!(lines[2].contains("48213990  application/octet-stream"), "{table}");
    let csv = mlmeta(&server)
        .args(["artifact", "list", "m-cnn-mnist"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(
        rows[0],
        ["name", "uri", "sha256", "size_bytes", "media_type", "created_at"]
    );
    assert_eq!(
        rows[2][..5],
        ["onnx", "gs://exports/m-cnn-mnist.onnx", "", "", ""]
    );

    // Overwrite replaces.
    let replaced = mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "onnx",
            "--uri",
            "https://example.com/m.onnx",
            "--overwrite",
        ])
        .run()
        .await
        .ok();
    assert_eq!(replaced, "replaced artifact \"onnx\" of model \"m-cnn-mnist\"\n");

    assert_eq!(
        mlmeta(&server)
            .args(["artifact", "rm", "m-cnn-mnist", "onnx"])
            .run()
            .await
            .ok(),
        "removed artifact \"onnx\" of model \"m-cnn-mnist\"\n"
    );
    let again = mlmeta(&server)
        .args(["artifact", "rm", "m-cnn-mnist", "onnx"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(
        again,
        json!({"model": "m-cnn-mnist", "artifact": "onnx", "deleted": false})
    );
    assert_eq!(
        mlmeta(&server)
            .args(["artifact", "list", "m-empty"])
            .run()
            .await
            .ok(),
        "model \"m-empty\" has no artifacts\n"
    );
    assert_eq!(
        mlmeta(&server)
            .args(["artifact", "list", "m-empty"])
            .format("json")
            .run()
            .await
            .json(),
        json!([])
    );
}

async fn bad_artifacts_and_conflicts_fail_with_the_reason(server: TestServer) {
    seed(&server).await;
    let add = |uri: &'static str| ["artifact", "add", "m-cnn-mnist", "ckpt", "--uri", uri];
    mlmeta(&server).args(add("s3://a/b")).run().await.ok();
    let error = mlmeta(&server).args(add("s3://a/c")).run().await.fails(1);
    assert!(
        error.contains("already exists with a different uri (stored \"s3://a/b\")")
            && error.contains("overwrite")
            && !error.contains("ignore-existing"),
        "{error}"
    );
    let error = mlmeta(&server).args(add("model.pt")).run().await.fails(1);
    assert!(
        error.contains("artifact.uri: must be a URI with a scheme"),
        "{error}"
    );
    let error = mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "x",
            "--uri",
            "s3://a",
            "--sha256",
            "abc",
        ])
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("artifact.sha256: must be 64 hexadecimal digits"),
        "{error}"
    );
    let error = mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "x",
            "--uri",
            "s3://a",
            "--size",
            "18446744073709551615",
        ])
        .run()
        .await
        .fails(1);
    assert!(error.contains("artifact.size_bytes: must be at most"), "{error}");
    let error = mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "x",
            "--uri",
            "s3://a",
            "--media-type",
            "pt",
        ])
        .run()
        .await
        .fails(1);
    assert!(error.contains("artifact.media_type: "), "{error}");
    // A negative size is refused by the command line itself.
    let run = mlmeta(&server)
        .args([
            "artifact",
            "add",
            "m-cnn-mnist",
            "x",
            "--uri",
            "s3://a",
            "--size",
            "-1",
        ])
        .run()
        .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    // Unknown models exit with status 2.
    for args in [
        vec!["artifact", "add", "nope", "x", "--uri", "s3://a"],
        vec!["artifact", "list", "nope"],
        vec!["artifact", "rm", "nope", "x"],
    ] {
        let error = mlmeta(&server).args(&args).run().await.fails(2);
        assert!(
            error.contains("model \"nope\" does not exist"),
            "{args:?}: {error}"
        );
    }
    // Artifacts live in their project.
    let error = mlmeta(&server)
        .args(["--project", "vision", "artifact", "list", "m-cnn-mnist"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("model \"m-cnn-mnist\" does not exist"), "{error}");
}

async fn files_are_uploaded_and_downloaded_bit_for_bit(server: TestServer) {
    seed(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("epoch-2.pt");
    // 2.5 MiB of varied bytes: more than two upload chunks.
    let bytes: Vec<u8> = (0..(5 << 19))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&original, &bytes).unwrap();
    let path = original.to_str().unwrap();
    let upload = ["artifact", "upload", "m-cnn-mnist", "ckpt", "--file", path];
    let said = mlmeta(&server).args(upload).run().await.ok();
    assert!(
        said.starts_with(&format!(
            "uploaded artifact \"ckpt\" of model \"m-cnn-mnist\": {} bytes, sha256 ",
            bytes.len()
        )),
        "{said}"
    );
    let doc = mlmeta(&server)
        .args([
            "artifact",
            "upload",
            "m-cnn-mnist",
            "copy",
            "--file",
            path,
            "--media-type",
            "Application/Octet-Stream",
        ])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc["content_existed"], true);
    assert_eq!(doc["artifact"]["content_stored"], true);
    assert_eq!(doc["artifact"]["media_type"], "application/octet-stream");
    let sha = doc["artifact"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(doc["artifact"]["uri"], format!("mlmeta:sha256:{sha}"));

    let restored = dir.path().join("restored.pt");
    let to = restored.to_str().unwrap();
    let said = mlmeta(&server)
        .args(["artifact", "download", "m-cnn-mnist", "ckpt", "--to", to])
        .run()
        .await
        .ok();
    assert!(said.contains("sha256 verified"), "{said}");
    assert!(
        std::fs::read(&restored).unwrap() == bytes,
        "different bytes came back"
    );
    // Nothing but the file itself is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["epoch-2.pt", "restored.pt"]);

    // Errors: a different file under the name, a reference without content,
    // a missing local file, an unknown model.
    let other = dir.path().join("other.pt");
    std::fs::write(&other, b"other").unwrap();
    let error = mlmeta(&server)
        .args([
            "artifact",
            "upload",
            "m-cnn-mnist",
            "ckpt",
            "--file",
            other.to_str().unwrap(),
        ])
        .run()
        .await
        .fails(1);
    assert!(error.contains("already exists"), "{error}");
    mlmeta(&server)
        .args(["artifact", "add", "m-cnn-mnist", "ref", "--uri", "s3://b/k"])
        .run()
        .await
        .ok();
    let error = mlmeta(&server)
        .args(["artifact", "download", "m-cnn-mnist", "ref", "--to", to])
        .run()
        .await
        .fails(2);
    assert!(error.contains("no content"), "{error}");
    assert!(
        std::fs::read(&restored).unwrap() == bytes,
        "a failed download touched the file"
    );
    let error = mlmeta(&server)
        .args([
            "artifact",
            "upload",
            "m-cnn-mnist",
            "x",
            "--file",
            "/nonexistent/file",
        ])
        .run()
        .await
        .fails(1);
    assert!(error.contains("/nonexistent/file"), "{error}");
    let error = mlmeta(&server)
        .args(["artifact", "upload", "ghost", "x", "--file", path])
        .run()
        .await
        .fails(2);
    assert!(error.contains("ghost"), "{error}");
}
