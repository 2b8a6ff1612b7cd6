//! The commands of the one-machine runtime, as a library: `hookline up` and
//! its processes ([`up`], [`local`]), the reports and audits ([`status`],
//! [`verify`], [`dlq`]), shard migrations ([`migrate`]) and the sample
//! traffic ([`sample`]). The benchmarks (`hookline-bench`) run pipelines
//! with the same process and topic code.

pub mod dlq;
pub mod local;
pub mod migrate;
pub mod output;
pub mod sample;
pub mod scan;
pub mod status;
pub mod up;
pub mod verify;
