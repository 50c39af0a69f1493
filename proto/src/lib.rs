//! The `mlmeta.v1` protobuf API: messages and tonic client/server code
//! generated from `proto/mlmeta/v1/mlmeta.proto`, and the encoded file
//! descriptor set that the server offers through gRPC reflection.

/// Generated code of package `mlmeta.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("mlmeta.v1");
}

/// Encoded `FileDescriptorSet` of the API (with its imports), for gRPC
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mlmeta_descriptor");

pub use v1::*;

pub mod filter;
pub mod json;
pub mod rules;
pub mod where_lang;
