//! Integration tests: a real server on port 0 with a real DuckDB, driven by
//! arrow-flight's clients. One test binary; each area is a module.

mod fixture;

mod auth;
mod cancel;
mod errors;
mod fuzz;
mod metadata;
mod prepared;
mod queries;
mod sessions;
mod streams;
mod types;
