//! hookline's ingest service: authenticates and validates provider webhooks and
//! produces each one to Kafka, keyed by user id.
//!
//! The HTTP service lands with its own issue; the contract it will follow (routes,
//! answers, envelope) is in `hookline-contract` and the design document.
