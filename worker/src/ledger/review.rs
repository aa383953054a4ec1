//! An operator's decision on a held transaction (see [`crate::risk`], "Holds"): approval applies
//! the held movement exactly once, rejection records the final DECLINED result; each in one
//! TransactWriteItems with its audit record, conditional on the review still being PENDING and
//! the result still HELD.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use time::OffsetDateTime;
use uuid::Uuid;

use super::build::{ItemRole, WritePlan};
use super::model::{Item, OWNER, PK, ResultStatus, get_s, opt_s, result_pk, rfc3339, s};
use super::{CancellationVerdict, DeclineReason, Ledger, LedgerError};
use crate::risk::ReviewStatus;
use crate::store::StoreError;
use crate::store::audit::{self as audit_store, AuditRecord, Decision};
use crate::store::keys::review_pk;
use crate::transaction::{AccountNumber, Subject, Transaction, parse_transaction};

/// What the operator asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// Apply the held movement.
    Approve,
    /// Refuse it.
    Reject,
}

/// What came of the operator's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Approved: the movement is applied, the result COMPLETED.
    Approved,
    /// Approved, but the ledger refused the movement now (e.g. insufficient funds by then):
    /// the result is DECLINED with this reason and nothing moved.
    Declined(DeclineReason),
    /// Rejected: the result is DECLINED (`REVIEW_REJECTED`), nothing moved.
    Rejected,
    /// No held transaction with this id.
    NotFound,
    /// Someone decided it already (the status it has): nothing changed.
    AlreadyDecided(ReviewStatus),
    /// The operator owns an account of the transaction, or submitted it (four eyes): refused.
    OwnTransaction,
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The held transaction.
    pub transaction: Transaction,
    /// Where it stands.
    pub status: ReviewStatus,
    /// The risk score that held it.
    pub risk_score: u32,
    /// The rules that fired.
    pub rules: Vec<String>,
    /// When it was held (RFC 3339).
    pub held_at: String,
    /// Who decided it, once decided.
    pub decided_by: Option<String>,
    /// When, once decided (RFC 3339).
    pub decided_at: Option<String>,
}

impl Review {
    /// Reads a `REVIEW#` item.
    pub fn from_item(item: &Item) -> Result<Self, LedgerError> {
        let corrupt = |detail: String| LedgerError::CorruptItem {
            key: opt_s(item, PK)
                .ok()
                .flatten()
                .unwrap_or("REVIEW#?")
                .to_owned(),
            detail,
        };
        let status_text = get_s(item, "status")?;
        let status = ReviewStatus::parse(status_text)
            .ok_or_else(|| corrupt(format!("unknown review status {status_text:?}")))?;
        let transaction = parse_transaction(get_s(item, "transaction")?.as_bytes())
            .map_err(|e| corrupt(format!("held transaction: {e}")))?;
        let risk_score = item
            .get("risk_score")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| corrupt("bad `risk_score`".into()))?;
        let rules = match item.get("rules") {
            Some(AttributeValue::L(list)) => {
                list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
            }
            _ => Vec::new(),
        };
        Ok(Review {
            transaction,
            status,
            risk_score,
            rules,
            held_at: get_s(item, "held_at")?.to_owned(),
            decided_by: opt_s(item, "decided_by")?.map(str::to_owned),
            decided_at: opt_s(item, "decided_at")?.map(str::to_owned),
        })
    }
}

/// Attempts of an approval whose account conditions failed but hold again when classified.
const MAX_ATTEMPTS: usize = 3;

impl Ledger {
    /// Reads a review (strongly consistent).
    pub async fn get_review(&self, transaction_id: Uuid) -> Result<Option<Review>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.transactions_table)
            .key(PK, s(review_pk(transaction_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:GetItem", e))?;
        out.item.as_ref().map(Review::from_item).transpose()
    }

    /// Applies an operator's decision on a held transaction. `audit` is the record of the
    /// request (principal, client address, id, time); its decision, reason, status and
    /// transaction id are filled in here and it is written in the same TransactWriteItems.
    ///
    /// Four eyes: an operator who submitted the transaction or owns one of its accounts gets
    /// [`ReviewOutcome::OwnTransaction`] and nothing changes.
    pub async fn decide_review(
        &self,
        transaction_id: Uuid,
        action: ReviewAction,
        operator: &Subject,
        audit: &AuditRecord,
    ) -> Result<ReviewOutcome, LedgerError> {
        let Some(review) = self.get_review(transaction_id).await? else {
            return Ok(ReviewOutcome::NotFound);
        };
        if review.status != ReviewStatus::Pending {
            return Ok(ReviewOutcome::AlreadyDecided(review.status));
        }
        let tx = &review.transaction;
        if self.is_party(tx, operator).await? {
            tracing::warn!(%transaction_id, operator = %operator.as_str(), "an operator may not decide a transaction of their own");
            return Ok(ReviewOutcome::OwnTransaction);
        }
        if action == ReviewAction::Reject {
            let reason = DeclineReason::ReviewRejected {
                operator: operator.as_str().to_owned(),
            };
            let decided = self
                .finish_declined(tx, ReviewStatus::Rejected, &reason, operator, audit)
                .await?;
            return match decided {
                true => Ok(ReviewOutcome::Rejected),
                false => self.already_decided(transaction_id).await,
            };
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            // The movement exactly as the worker would have applied it now (a conversion at
            // the rate valid now), minus the IDEM and TXN puts the hold already made.
            let mut plan = match self.movement_plan(tx, now).await? {
                Ok(plan) => plan,
                Err(reason) => {
                    let decided = self
                        .finish_declined(tx, ReviewStatus::Declined, &reason, operator, audit)
                        .await?;
                    return match decided {
                        true => Ok(ReviewOutcome::Declined(reason)),
                        false => self.already_decided(transaction_id).await,
                    };
                }
            };
            plan.retain(|role| !matches!(role, ItemRole::Idempotency | ItemRole::Result));
            let result_attributes = std::mem::take(&mut plan.result_attributes);
            let decision = Decided {
                status: ReviewStatus::Approved,
                result: ResultStatus::Completed,
                reason: None,
                attributes: &result_attributes,
            };
            self.attach_decision(&mut plan, tx, &decision, operator, audit, now)?;
            plan.check_size()?;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    tracing::info!(%transaction_id, operator = %operator.as_str(), "held transaction approved and applied");
                    return Ok(ReviewOutcome::Approved);
                }
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                err.as_service_error()
            else {
                return Err(LedgerError::from_sdk("dynamodb:TransactWriteItems", err));
            };
            match super::interpret_cancellation(&plan.roles, e.cancellation_reasons()) {
                CancellationVerdict::Duplicate => {
                    return self.already_decided(transaction_id).await;
                }
                CancellationVerdict::Accounts(failed) => {
                    if let Some(reason) = self.decline_reason(tx, failed).await? {
                        let decided = self
                            .finish_declined(tx, ReviewStatus::Declined, &reason, operator, audit)
                            .await?;
                        return match decided {
                            true => Ok(ReviewOutcome::Declined(reason)),
                            false => self.already_decided(transaction_id).await,
                        };
                    }
                    tracing::debug!(%transaction_id, attempt, "accounts changed during approval; retrying");
                }
                CancellationVerdict::Transient { codes } => {
                    return Err(LedgerError::Transient {
                        operation: "dynamodb:TransactWriteItems",
                        detail: format!("approval cancelled: {}", codes.join(", ")),
                        source: Some(Box::new(err)),
                    });
                }
                // The conversion's rate was replaced since it was read: read it again.
                CancellationVerdict::RateChanged => {
                    tracing::debug!(%transaction_id, attempt, "exchange rate replaced during approval; reading it again");
                }
                CancellationVerdict::Stale | CancellationVerdict::Fatal { .. } => {
                    return Err(LedgerError::Fatal {
                        operation: "dynamodb:TransactWriteItems",
                        detail: "approval cancelled for an unexpected reason".into(),
                        source: Some(Box::new(err)),
                    });
                }
            }
        }
        Err(LedgerError::Transient {
            operation: "dynamodb:TransactWriteItems",
            detail: "account state kept changing while approving".into(),
            source: None,
        })
    }

    async fn already_decided(&self, transaction_id: Uuid) -> Result<ReviewOutcome, LedgerError> {
        Ok(match self.get_review(transaction_id).await? {
            Some(review) => ReviewOutcome::AlreadyDecided(review.status),
            None => ReviewOutcome::NotFound,
        })
    }

    /// Whether `operator` submitted `tx` (its principal, or the `sub` of its ingest record: an
    /// operator's own submissions carry no principal) or owns one of its accounts.
    async fn is_party(&self, tx: &Transaction, operator: &Subject) -> Result<bool, LedgerError> {
        if tx.principal.as_ref() == Some(operator) {
            return Ok(true);
        }
        let submitter = crate::store::ingest::submitter(self, tx.idempotency_key.as_str())
            .await
            .map_err(|e| match e {
                StoreError::Ledger(e) => e,
                other if other.is_transient() => LedgerError::Transient {
                    operation: "dynamodb:GetItem",
                    detail: other.to_string(),
                    source: Some(Box::new(other)),
                },
                other => LedgerError::Fatal {
                    operation: "dynamodb:GetItem",
                    detail: other.to_string(),
                    source: Some(Box::new(other)),
                },
            })?;
        if submitter.as_deref() == Some(operator.as_str()) {
            return Ok(true);
        }
        let accounts: Vec<&AccountNumber> = tx.accounts().collect();
        for account in accounts {
            if let Some(item) = self.get_account_item(account).await?
                && opt_s(&item, OWNER)? == Some(operator.as_str())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Review → `status`, TXN HELD → DECLINED with `reason`, and the audit record; `Ok(false)`
    /// when the review was decided meanwhile.
    async fn finish_declined(
        &self,
        tx: &Transaction,
        status: ReviewStatus,
        reason: &DeclineReason,
        operator: &Subject,
        audit: &AuditRecord,
    ) -> Result<bool, LedgerError> {
        let mut plan = WritePlan::new();
        let decision = Decided {
            status,
            result: ResultStatus::Declined,
            reason: Some(reason),
            attributes: &[],
        };
        self.attach_decision(
            &mut plan,
            tx,
            &decision,
            operator,
            audit,
            OffsetDateTime::now_utc(),
        )?;
        self.write_plan(plan).await
    }

    /// The three items every decision writes: the review update, the result update and the
    /// audit record.
    fn attach_decision(
        &self,
        plan: &mut WritePlan,
        tx: &Transaction,
        decision: &Decided<'_>,
        operator: &Subject,
        audit: &AuditRecord,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        let at = rfc3339(now)?;
        let table = self.tables().transactions;
        let review = Update::builder()
            .table_name(table)
            .key(PK, s(review_pk(tx.transaction_id)))
            .condition_expression("#status = :pending")
            .update_expression(
                "SET #status = :status, decided_by = :by, decided_at = :at \
                 REMOVE review_queue, review_sk",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(ReviewStatus::Pending.as_str()))
            .expression_attribute_values(":status", s(decision.status.as_str()))
            .expression_attribute_values(":by", s(operator.as_str()))
            .expression_attribute_values(":at", s(&at))
            .build()
            .map_err(LedgerError::build)?;
        // Named `#rN`/`:rN`: the attributes come from the plan, never from a caller's text.
        let extra: String = (0..decision.attributes.len())
            .map(|i| format!(", #r{i} = :r{i}"))
            .collect();
        let result = match decision.reason {
            None => decision.attributes.iter().enumerate().fold(
                Update::builder().update_expression(format!(
                    "SET #status = :status, processed_at = :at, decided_by = :by{extra} \
                     REMOVE reason, reason_code"
                )),
                |update, (i, (name, value))| {
                    update
                        .expression_attribute_names(format!("#r{i}"), name)
                        .expression_attribute_values(format!(":r{i}"), value.clone())
                },
            ),
            Some(reason) => Update::builder()
                .update_expression(
                    "SET #status = :status, processed_at = :at, decided_by = :by, \
                     reason = :reason, reason_code = :code",
                )
                .expression_attribute_values(":reason", s(reason.to_string()))
                .expression_attribute_values(":code", s(reason.code())),
        }
        .table_name(table)
        .key(PK, s(result_pk(tx.transaction_id)))
        .condition_expression("#status = :held")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":held", s(ResultStatus::Held.as_str()))
        .expression_attribute_values(":status", s(decision.result.as_str()))
        .expression_attribute_values(":at", s(&at))
        .expression_attribute_values(":by", s(operator.as_str()))
        .build()
        .map_err(LedgerError::build)?;
        let record = AuditRecord {
            decision: match decision.status {
                ReviewStatus::Rejected => Decision::ReviewRejected,
                _ => Decision::ReviewApproved,
            },
            reason_code: decision.reason.map(|r| r.code().to_owned()),
            http_status: 200,
            transaction_id: Some(tx.transaction_id.hyphenated().to_string()),
            ..audit.clone()
        };
        let audit_item =
            audit_store::item(&record, now).map_err(|e| LedgerError::InvalidInput {
                detail: format!("audit record: {e}"),
            })?;
        plan.push(
            ItemRole::Review,
            TransactWriteItem::builder().update(review).build(),
        );
        plan.push(
            ItemRole::Result,
            TransactWriteItem::builder().update(result).build(),
        );
        plan.push(ItemRole::Audit, super::build::put_new(table, audit_item)?);
        Ok(())
    }
}

/// What a decision writes.
struct Decided<'a> {
    status: ReviewStatus,
    result: ResultStatus,
    reason: Option<&'a DeclineReason>,
    /// Set on the result record with the decision ([`WritePlan::result_attributes`]).
    attributes: &'a [(String, AttributeValue)],
}
