//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::audit::{AuditPage, AuditRecord, Decision};
use super::models::{
    Accepted, AccountView, CreateAccount, EntryView, HistoryView, Readiness, TransactionBody,
    TransactionStatus,
};
use super::problem::Problem;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ballast ingest and accounts API",
        description = "Submit banking transactions for asynchronous, exactly-once processing \
            and manage accounts. Errors are RFC 9457 problem details with a stable `code`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        super::ingest::submit_transaction,
        super::ingest::get_transaction,
        super::accounts::create_account,
        super::accounts::get_account,
        super::accounts::close_account,
        super::accounts::account_history,
        super::audit::list_audit,
        super::healthz,
        super::readyz,
        super::metrics,
        super::openapi_json,
    ),
    components(schemas(
        Accepted, AccountView, AuditPage, AuditRecord, CreateAccount, Decision, EntryView,
        HistoryView, Problem, Readiness, TransactionBody, TransactionStatus,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "transactions", description = "Transaction ingest and status"),
        (name = "accounts", description = "Accounts, balances and history"),
        (name = "audit", description = "Audit records of money requests (operators)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "JWT (HS256, RS256 or ES256) with `sub`, `exp` and a space-separated \
                         `scope` claim: accounts:read, accounts:write, transactions:read, \
                         transactions:write",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON with a trailing newline (the committed `worker/openapi.json`).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // The crate version would make the committed copy churn on every release bump.
    doc.info.version = "1".into();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}
