//! The audits and the DLQ tools against the stack's broker and PostgreSQL:
//! `hookline dlq replay` for one reason and then another, with nothing
//! stranded and nothing stored twice; `hookline verify` telling stored,
//! dead-lettered, missing and lag apart, checking the latest state by the
//! design's order, and exiting 0, 1 or 2. Every test has its own topics and
//! databases, and runs the real `hookline` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dlq;
mod fixture;
mod verify;

// `hookline up` as the `up` tests run it, for the tests that need real
// workers behind the tools; not every helper there is used here.
#[allow(dead_code)]
#[path = "../up/pipeline.rs"]
mod pipeline;
#[allow(dead_code)]
#[path = "../up/support.rs"]
mod support;
