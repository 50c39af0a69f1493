//! mlmeta's API integration tests, one binary: each backend test runs as
//! `MODULE::sqlite::NAME` and `MODULE::postgres::NAME` against a fresh
//! in-process server; `binary::*` runs the real `mlmeta-server` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod artifact_content;
mod artifacts;
mod backup;
mod best;
mod binary;
mod browser;
mod bruteforce;
mod bulk;
mod columns;
mod concurrency;
mod delete;
mod epochs;
mod floats;
mod fuzz;
mod health;
mod hostile;
mod http;
mod hyperparams;
mod injection;
mod leaderboard;
mod limits;
mod list;
mod metrics;
mod model_detail;
mod page_figures;
mod pagination;
mod params;
mod projects;
mod put;
mod reflection;
mod replicas;
mod runs;
mod security;
mod sockets;
mod sorting;
mod storage;
mod stream;
mod tags;
mod transfer;
mod validation;
mod watch;
mod web_api;
mod where_filter;
mod write_epochs;
