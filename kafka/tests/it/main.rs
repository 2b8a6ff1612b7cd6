//! hookline-kafka against real brokers.

mod tls;
