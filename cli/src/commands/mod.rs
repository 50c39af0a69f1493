//! One file per command group; each command is: build the request from
//! its arguments, make the client call(s), return what to print.

mod add;
mod best;
mod current_epoch;
mod leaderboard;
mod list;
mod ranking;

use std::time::Duration;

use mlmeta_client::Client;

use crate::args::{Cli, Command};
use crate::error::CliError;
use crate::output::Render;

/// Time to wait for the connection: the server is local or near, and a
/// person is waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the command `cli` names against its server.
pub async fn run(cli: &Cli) -> Result<Box<dyn Render>, CliError> {
    let mut builder = Client::builder(&cli.server).connect_timeout(CONNECT_TIMEOUT);
    if let Some(token) = &cli.token {
        builder = builder.token(token);
    }
    if let Some(ca) = &cli.ca_cert {
        builder = builder.ca_certificate_file(ca);
    }
    if let (Some(cert), Some(key)) = (&cli.client_cert, &cli.client_key) {
        builder = builder.identity_files(cert, key);
    }
    let client = builder.connect().await?;
    match &cli.command {
        Command::Best(args) => best::run(&client, args).await,
        Command::Leaderboard(args) => leaderboard::run(&client, args).await,
        Command::List(list) => list::run(&client, list).await,
        Command::CurrentEpoch(args) => current_epoch::run(&client, args).await,
        Command::Add(add) => add::run(&client, add).await,
    }
}
