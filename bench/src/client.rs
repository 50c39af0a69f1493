//! Connections to the server under test.

use std::time::Duration;

use mlmeta_proto::metadata_service_client::MetadataServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::BenchResult;

/// A client of the metadata service over one HTTP/2 connection (clones
/// share the connection).
pub type Client = MetadataServiceClient<Channel>;

/// Largest message the client sends or accepts (the server's limit).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Deadline of every call, so a stuck server fails the run instead of
/// hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Opens a new connection to `url` (`http://HOST:PORT`).
pub async fn connect(url: &str) -> BenchResult<Client> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    Ok(MetadataServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}
