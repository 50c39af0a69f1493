//! Raw protobuf bytes over gRPC, for what prost cannot express.
//!
//! prost leaves out every proto3 `double` equal to `0.0` when encoding,
//! and `-0.0 == 0.0`, so a prost client can neither send nor receive
//! `-0.0`. These helpers send hand-encoded requests and return the raw
//! response bytes, so a test can see exactly what the server stores and
//! sends. [`stalled`] sends a request whose body stops after a message's
//! length prefix, as a slow or hostile client would.

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

/// Calls `mlmeta.v1.MetadataService/<method>` with a request body that
/// announces one message of `announced` bytes, sends its 5-byte prefix and
/// then nothing, ever. Resolves with the server's status when the server
/// answers without waiting for the rest (it never succeeds).
pub async fn stalled(mut channel: Channel, method: &str, announced: u32) -> Status {
    use tonic::codegen::{Service as _, http};

    let mut prefix = vec![0_u8];
    prefix.extend_from_slice(&announced.to_be_bytes());
    let body = StalledBody {
        first: Some(bytes::Bytes::from(prefix)),
    };
    let mut request = http::Request::new(tonic::body::Body::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = match format!("/mlmeta.v1.MetadataService/{method}").parse() {
        Ok(uri) => uri,
        Err(error) => return Status::internal(format!("bad method {method:?}: {error}")),
    };
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    if let Err(error) = futures::future::poll_fn(|cx| channel.poll_ready(cx)).await {
        return Status::unavailable(format!("channel not ready: {error}"));
    }
    let response = match channel.call(request).await {
        Ok(response) => response,
        Err(error) => return Status::unavailable(format!("call failed: {error}")),
    };
    let (parts, mut body) = response.into_parts();
    if let Some(status) = Status::from_header_map(&parts.headers) {
        return status;
    }
    loop {
        match futures::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx))
            .await
        {
            Some(Ok(frame)) => {
                if let Some(status) = frame.trailers_ref().and_then(Status::from_header_map) {
                    return status;
                }
            }
            Some(Err(status)) => return status,
            None => return Status::internal("the answer ended without a grpc-status"),
        }
    }
}

/// A request body that sends `first` and then never anything more (nor
/// its end).
struct StalledBody {
    first: Option<bytes::Bytes>,
}

impl http_body::Body for StalledBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.first.take() {
            Some(bytes) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes)))),
            // Never woken: the call is dropped by whoever made it.
            None => std::task::Poll::Pending,
        }
    }
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
