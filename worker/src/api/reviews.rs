//! `/v1/reviews`: transactions held by the risk rules (see [`crate::risk`]), for operators
//! (scope `accounts:admin`).
//!
//! - `GET /v1/reviews`: pending reviews, oldest first (`limit`, `cursor`).
//! - `GET /v1/reviews/{id}`: one review, whatever its status.
//! - `POST /v1/reviews/{id}/approve`: apply the held movement, exactly once. The balance is
//!   checked now: a debit that no longer fits ends DECLINED (200 with `result_status`
//!   `DECLINED`), never an overdraft.
//! - `POST /v1/reviews/{id}/reject`: record the final DECLINED result (`REVIEW_REJECTED`).
//!
//! Both decisions write an audit record (decision `review_approved` or `review_rejected`, the
//! operator as principal) in the same TransactWriteItems as the decision. A decision that is
//! refused (409 already decided, 403 four eyes) is audited as `refused`, best effort. Four
//! eyes: an operator may not decide a transaction they submitted or one that touches an
//! account they own (403 `four_eyes`).

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::audit::{AuditDraft, Decision, client_address};
use super::extract::{AccountsAdmin, Authorized};
use super::paging::key_page;
use super::problem::{ApiError, Problem};
use crate::ledger::{Review, ReviewAction, ReviewOutcome};
use crate::store::reviews;
use crate::transaction::AmountText;

/// Default page of `GET /v1/reviews`.
pub const DEFAULT_REVIEW_PAGE: i32 = 50;
/// Largest page of `GET /v1/reviews`.
pub const MAX_REVIEW_PAGE: i32 = 500;

/// A review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// The held transaction.
    pub transaction_id: String,
    /// PENDING, APPROVED, REJECTED or DECLINED (approved, then refused by the ledger).
    pub status: String,
    /// The risk score that held it.
    pub risk_score: u32,
    /// The rules that fired.
    pub rules: Vec<String>,
    /// When it was held (RFC 3339).
    pub held_at: String,
    /// The operator who decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was decided (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// Transaction type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Debited account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
    /// Credited account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_account: Option<String>,
    /// Amount (decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Currency.
    pub currency: String,
    /// Who submitted it, when the message carried a principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        let tx = &r.transaction;
        ReviewView {
            transaction_id: tx.transaction_id.hyphenated().to_string(),
            status: r.status.as_str().to_owned(),
            risk_score: r.risk_score,
            rules: r.rules.clone(),
            held_at: r.held_at.clone(),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at.clone(),
            kind: tx.kind.as_str().to_owned(),
            source_account: tx.source_account.as_ref().map(|a| a.as_str().to_owned()),
            target_account: tx.target_account.as_ref().map(|a| a.as_str().to_owned()),
            amount: tx
                .amount
                .map(|a| AmountText::from_decimal(a).as_str().to_owned()),
            currency: tx.currency.code().to_owned(),
            principal: tx.principal.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

/// A page of pending reviews.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewPage {
    /// Oldest first.
    pub reviews: Vec<ReviewView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a decision did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewDecision {
    /// The transaction.
    pub transaction_id: String,
    /// APPROVED, REJECTED or DECLINED.
    pub review_status: String,
    /// The transaction's final result: COMPLETED or DECLINED.
    pub result_status: String,
    /// Why it ended DECLINED (`REVIEW_REJECTED`, `INSUFFICIENT_FUNDS`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// Query of `GET /v1/reviews`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Page size, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(id).map_err(|_| {
        ApiError::invalid(
            "id",
            "invalid_transaction_id",
            "the id is not a UUID; hint: use the transaction_id of the held transaction",
        )
    })
}

fn no_review(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no held transaction {id}"))
}

/// Pending reviews, oldest first (operators only).
#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    params(ReviewQuery),
    responses(
        (status = 200, description = "Pending reviews, oldest first", body = ReviewPage),
        (status = 400, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (scope `accounts:admin`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:admin"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject))]
pub async fn list_reviews(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsAdmin>,
    query: Result<Query<ReviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ReviewPage>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid("query", "invalid_query", e.body_text()))?;
    let (limit, after) = key_page(
        query.limit,
        query.cursor.as_deref(),
        DEFAULT_REVIEW_PAGE,
        MAX_REVIEW_PAGE,
    )?;
    // A store's refusal of the page key is a bad cursor (400), by `From<StoreError>`.
    let page = reviews::pending(state.ledger(), limit, after.as_deref()).await?;
    Ok(axum::Json(ReviewPage {
        reviews: page.reviews.iter().map(ReviewView::from).collect(),
        next_cursor: page.next.map(hex::encode),
    }))
}

/// One review (operators only).
#[utoipa::path(
    get,
    path = "/v1/reviews/{id}",
    tag = "reviews",
    params(("id" = String, Path, description = "The held transaction's id")),
    responses(
        (status = 200, description = "The review", body = ReviewView),
        (status = 403, description = "Not an operator (scope `accounts:admin`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No held transaction with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:admin"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, %id))]
pub async fn get_review(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsAdmin>,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewView>, ApiError> {
    let id = parse_id(&id)?;
    match state.ledger().get_review(id).await? {
        Some(review) => Ok(axum::Json(ReviewView::from(&review))),
        None => Err(no_review(id)),
    }
}

/// Approves a held transaction: its movement is applied exactly once (operators only; not
/// one's own transaction).
#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/approve",
    tag = "reviews",
    params(("id" = String, Path, description = "The held transaction's id")),
    responses(
        (status = 200, description = "Decided: applied (COMPLETED), or DECLINED by the ledger at approval time", body = ReviewDecision),
        (status = 403, description = "Not an operator, or the operator's own transaction (`four_eyes`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No held transaction with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:admin"]))
)]
pub async fn approve(
    state: State<ApiState>,
    caller: Authorized<AccountsAdmin>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    decide(state, caller, connect, headers, id, ReviewAction::Approve).await
}

/// Rejects a held transaction: nothing moves, the result is DECLINED (`REVIEW_REJECTED`)
/// (operators only; not one's own transaction).
#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/reject",
    tag = "reviews",
    params(("id" = String, Path, description = "The held transaction's id")),
    responses(
        (status = 200, description = "Rejected", body = ReviewDecision),
        (status = 403, description = "Not an operator, or the operator's own transaction (`four_eyes`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No held transaction with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:admin"]))
)]
pub async fn reject(
    state: State<ApiState>,
    caller: Authorized<AccountsAdmin>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    decide(state, caller, connect, headers, id, ReviewAction::Reject).await
}

#[tracing::instrument(skip_all, fields(sub = %principal.subject, %id, ?action))]
async fn decide(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsAdmin>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    id: String,
    action: ReviewAction,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    let id = parse_id(&id)?;
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    let client = client_address(peer, &headers, &state.config().trusted_proxies);
    let mut audit = AuditDraft::new(&principal.subject, client);
    audit.transaction_id = Some(id);
    let record = audit.record(Decision::Accepted, None);
    let outcome = state
        .ledger()
        .decide_review(id, action, principal.owner(), &record)
        .await?;
    let id_text = id.hyphenated().to_string();
    let decided = |review: &str, result: &str, reason: Option<&str>| {
        Ok(axum::Json(ReviewDecision {
            transaction_id: id_text.clone(),
            review_status: review.to_owned(),
            result_status: result.to_owned(),
            reason_code: reason.map(str::to_owned),
        }))
    };
    let refusal = match outcome {
        ReviewOutcome::Approved => return decided("APPROVED", "COMPLETED", None),
        ReviewOutcome::Rejected => return decided("REJECTED", "DECLINED", Some("REVIEW_REJECTED")),
        ReviewOutcome::Declined(reason) => {
            return decided("DECLINED", "DECLINED", Some(reason.code()));
        }
        ReviewOutcome::NotFound => no_review(id),
        ReviewOutcome::AlreadyDecided(status) => ApiError::Conflict(format!(
            "transaction {id} was already decided ({}); nothing changed",
            status.as_str()
        )),
        ReviewOutcome::OwnTransaction => ApiError::FourEyes(format!(
            "transaction {id} was submitted by you or touches an account you own; \
             hint: another operator must decide it"
        )),
    };
    if let Err(error) = state
        .put_audit(&audit, Decision::Refused, Some(&refusal))
        .await
    {
        tracing::error!(%error, "could not write the audit record of a refused review decision");
    }
    Err(refusal)
}
