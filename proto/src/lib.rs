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

/// `From` both ways between two messages with the same fields (the
/// compiler checks the list is complete: no `..` in the literals).
macro_rules! same_fields {
    ($a:ident <-> $b:ident { $($field:ident),* $(,)? }) => {
        impl From<$a> for $b {
            fn from(x: $a) -> Self {
                Self { $($field: x.$field),* }
            }
        }
        impl From<$b> for $a {
            fn from(x: $b) -> Self {
                Self { $($field: x.$field),* }
            }
        }
    };
}

// "Same shape as DataBlob": code that treats both alike (export, import)
// converts one into the other instead of repeating the field list.
same_fields!(DataBlob <-> ModelTemplate {
    name,
    group_name,
    hyperparams_json,
    created_at,
    last_modified_at,
    project,
    tags,
    description,
    deleted_at,
});

pub mod filter;
pub mod json;
pub mod rules;
pub mod where_lang;
