//! Raw protobuf bytes over gRPC, for what prost cannot express.
//!
//! prost leaves out every proto3 `double` equal to `0.0` when encoding,
//! and `-0.0 == 0.0`, so a prost client can neither send nor receive
//! `-0.0`. These helpers send hand-encoded requests and return the raw
//! response bytes, so a test can see exactly what the server stores and
//! sends.

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A codec whose messages are already-encoded protobuf bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// Calls `mlmeta.v1.MetadataService/<method>` with `body` as the encoded
/// request; returns the encoded response.
pub async fn unary(channel: Channel, method: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let path = PathAndQuery::try_from(format!("/mlmeta.v1.MetadataService/{method}"))
        .map_err(|e| Status::internal(e.to_string()))?;
    grpc.unary(Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Calls `method` with `request` encoded by prost, decoding the response
/// with prost (decoding keeps an explicitly encoded `-0.0`).
pub async fn call<Req: Message, Resp: Message + Default>(
    channel: Channel,
    method: &str,
    request: &Req,
) -> Result<Resp, Status> {
    let bytes = unary(channel, method, request.encode_to_vec()).await?;
    Resp::decode(bytes.as_slice()).map_err(|e| Status::internal(format!("undecodable response: {e}")))
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn length_delimited(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One `map<string, double>` entry with its value always encoded (field
/// number `field` of the enclosing message).
pub fn map_entry(field: u32, key: &str, value: f64) -> Vec<u8> {
    let mut entry = Vec::new();
    length_delimited(&mut entry, 1, key.as_bytes());
    varint(&mut entry, 2 << 3 | 1); // field 2, fixed64
    entry.extend_from_slice(&value.to_bits().to_le_bytes());
    let mut out = Vec::new();
    length_delimited(&mut out, field, &entry);
    out
}

/// An encoded `InsertEpochsRequest` of `epochs`, each followed by extra
/// metrics whose values are always encoded (even `-0.0`).
pub fn insert_epochs_request(epochs: &[(mlmeta_proto::Epoch, Vec<(&str, f64)>)]) -> Vec<u8> {
    let mut request = Vec::new();
    for (epoch, extra) in epochs {
        let mut bytes = epoch.encode_to_vec();
        for (key, value) in extra {
            bytes.extend(map_entry(3, key, *value)); // Epoch.metrics = 3
        }
        length_delimited(&mut request, 1, &bytes); // InsertEpochsRequest.epochs = 1
    }
    request
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mlmeta_proto::Epoch;
    use prost::Message;

    #[test]
    fn explicit_negative_zero_decodes_as_negative_zero() {
        let epoch = Epoch {
            model_name: "m".to_owned(),
            ..Epoch::default()
        };
        let bytes = super::insert_epochs_request(&[(epoch, vec![("z", -0.0), ("one", 1.0)])]);
        let decoded = mlmeta_proto::InsertEpochsRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.epochs[0].metrics["z"].to_bits(), (-0.0_f64).to_bits());
        assert_eq!(decoded.epochs[0].metrics["one"], 1.0);
    }

    /// Why this module exists: if this starts failing, prost encodes
    /// `-0.0` and plain clients can test it.
    #[test]
    fn prost_drops_negative_zero() {
        let epoch = Epoch {
            metrics: BTreeMap::from([("z".to_owned(), -0.0)]),
            ..Epoch::default()
        };
        let decoded = Epoch::decode(epoch.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.metrics["z"].to_bits(), 0.0_f64.to_bits());
    }
}
