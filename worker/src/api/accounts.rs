//! Account endpoints: open, read, close, history.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ApiState;
use super::authorize::visible_account;
use super::body::StrictJson;
use super::extract::{AccountsRead, AccountsWrite, Authorized};
use super::models::{AccountView, CreateAccount, EntryView, HistoryQuery, HistoryView};
use super::problem::{ApiError, Problem};
use crate::ledger::{AccountStatus, LedgerError, MAX_HISTORY_PAGE};
use crate::transaction::{AccountNumber, Currency, CurrencyError};

/// Digits of server-assigned account numbers.
pub const ACCOUNT_DIGITS: usize = 12;
/// Default history page size.
pub const DEFAULT_HISTORY_LIMIT: i32 = 50;
/// Default history window when `from` is absent.
pub const DEFAULT_HISTORY_DAYS: i64 = 30;
const CREATE_ATTEMPTS: usize = 5;

fn random_account_number() -> AccountNumber {
    let mut rng = rand::rng();
    let mut digits = String::with_capacity(ACCOUNT_DIGITS);
    // No leading zero, so the number reads the same as an integer.
    digits.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..ACCOUNT_DIGITS {
        digits.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    AccountNumber::parse(&digits).unwrap_or_else(|_| unreachable!("12 digits"))
}

fn parse_account(id: &str) -> Result<AccountNumber, ApiError> {
    AccountNumber::parse(id).map_err(|e| {
        ApiError::invalid(
            "id",
            "invalid_account_number",
            format!("the account id is not a valid account number: {e}"),
        )
    })
}

fn valid_type(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some('a'..='z'))
        && kind.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Open an account with a zero balance.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body(content = CreateAccount, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = AccountView,
         headers(("Location" = String, description = "The account URL"))),
        (status = 400, description = "Validation failed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, account_id))]
pub async fn create_account(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsWrite>,
    StrictJson(req): StrictJson<CreateAccount>,
) -> Result<Response, ApiError> {
    let currency = Currency::from_code(&req.currency).map_err(|e| {
        let reason = match e {
            CurrencyError::Malformed => "invalid_currency",
            CurrencyError::Unknown => "unknown_currency",
        };
        ApiError::invalid(
            "currency",
            reason,
            format!(
                "`currency` {:?} is not an active ISO 4217 code",
                req.currency
            ),
        )
    })?;
    if !valid_type(&req.kind) {
        return Err(ApiError::invalid(
            "type",
            "invalid_account_type",
            "`type` must be 1-32 lowercase letters, digits or `_`, starting with a letter, e.g. \"checking\"",
        ));
    }
    for _ in 0..CREATE_ATTEMPTS {
        let number = random_account_number();
        match state
            .ledger()
            .create_account(
                &number,
                currency,
                &req.kind,
                Decimal::ZERO,
                principal.owner(),
            )
            .await
        {
            Ok(account) => {
                tracing::Span::current().record("account_id", tracing::field::display(&number));
                tracing::info!("account opened");
                let location = format!("/v1/accounts/{number}");
                let mut response =
                    (StatusCode::CREATED, axum::Json(AccountView::from(account))).into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, v);
                }
                return Ok(response);
            }
            // A collision with an existing number: draw again.
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable(
        "could not allocate an account number; retry",
        None,
    ))
}

/// Read an account and its balance.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "Account number (10-12 digits)")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 400, description = "Malformed account number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account, or not the caller's (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, account_id = %id))]
pub async fn get_account(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<AccountView>, ApiError> {
    let number = parse_account(&id)?;
    let account = visible_account(&state, &principal, &number).await?;
    Ok(axum::Json(account.into()))
}

/// Close an account; only a zero balance can be closed.
#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "Account number (10-12 digits)")),
    responses(
        (status = 200, description = "Closed; the account as it is now", body = AccountView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account, or not the caller's (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Non-zero balance or already closed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, account_id = %id))]
pub async fn close_account(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsWrite>,
    Path(id): Path<String>,
) -> Result<axum::Json<AccountView>, ApiError> {
    let number = parse_account(&id)?;
    let ledger = state.ledger();
    let account = visible_account(&state, &principal, &number).await?;
    if account.status == AccountStatus::Closed {
        return Err(ApiError::Conflict("the account is already closed".into()));
    }
    ledger.close_account(&number).await?;
    tracing::info!("account closed");
    let account = visible_account(&state, &principal, &number).await?;
    Ok(axum::Json(account.into()))
}

/// Parses a query bound. The value must be RFC 3339 and, converted to UTC, fall in years
/// 0001-9999: `9999-12-31T23:59:59-23:59` parses but overflows the UTC conversion the ledger
/// sort keys need.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    let invalid = || {
        ApiError::invalid(
            field,
            "invalid_timestamp",
            format!(
                "`{field}` must be an RFC 3339 date-time in years 0001-9999 (UTC) such as \
                 2024-01-15T10:30:00Z"
            ),
        )
    };
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    match time.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if (1..=9999).contains(&utc.year()) => Ok(time),
        _ => Err(invalid()),
    }
}

/// An account's ledger entries in a time range, oldest first, paginated.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/transactions",
    tag = "accounts",
    params(("id" = String, Path, description = "Account number (10-12 digits)"), HistoryQuery),
    responses(
        (status = 200, description = "One page of entries", body = HistoryView),
        (status = 400, description = "Invalid range, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account, or not the caller's (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, account_id = %id))]
pub async fn account_history(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsRead>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<HistoryView>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid("query", "invalid_query", e.body_text()))?;
    let number = parse_account(&id)?;
    let to = match &query.to {
        Some(t) => parse_time("to", t)?,
        None => OffsetDateTime::now_utc(),
    };
    let from = match &query.from {
        Some(t) => parse_time("from", t)?,
        // Checked: `to` may be near the start of year 0001.
        None => to
            .checked_sub(time::Duration::days(DEFAULT_HISTORY_DAYS))
            .filter(|from| {
                from.checked_to_offset(time::UtcOffset::UTC)
                    .is_some_and(|utc| utc.year() >= 1)
            })
            .ok_or_else(|| {
                ApiError::invalid(
                    "to",
                    "invalid_range",
                    format!(
                        "`to` is too early for the default range of {DEFAULT_HISTORY_DAYS} days; \
                         hint: also send `from`"
                    ),
                )
            })?,
    };
    if from > to {
        return Err(ApiError::invalid(
            "from",
            "invalid_range",
            "`from` must not be after `to`",
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "invalid_limit",
            format!("`limit` must be 1..={MAX_HISTORY_PAGE}"),
        ));
    }
    visible_account(&state, &principal, &number).await?;
    let ledger = state.ledger();
    let page = ledger
        .history(&number, from, to, limit, query.cursor.as_deref())
        .await
        .map_err(|e| match e {
            LedgerError::InvalidInput { detail } => {
                ApiError::invalid("cursor", "invalid_cursor", detail)
            }
            other => other.into(),
        })?;
    Ok(axum::Json(HistoryView {
        account_id: number.to_string(),
        entries: page.entries.into_iter().map(EntryView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_are_valid() {
        for _ in 0..100 {
            let n = random_account_number();
            assert_eq!(n.as_str().len(), ACCOUNT_DIGITS);
            assert!(!n.as_str().starts_with('0'));
        }
    }

    #[test]
    fn query_times_outside_utc_years_are_problems_naming_the_field() {
        for bad in [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "soon",
        ] {
            match parse_time("to", bad) {
                Err(ApiError::Validation { field, reason, .. }) => {
                    assert_eq!(field, "to", "{bad}");
                    assert_eq!(reason, "invalid_timestamp", "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(parse_time("from", "9999-12-31T23:59:59+23:59").is_ok());
    }

    #[test]
    fn account_types() {
        assert!(valid_type("checking"));
        assert!(valid_type("savings_2"));
        assert!(!valid_type(""));
        assert!(!valid_type("Checking"));
        assert!(!valid_type("2x"));
        assert!(!valid_type(&"a".repeat(33)));
    }
}
