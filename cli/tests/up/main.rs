//! `hookline up` as a user runs it: the example manifest (its topics renamed
//! for the test), a secrets folder, the stack's broker and PostgreSQL; signed
//! webhooks in, with provider retries and invalid ones among them, rows out; a
//! worker killed and started again at once; a changed manifest applied or
//! refused as the operator would; Ctrl-C stops everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod changes;
mod example;
mod pipeline;
mod restart;
mod support;
