//! Integration tests of the `mlmeta` binary, one test binary: each backend
//! test runs as `MODULE::sqlite::NAME` and `MODULE::postgres::NAME`, runs
//! the real `mlmeta` executable against a fresh in-process server (the
//! `mlmeta-tests` harness) and checks what it prints and how it exits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod add;
mod artifact;
mod columns;
mod delete;
mod export;
mod history;
mod import;
mod import_dir;
mod list;
mod offline;
mod ranking;
mod retry;
mod run;
mod scenario;
mod security;
mod show;
mod support;
mod tag;
mod watch;
mod where_flag;
