//! Integration tests of the ingest service: real HTTP on 127.0.0.1, the real
//! broker over TCP (the stack's, or one a test starts and stops itself).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod answers;
mod broker;
mod config;
mod fuzz;
mod harness;
mod outage;
mod placement;
mod reload;
mod sources;
