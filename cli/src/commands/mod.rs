//! One file per command group; each command is: build the request from
//! its arguments, make the client call(s), return what to print.

mod add;
mod artifact;
mod best;
mod current_epoch;
mod delete;
mod history;
mod import_dir;
mod leaderboard;
mod list;
mod ranking;
mod run;
mod show;
mod tag;
mod transfer;
mod watch;

use std::io::Write as _;
use std::time::Duration;

use mlmeta_client::{Client, RetryPolicy};

use crate::args::{Cli, Command};
use crate::error::CliError;
use crate::output::Render;

/// Time to wait for the connection: the server is local or near, and a
/// person is waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Retries for `secs` seconds in all; none for 0.
fn retry_policy(secs: u64) -> RetryPolicy {
    if secs == 0 {
        RetryPolicy::none()
    } else {
        RetryPolicy::for_duration(Duration::from_secs(secs))
    }
}

/// Runs the command `cli` names against its server.
pub async fn run(cli: &Cli) -> Result<Box<dyn Render>, CliError> {
    let mut builder = Client::builder(&cli.server)
        .connect_timeout(CONNECT_TIMEOUT)
        .retry(retry_policy(cli.retry_secs))
        .project(&cli.project);
    if cli.retry_secs > 0 {
        let (server, secs) = (cli.server.clone(), cli.retry_secs);
        builder = builder.on_retry(move |error, retry, _delay| {
            // Once per call that waits, so a person sees why nothing happens.
            if retry == 0 {
                let line = error.to_string().replace(['\n', '\r'], " ");
                let _ = writeln!(
                    std::io::stderr(),
                    "mlmeta: the server at {server} is not available ({line}); retrying for up to {secs} s (--retry-secs)"
                );
            }
        });
    }
    if let Some(token) = &cli.token {
        builder = builder.token(token);
    }
    if let Some(ca) = &cli.ca_cert {
        builder = builder.ca_certificate_file(ca);
    }
    if let (Some(cert), Some(key)) = (&cli.client_cert, &cli.client_key) {
        builder = builder.identity_files(cert, key);
    }
    // Lazily: a server that is not up yet is retried like any other
    // unavailable one.
    let client = builder.connect_lazy()?;
    match &cli.command {
        Command::Best(args) => best::run(&client, args).await,
        Command::Leaderboard(args) => leaderboard::run(&client, args).await,
        Command::List(list) => list::run(&client, list).await,
        Command::CurrentEpoch(args) => current_epoch::run(&client, args).await,
        Command::History(args) => history::run(&client, args).await,
        Command::Add(add) => add::run(&client, add).await,
        Command::Tag(args) => tag::tag(&client, args).await,
        Command::Untag(args) => tag::untag(&client, args).await,
        Command::Describe(args) => tag::describe(&client, args).await,
        Command::Run(command) => run::run(&client, command).await,
        Command::Artifact(command) => artifact::run(&client, command).await,
        Command::Show(command) => show::run(&client, command).await,
        Command::Watch(args) => {
            watch::run(&client, args, cli.format).await?;
            Ok(Box::new(crate::output::Nothing))
        }
        Command::Delete(command) => delete::delete(&client, command).await,
        Command::Restore(command) => delete::restore(&client, command).await,
        Command::Purge(args) => delete::purge(&client, args).await,
        Command::ImportDir(args) => import_dir::run(&client, args).await,
        Command::Export(args) => transfer::export(&client, args).await,
        Command::Import(args) => transfer::import(&client, args).await,
    }
}
