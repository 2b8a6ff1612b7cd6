//! hookline-kafka against real brokers.

mod produce;
mod tls;
