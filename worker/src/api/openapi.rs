//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, KnownFormat, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::audit::{AuditPage, AuditRecord, Decision};
use super::models::{
    Accepted, AccountView, ConversionView, CreateAccount, CreatePayee, CreateSchedule, EntryView,
    HistoryView, OccurrenceView, PayeePage, PayeeView, Readiness, SchedulePage, ScheduleView,
    TransactionBody, TransactionStatus,
};
use super::problem::Problem;
use super::reviews::{ReviewDecision, ReviewPage, ReviewView};

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
        super::bills::create_payee,
        super::bills::list_payees,
        super::bills::delete_payee,
        super::bills::create_schedule,
        super::bills::list_schedules,
        super::bills::get_schedule,
        super::bills::cancel_schedule,
        super::reviews::list_reviews,
        super::reviews::get_review,
        super::reviews::approve,
        super::reviews::reject,
        super::healthz,
        super::readyz,
        super::metrics,
        super::openapi_json,
    ),
    components(schemas(
        Accepted, AccountView, AuditPage, AuditRecord, ConversionView, CreateAccount, Decision,
        EntryView, HistoryView, Problem, Readiness, ReviewDecision, ReviewPage, ReviewView,
        TransactionBody, TransactionStatus, CreatePayee, PayeeView, PayeePage, CreateSchedule, ScheduleView, SchedulePage,
        OccurrenceView,
    )),
    modifiers(&BearerAuth, &Conformance),
    tags(
        (name = "transactions", description = "Transaction ingest and status"),
        (name = "accounts", description = "Accounts, balances and history"),
        (name = "audit", description = "Audit records of money requests (operators)"),
        (name = "bills", description = "Payees and scheduled bill payments"),
        (name = "reviews", description = "Transactions held by the risk rules (operators)"),
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

/// An account number as every path and body carries it.
pub const ACCOUNT_ID_PATTERN: &str = "^[0-9]{10,12}$";
/// An ISO 4217 code's shape (the code must also be a known currency).
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// An `Idempotency-Key`: 1-128 printable ASCII characters. HTTP strips spaces around a header
/// value, so the pattern does not let the key start or end with one.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,126}[!-~])?$";

/// What the document must say for a client (or a conformance checker) to trust it: every status
/// an operation can answer and the exact shape of its parameters.
///
/// The statuses below come from layers every `/v1` operation shares (authentication and rate
/// limiting, the body reader, AWS calls), so they are added here, by rule, instead of being
/// repeated (and forgotten) in each handler's annotation.
struct Conformance;

impl Modify for Conformance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                if path.starts_with("/v1/") {
                    conform_v1(path, operation);
                }
            }
        }
    }
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            super::problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn conform_v1(path: &str, operation: &mut Operation) {
    let mut statuses: Vec<(&str, &str)> = vec![
        ("401", "Missing or invalid token"),
        ("403", "Missing scope"),
        ("429", "Rate limited; retry after `Retry-After` seconds"),
        (
            "503",
            "AWS unavailable or throttling; retry after `Retry-After` seconds",
        ),
    ];
    if operation.request_body.is_some() {
        statuses.extend([
            ("400", "Validation failed or malformed JSON"),
            ("413", "Body too large"),
            ("415", "Content-Type is not application/json"),
        ]);
    }
    if path.contains("{id}") {
        statuses.extend([("400", "Malformed id"), ("404", "No such resource")]);
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let string = ObjectBuilder::new().schema_type(Type::String);
        let schema = match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Path, "id") if path.starts_with("/v1/accounts/") => {
                string.pattern(Some(ACCOUNT_ID_PATTERN))
            }
            (ParameterIn::Path, "id")
                if path.starts_with("/v1/transactions/") || path.starts_with("/v1/reviews/") =>
            {
                string.format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            }
            (ParameterIn::Header, "Idempotency-Key") => string
                .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
                .min_length(Some(1))
                .max_length(Some(128)),
            _ => continue,
        };
        parameter.schema = Some(schema.build().into());
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
