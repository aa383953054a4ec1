//! The committed `worker/openapi.json` is exactly the document generated from the code.
//! Regenerate with `BALLAST_UPDATE_OPENAPI=1 cargo test --workspace --test worker_integration api_openapi::`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::Path;

#[test]
fn committed_openapi_matches_the_code() {
    let generated = ballast_worker::api::openapi::document();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("BALLAST_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with \
         `BALLAST_UPDATE_OPENAPI=1 cargo test --workspace --test worker_integration api_openapi::`",
        path.display()
    );
}

#[test]
fn document_covers_every_route_and_the_bearer_scheme() {
    let doc: serde_json::Value =
        serde_json::from_str(&ballast_worker::api::openapi::document()).unwrap();
    for path in [
        "/v1/transactions",
        "/v1/transactions/{id}",
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/transactions",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
