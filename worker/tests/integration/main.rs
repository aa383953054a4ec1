//! The worker's integration tests, one module per former test file, linked into one binary
//! (one link of the AWS SDK, one moto server for all of them), the test target
//! `worker_integration`: `cargo test --workspace --test worker_integration <module>::` runs one
//! module.
mod api_auth_moto;
mod api_moto;
mod api_openapi;
mod api_schemathesis;
mod bills_moto;
mod cli_terminal;
mod common;
mod consume_mocks;
mod consume_moto;
mod dlq_moto;
mod dlq_ops_moto;
mod dlq_rescue_moto;
mod fx_moto;
mod ingest_moto;
mod ledger_moto;
mod proptest_transaction;
mod risk_moto;
mod stall;
