//! Bill-payment endpoints: the caller's payees and their payment schedules (see
//! [`crate::bills`] and docs/bill-payments.md).
//!
//! Every payee and schedule is stored under its owner's `sub` ([`crate::store::bills`]), so a
//! principal only ever finds its own: another's id is answered exactly like an unknown one
//! (404). Operators get no view into others' bills here either.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::ApiState;
use super::authorize::account_of;
use super::body::StrictJson;
use super::extract::{Authorized, TransactionsRead, TransactionsWrite};
use super::models::{
    BillsPageQuery, CreatePayee, CreateSchedule, PayeePage, PayeeView, SchedulePage, ScheduleView,
};
use super::paging::key_page;
use super::problem::{ApiError, Problem};
use crate::bills::{
    MAX_COUNT, Payee, Recurrence, Schedule, ScheduleStatus, format_date, parse_date,
};
use crate::store::bills::{self as bills_store, Outcome};
use crate::transaction::{AccountNumber, TransactionRequest};

fn payee_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no payee {id}"))
}

fn schedule_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no schedule {id}"))
}

fn parse_id(field: &str, id: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(id)
        .ok()
        .filter(|u| !u.is_nil() && id.len() == 36)
        .ok_or_else(|| ApiError::invalid(field, "invalid_id", format!("`{field}` is not a UUID")))
}

fn valid_biller(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn now_text() -> Result<String, ApiError> {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(ApiError::internal)
}

fn created(location: String, body: impl serde::Serialize) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Default page size of the bill listings.
pub const DEFAULT_BILLS_PAGE: i32 = 100;

/// The page size and the sort key to continue after, from a listing's query.
fn page_query(
    query: Result<Query<BillsPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(i32, Option<String>), ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid("query", "invalid_query", e.body_text()))?;
    key_page(
        query.limit,
        query.cursor.as_deref(),
        DEFAULT_BILLS_PAGE,
        bills_store::MAX_LISTED,
    )
}

/// Save a payee (a biller and the account it is paid to).
#[utoipa::path(
    post,
    path = "/v1/payees",
    tag = "bills",
    request_body(content = CreatePayee, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = PayeeView,
         headers(("Location" = String, description = "The payee URL"))),
        (status = 400, description = "Validation failed (the field is named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject))]
pub async fn create_payee(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsWrite>,
    StrictJson(req): StrictJson<CreatePayee>,
) -> Result<Response, ApiError> {
    if !valid_biller(&req.biller_id) {
        return Err(ApiError::invalid(
            "biller_id",
            "invalid_biller_id",
            "`biller_id` must be 1-64 letters, digits, `_`, `-` or `.`, e.g. \"UTILITYCO\"",
        ));
    }
    let account = AccountNumber::parse(&req.account).map_err(|e| {
        ApiError::invalid(
            "account",
            "invalid_account_number",
            format!("`account` is not a valid account number: {e}"),
        )
    })?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "invalid_name",
            "`name` must be 1-100 characters without control characters",
        ));
    }
    let payee = Payee {
        payee_id: Uuid::now_v7(),
        biller_id: req.biller_id,
        account,
        name: name.to_owned(),
        created_at: now_text()?,
    };
    bills_store::put_payee(state.ledger(), principal.owner(), &payee).await?;
    tracing::info!(payee_id = %payee.payee_id, "payee saved");
    let location = format!("/v1/payees/{}", payee.payee_id.hyphenated());
    Ok(created(location, PayeeView::from(payee)))
}

/// Your payees, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/payees",
    tag = "bills",
    params(BillsPageQuery),
    responses(
        (status = 200, description = "A page of your payees", body = PayeePage),
        (status = 400, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject))]
pub async fn list_payees(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsRead>,
    query: Result<Query<BillsPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<PayeePage>, ApiError> {
    let (limit, after) = page_query(query)?;
    let page =
        bills_store::payees(state.ledger(), principal.owner(), limit, after.as_deref()).await?;
    Ok(axum::Json(PayeePage {
        payees: page.items.into_iter().map(PayeeView::from).collect(),
        next_cursor: page.next.map(hex::encode),
    }))
}

/// Delete a payee; refused while one of its schedules is active (cancel them first).
#[utoipa::path(
    delete,
    path = "/v1/payees/{id}",
    tag = "bills",
    params(("id" = String, Path, description = "The payee id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payee, or not yours (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payee has an active schedule", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, payee_id = %id))]
pub async fn delete_payee(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let payee_id = parse_id("id", &id)?;
    let owner = principal.owner();
    if bills_store::has_active_schedule(state.ledger(), owner, payee_id).await? {
        return Err(ApiError::Conflict(
            "the payee has an active schedule; cancel it first".into(),
        ));
    }
    match bills_store::delete_payee(state.ledger(), owner, payee_id, &now_text()?).await? {
        Outcome::Won => Ok(StatusCode::NO_CONTENT),
        Outcome::Lost => Err(payee_not_found(&id)),
    }
}

/// Schedule payments to a payee: once, weekly or monthly.
#[utoipa::path(
    post,
    path = "/v1/payees/{id}/schedules",
    tag = "bills",
    params(("id" = String, Path, description = "The payee id")),
    request_body(content = CreateSchedule, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ScheduleView,
         headers(("Location" = String, description = "The schedule URL"))),
        (status = 400, description = "Validation failed (the field is named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payee or source account, or not yours (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, payee_id = %id))]
pub async fn create_schedule(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsWrite>,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<CreateSchedule>,
) -> Result<Response, ApiError> {
    let payee_id = parse_id("id", &id)?;
    let owner = principal.owner();
    let payee = bills_store::payee(state.ledger(), owner, payee_id)
        .await?
        .ok_or_else(|| payee_not_found(&id))?;
    // Amount, currency and accounts exactly as the worker validates a PAYMENT.
    let request = TransactionRequest {
        transaction_id: Some(Uuid::now_v7().hyphenated().to_string()),
        kind: Some("PAYMENT".to_owned()),
        source_account: Some(req.source_account.clone()),
        target_account: Some(payee.account.as_str().to_owned()),
        amount: Some(crate::transaction::AmountText::new(req.amount.clone())),
        currency: Some(req.currency.clone()),
        timestamp: Some(now_text()?),
        idempotency_key: Some("bill-schedule-validation".to_owned()),
        ..TransactionRequest::default()
    };
    let tx = request
        .validate()
        .map_err(|e| ApiError::from_validation(&e))?;
    let (Some(source), Some(amount)) = (tx.source_account.clone(), tx.amount) else {
        return Err(ApiError::internal(
            "a validated PAYMENT has a source and an amount",
        ));
    };
    // The debited account must be the caller's (404 otherwise, as for a transaction). Its own:
    // not merely visible to an operator, since the runner pays as the schedule's owner with no
    // operator scope, and would be refused at every occurrence.
    let account = account_of(state.ledger(), &principal, &source).await?;
    if account.owner.as_deref() != Some(principal.subject.as_str()) {
        return Err(super::authorize::account_not_found(&source));
    }
    if account.currency != tx.currency.code() {
        return Err(ApiError::invalid(
            "currency",
            "currency_mismatch",
            format!(
                "`currency` {} is not the currency of account {source} ({})",
                tx.currency.code(),
                account.currency
            ),
        ));
    }
    let date = |field: &str, text: &str| {
        parse_date(text).ok_or_else(|| {
            ApiError::invalid(
                field,
                "invalid_date",
                format!("`{field}` must be a calendar date YYYY-MM-DD, e.g. \"2027-01-31\""),
            )
        })
    };
    let first_due = date("first_due", &req.first_due)?;
    let today = OffsetDateTime::now_utc().date();
    if first_due < today {
        return Err(ApiError::invalid(
            "first_due",
            "date_in_past",
            format!(
                "`first_due` must be today ({}) or later",
                format_date(today)
            ),
        ));
    }
    let recurrence = Recurrence::parse(&req.recurrence).ok_or_else(|| {
        ApiError::invalid(
            "recurrence",
            "invalid_recurrence",
            "`recurrence` must be ONCE, WEEKLY or MONTHLY",
        )
    })?;
    if let Some(count) = req.count
        && !(1..=MAX_COUNT).contains(&count)
    {
        return Err(ApiError::invalid(
            "count",
            "invalid_count",
            format!("`count` must be 1-{MAX_COUNT}"),
        ));
    }
    let until = req.until.as_deref().map(|u| date("until", u)).transpose()?;
    if until.is_some_and(|u| u < first_due) {
        return Err(ApiError::invalid(
            "until",
            "until_before_first_due",
            "`until` must be on or after `first_due`",
        ));
    }
    let schedule = Schedule {
        schedule_id: Uuid::now_v7(),
        payee_id,
        source_account: source,
        target_account: payee.account,
        amount,
        currency: tx.currency,
        recurrence,
        first_due,
        count: req.count,
        until,
        next_index: 0,
        next_due: Some(first_due),
        status: ScheduleStatus::Active,
        past: Vec::new(),
        created_at: now_text()?,
    };
    match bills_store::create_schedule(state.ledger(), owner, &schedule).await? {
        Outcome::Won => {}
        // The payee was deleted since it was read.
        Outcome::Lost => return Err(payee_not_found(&id)),
    }
    tracing::info!(schedule_id = %schedule.schedule_id, "bill schedule created");
    let location = format!("/v1/schedules/{}", schedule.schedule_id.hyphenated());
    Ok(created(location, ScheduleView::from(schedule)))
}

/// The schedules of a payee, with their next due date and past occurrences, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/payees/{id}/schedules",
    tag = "bills",
    params(("id" = String, Path, description = "The payee id"), BillsPageQuery),
    responses(
        (status = 200, description = "A page of the payee's schedules", body = SchedulePage),
        (status = 400, description = "Not a UUID, or a bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payee, or not yours (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, payee_id = %id))]
pub async fn list_schedules(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsRead>,
    Path(id): Path<String>,
    query: Result<Query<BillsPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<SchedulePage>, ApiError> {
    let payee_id = parse_id("id", &id)?;
    let (limit, after) = page_query(query)?;
    let owner = principal.owner();
    let page = bills_store::schedules(
        state.ledger(),
        owner,
        Some(payee_id),
        limit,
        after.as_deref(),
    )
    .await?;
    // A deleted payee keeps its (cancelled or completed) schedules listed.
    if page.items.is_empty()
        && after.is_none()
        && page.next.is_none()
        && bills_store::payee(state.ledger(), owner, payee_id)
            .await?
            .is_none()
    {
        return Err(payee_not_found(&id));
    }
    Ok(axum::Json(SchedulePage {
        schedules: page.items.into_iter().map(ScheduleView::from).collect(),
        next_cursor: page.next.map(hex::encode),
    }))
}

/// A schedule, with its next due date and past occurrences.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "bills",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or not yours (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, schedule_id = %id))]
pub async fn get_schedule(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    let schedule_id = parse_id("id", &id)?;
    let schedule = bills_store::schedule(state.ledger(), principal.owner(), schedule_id)
        .await?
        .ok_or_else(|| schedule_not_found(&id))?;
    Ok(axum::Json(schedule.into()))
}

/// Cancel a schedule: no further occurrence is enqueued (one already enqueued is not undone).
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "bills",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 200, description = "Cancelled; the schedule as it is now", body = ScheduleView),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule, or not yours (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cancelled or completed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Contended by the runner; retry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, schedule_id = %id))]
pub async fn cancel_schedule(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsWrite>,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    let schedule_id = parse_id("id", &id)?;
    let owner = principal.owner();
    // The runner may advance the schedule between the read and the cancel: read again.
    for _ in 0..3 {
        let schedule = bills_store::schedule(state.ledger(), owner, schedule_id)
            .await?
            .ok_or_else(|| schedule_not_found(&id))?;
        if schedule.status != ScheduleStatus::Active {
            return Err(ApiError::Conflict(format!(
                "the schedule is already {}",
                schedule.status.as_str()
            )));
        }
        if bills_store::cancel(state.ledger(), owner, &schedule).await? == Outcome::Won {
            tracing::info!("bill schedule cancelled");
            let now = bills_store::schedule(state.ledger(), owner, schedule_id)
                .await?
                .ok_or_else(|| schedule_not_found(&id))?;
            return Ok(axum::Json(now.into()));
        }
    }
    Err(ApiError::unavailable(
        "the schedule changed during the cancel; retry",
        None,
    ))
}
