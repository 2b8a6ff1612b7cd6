//! Integration tests of the operator: the rdkafka admin implementation against
//! the real broker of the stack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_broker;
