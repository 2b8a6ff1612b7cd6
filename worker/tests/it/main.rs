//! Integration tests of the worker against a real PostgreSQL and the real
//! broker, with the `hookline-worker` binary run as a process.
//!
//! Each test creates its own databases and topic, so tests run in parallel
//! without seeing each other. The services come from `scripts/stack up`; a test
//! that cannot reach them fails with the address it tried.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accepted;
mod declared;
mod failures;
mod fixtures;
mod flow;
mod limits;
mod migrations;
mod pinned;
mod pipeline;
mod poison;
mod store_disputes;
mod store_orders;
mod support;
mod tls;
mod workers;
