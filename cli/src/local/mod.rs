//! Running a pipeline on one machine: its topics, and its ingest and worker
//! processes, from the same manifest and secrets layout a cluster uses.

pub mod assignment;
pub mod processes;
pub mod topics;
