//! Cross-service integration tests live in `it/`; this crate has no library code.
