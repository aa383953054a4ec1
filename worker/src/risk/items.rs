//! The DynamoDB items of a risk decision, all in the transactions table and all written in the
//! TransactWriteItems of the decision itself (pure builders, no I/O):
//!
//! - `VELOCITY#<account>`: `account`, `version` N, `lifetime_count` N, `buckets` (L of M:
//!   `start` N, `currency`, `count` N, `amount` N), `updated_at`. Put conditional on the
//!   version read ([`velocity_put`]).
//! - `ANALYSIS#<transaction id>` (seed 003's ANALYSIS_DATA; the analysis id is the transaction
//!   id, so a transaction has one): `analysis_id`, `transaction_id`, `risk_score` N,
//!   `decision`, `rules` (L of M: `name`, `kind`, `score` N, `detail`), `analyzed_at`.
//! - `ALERT#<transaction id>` (seed 003's ALERT_LOG), holds and declines only: `alert_id`,
//!   `user_id` (the message's principal, else the debited account's owner, when known),
//!   `transaction_id`, `timestamp`, `type_id` (`RISK_HOLD` or `RISK_DECLINE`), `risk_score` N,
//!   `rules` (L of S).
//! - `REVIEW#<transaction id>`, holds only: `transaction_id`, `status` (PENDING, then APPROVED,
//!   REJECTED or DECLINED), `transaction` (the message in its wire form, to apply on approval),
//!   `risk_score` N, `rules` (L of S), `held_at`; while PENDING also `review_queue` and
//!   `review_sk` (`<fixed-width held_at>#<id>`), the keys of the sparse index
//!   [`REVIEWS_PENDING_INDEX`], removed by the decision.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use time::OffsetDateTime;

use super::score::{Assessment, Decision};
use super::velocity::{Bucket, VelocitySnapshot};
use crate::ledger::{Item, LedgerError, NOT_EXISTS, PK, rfc3339, sort_timestamp};
use crate::store::keys::{alert_pk, analysis_pk, review_pk, velocity_pk};
use crate::transaction::{AccountNumber, Currency, Transaction, parse_dynamo_number};

/// The sparse GSI of pending reviews (`review_queue`, `review_sk`): oldest first.
pub const REVIEWS_PENDING_INDEX: &str = "reviews-pending";
/// The one `review_queue` value of a pending review.
pub const REVIEW_QUEUE_PENDING: &str = "PENDING";
/// `reason_code` of a HELD result.
pub const RISK_REVIEW: &str = "RISK_REVIEW";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(d: impl ToString) -> AttributeValue {
    AttributeValue::N(d.to_string())
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> LedgerError {
    LedgerError::Fatal {
        operation: "build request",
        detail: e.to_string(),
        source: Some(Box::new(e)),
    }
}

fn corrupt(pk: &str, detail: impl Into<String>) -> LedgerError {
    LedgerError::CorruptItem {
        key: pk.to_owned(),
        detail: detail.into(),
    }
}

fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, LedgerError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NOT_EXISTS)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The next velocity state of `account`, conditional on the version read: `attribute_not_exists`
/// when there was no item (version 0), else `version = <read>`.
pub fn velocity_put(
    table: &str,
    account: &AccountNumber,
    read_version: u64,
    next: &VelocitySnapshot,
    now: OffsetDateTime,
) -> Result<TransactWriteItem, LedgerError> {
    let buckets = next
        .buckets
        .iter()
        .map(|b| {
            AttributeValue::M(
                [
                    ("start".to_owned(), n(b.start)),
                    ("currency".to_owned(), s(b.currency.code())),
                    ("count".to_owned(), n(b.count)),
                    ("amount".to_owned(), n(b.amount)),
                ]
                .into(),
            )
        })
        .collect();
    let item = Item::from([
        (PK.to_owned(), s(velocity_pk(account))),
        ("account".to_owned(), s(account.as_str())),
        ("version".to_owned(), n(next.version)),
        ("lifetime_count".to_owned(), n(next.lifetime_count)),
        ("buckets".to_owned(), AttributeValue::L(buckets)),
        ("updated_at".to_owned(), s(rfc3339(now)?)),
    ]);
    let builder = Put::builder().table_name(table).set_item(Some(item));
    let builder = if read_version == 0 {
        builder.condition_expression(NOT_EXISTS)
    } else {
        builder
            .condition_expression("#version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", n(read_version))
    };
    Ok(TransactWriteItem::builder()
        .put(builder.build().map_err(build_err)?)
        .build())
}

fn number<T: TryFrom<i128>>(pk: &str, item: &Item, name: &str) -> Result<T, LedgerError> {
    let text = item
        .get(name)
        .and_then(|v| v.as_n().ok())
        .ok_or_else(|| corrupt(pk, format!("missing number `{name}`")))?;
    let d = parse_dynamo_number(text).map_err(|e| corrupt(pk, format!("`{name}`: {e}")))?;
    if !d.fract().is_zero() {
        return Err(corrupt(pk, format!("`{name}` is not whole")));
    }
    i128::try_from(d)
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| corrupt(pk, format!("`{name}` is out of range")))
}

/// Reads a velocity item back (`None`: the account has none yet, the empty state).
pub fn velocity_from_item(item: Option<&Item>) -> Result<VelocitySnapshot, LedgerError> {
    let Some(item) = item else {
        return Ok(VelocitySnapshot::default());
    };
    let pk = item
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .map_or("VELOCITY#?", String::as_str);
    let list = match item.get("buckets") {
        Some(AttributeValue::L(list)) => list.as_slice(),
        None => &[],
        Some(_) => return Err(corrupt(pk, "`buckets` is not a list")),
    };
    let mut buckets = Vec::with_capacity(list.len());
    for b in list {
        let m = b.as_m().map_err(|_| corrupt(pk, "a bucket is not a map"))?;
        let code = m
            .get("currency")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt(pk, "a bucket has no currency"))?;
        let amount = m
            .get("amount")
            .and_then(|v| v.as_n().ok())
            .ok_or_else(|| corrupt(pk, "a bucket has no amount"))?;
        buckets.push(Bucket {
            start: number(pk, m, "start")?,
            currency: Currency::from_code(code)
                .map_err(|e| corrupt(pk, format!("bucket currency: {e}")))?,
            count: number(pk, m, "count")?,
            amount: parse_dynamo_number(amount)
                .map_err(|e| corrupt(pk, format!("bucket amount: {e}")))?,
        });
    }
    Ok(VelocitySnapshot {
        version: number(pk, item, "version")?,
        lifetime_count: number(pk, item, "lifetime_count")?,
        buckets,
    })
}

fn rule_names(assessment: &Assessment) -> AttributeValue {
    AttributeValue::L(assessment.fired.iter().map(|f| s(&f.name)).collect())
}

/// The analysis record of every decision.
pub fn analysis_put(
    table: &str,
    tx: &Transaction,
    assessment: &Assessment,
    now: OffsetDateTime,
) -> Result<TransactWriteItem, LedgerError> {
    let id = tx.transaction_id.hyphenated().to_string();
    let rules = assessment
        .fired
        .iter()
        .map(|f| {
            AttributeValue::M(
                [
                    ("name".to_owned(), s(&f.name)),
                    ("kind".to_owned(), s(f.kind.as_str())),
                    ("score".to_owned(), n(f.score)),
                    ("detail".to_owned(), s(&f.detail)),
                ]
                .into(),
            )
        })
        .collect();
    let item = Item::from([
        (PK.to_owned(), s(analysis_pk(tx.transaction_id))),
        ("analysis_id".to_owned(), s(&id)),
        ("transaction_id".to_owned(), s(&id)),
        ("risk_score".to_owned(), n(assessment.score)),
        ("decision".to_owned(), s(assessment.decision.as_str())),
        ("rules".to_owned(), AttributeValue::L(rules)),
        ("analyzed_at".to_owned(), s(rfc3339(now)?)),
    ]);
    put_new(table, item)
}

/// The alert record of a hold or a decline.
pub fn alert_put(
    table: &str,
    tx: &Transaction,
    assessment: &Assessment,
    user_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<TransactWriteItem, LedgerError> {
    let id = tx.transaction_id.hyphenated().to_string();
    let type_id = match assessment.decision {
        Decision::Decline => "RISK_DECLINE",
        Decision::Hold | Decision::Approve => "RISK_HOLD",
    };
    let mut item = Item::from([
        (PK.to_owned(), s(alert_pk(tx.transaction_id))),
        ("alert_id".to_owned(), s(&id)),
        ("transaction_id".to_owned(), s(&id)),
        ("timestamp".to_owned(), s(rfc3339(now)?)),
        ("type_id".to_owned(), s(type_id)),
        ("risk_score".to_owned(), n(assessment.score)),
        ("rules".to_owned(), rule_names(assessment)),
    ]);
    if let Some(user) = user_id {
        item.insert("user_id".to_owned(), s(user));
    }
    put_new(table, item)
}

/// `review_sk` of a review held at `held_at`.
pub fn review_sort_key(tx: &Transaction, held_at: OffsetDateTime) -> Result<String, LedgerError> {
    Ok(format!(
        "{}#{}",
        sort_timestamp(held_at)?,
        tx.transaction_id.hyphenated()
    ))
}

/// The pending review of a hold.
pub fn review_put(
    table: &str,
    tx: &Transaction,
    assessment: &Assessment,
    now: OffsetDateTime,
) -> Result<TransactWriteItem, LedgerError> {
    let message = tx.to_json().map_err(|e| LedgerError::InvalidInput {
        detail: format!("cannot serialize the held transaction: {e}"),
    })?;
    let item = Item::from([
        (PK.to_owned(), s(review_pk(tx.transaction_id))),
        (
            "transaction_id".to_owned(),
            s(tx.transaction_id.hyphenated().to_string()),
        ),
        ("status".to_owned(), s(ReviewStatus::Pending.as_str())),
        ("transaction".to_owned(), s(message)),
        ("risk_score".to_owned(), n(assessment.score)),
        ("rules".to_owned(), rule_names(assessment)),
        ("held_at".to_owned(), s(rfc3339(now)?)),
        ("review_queue".to_owned(), s(REVIEW_QUEUE_PENDING)),
        ("review_sk".to_owned(), s(review_sort_key(tx, now)?)),
    ]);
    put_new(table, item)
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewStatus {
    /// Waiting for an operator; no money has moved.
    Pending,
    /// Approved and applied.
    Approved,
    /// Rejected by an operator; no money moved.
    Rejected,
    /// Approved, but the ledger refused the movement at approval time (e.g. insufficient
    /// funds by then); no money moved.
    Declined,
}

impl ReviewStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "PENDING",
            ReviewStatus::Approved => "APPROVED",
            ReviewStatus::Rejected => "REJECTED",
            ReviewStatus::Declined => "DECLINED",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ReviewStatus::Pending,
            ReviewStatus::Approved,
            ReviewStatus::Rejected,
            ReviewStatus::Declined,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}
