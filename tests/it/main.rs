//! Cross-service integration tests: the real broker and PostgreSQL over TCP,
//! brought up by `scripts/stack up`. A test that cannot reach them fails with the
//! address it tried; none passes by skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka;
mod kafka_smoke;
