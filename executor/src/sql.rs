//! Small helpers for writing SQL text safely, shared with the coordinator.

pub use openduck_api::{quote_identifier, quote_literal};
