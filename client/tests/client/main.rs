//! Integration tests of mlmeta-client, one binary: each backend test runs
//! as `MODULE::sqlite::NAME` and `MODULE::postgres::NAME` against a fresh
//! in-process server (the `mlmeta-tests` harness); `restart::*` runs the
//! real `mlmeta-server` binary and kills it under a writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod artifacts;
mod errors;
mod listing;
mod restart;
mod runs;
mod security;
mod support;
mod writer;
mod writer_offline;
