//! Integration tests of the worker against a real PostgreSQL.
//!
//! Each test creates its own database, so tests run in parallel without seeing
//! each other. PostgreSQL comes from `scripts/stack up`; a test that cannot reach
//! it fails with the address it tried.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod migrations;
mod store_disputes;
mod store_orders;
mod support;
