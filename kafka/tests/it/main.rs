//! hookline-kafka against real brokers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod produce;
#[path = "../support/mod.rs"]
mod support;
mod tls;
