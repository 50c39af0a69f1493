//! gRPC reflection in its older version, `grpc.reflection.v1alpha`, which
//! is all that Python's grpcio-reflection, grpc_cli and older grpcurl
//! speak: listing the services and fetching the file that defines
//! `mlmeta.v1.MetadataService`, with the same token rules as `v1` (see
//! `security.rs`).

use futures::StreamExt as _;
use mlmeta_tests::calls::expect_status;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};
use prost::Message as _;
use tonic::Code;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

use crate::security::{READ_TOKEN, server_with_tokens, tokens_file, with_token};

backend_tests_with_setup! {
    v1alpha_lists_the_services_and_serves_their_files,
}

const SERVICE: &str = "mlmeta.v1.MetadataService";

fn request(message: MessageRequest) -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    }
}

/// The two questions a reflection client asks first: which services, and
/// which file defines the one it wants.
fn questions() -> Vec<ServerReflectionRequest> {
    vec![
        request(MessageRequest::ListServices(String::new())),
        request(MessageRequest::FileContainingSymbol(SERVICE.to_owned())),
    ]
}

/// Checks the answers to [`questions`].
fn check_answers(answers: &[ServerReflectionResponse]) {
    let [listed, file] = answers else {
        panic!("expected two answers, got {answers:?}");
    };
    let Some(MessageResponse::ListServicesResponse(list)) = &listed.message_response else {
        panic!("expected a list of services, got {listed:?}");
    };
    let services: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&expected), "{expected} not in {services:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) = &file.message_response else {
        panic!("expected the file of {SERVICE}, got {file:?}");
    };
    let defining: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .filter(|file| {
            file.package() == "mlmeta.v1" && file.service.iter().any(|s| s.name() == "MetadataService")
        })
        .collect();
    let [defining] = defining.as_slice() else {
        panic!("expected one file defining {SERVICE}, got {defining:?}");
    };
    let service = defining
        .service
        .iter()
        .find(|s| s.name() == "MetadataService")
        .unwrap();
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    for expected in ["PutDataBlob", "InsertEpochs", "StreamEpochs", "GetLeaderboard"] {
        assert!(methods.contains(&expected), "{expected} not in {methods:?}");
    }
}

async fn v1alpha_lists_the_services_and_serves_their_files(backend: Backend) {
    // A server that asks for no token answers anyone.
    let Some(open) = TestServer::with(backend, |_| {}, None).await else {
        return;
    };
    let mut reflection = ServerReflectionClient::new(open.channel());
    let answers: Vec<_> = reflection
        .server_reflection_info(futures::stream::iter(questions()))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    check_answers(&answers);
    drop(open);

    // With tokens, v1alpha needs a read token, as v1 does.
    let (_dir, tokens) = tokens_file();
    let Some(server) = server_with_tokens(backend, &tokens).await else {
        return;
    };
    let mut reflection = ServerReflectionClient::new(server.channel());
    let refused = reflection
        .server_reflection_info(futures::stream::iter(questions()))
        .await;
    expect_status(refused, Code::Unauthenticated, &["token"]);
    let request = with_token(futures::stream::iter(questions()), READ_TOKEN);
    let answers: Vec<_> = reflection
        .server_reflection_info(request)
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    check_answers(&answers);
}
