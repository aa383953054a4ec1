//! Risk rules and holds: every money movement is scored before it is applied, and the score
//! decides **approve** (applied now), **hold for review** (no money moves until an operator
//! approves or rejects it through `/v1/reviews`) or **decline**. Without a rules file
//! (`--risk-rules`) the ledger applies movements exactly as before.
//!
//! - [`rules`]: the rules file (`apiVersion: ballast.dev/v1`, `kind: RiskRules`), read with the
//!   blueprint's positioned reader and checked (every problem at `file:line:column`, with a
//!   hint);
//! - [`score`]: the pure scoring function (rules, transaction, velocity snapshot, account age →
//!   score, decision, fired rules);
//! - [`velocity`]: the per-account velocity state in fixed-size buckets;
//! - [`items`]: the DynamoDB items of a decision (velocity, analysis, alert, review).
//!
//! # One transaction per decision
//!
//! The ledger ([`crate::ledger::Ledger::apply`]) reads the debited account's velocity item and
//! META item, scores, and writes the decision in **one** TransactWriteItems with
//! [`decision_items`] attached to the plan it would have written anyway:
//!
//! | decision | plan | attached |
//! |----------|------|----------|
//! | approve  | the movement (IDEM, TXN COMPLETED, debit, credit, entries) | velocity, analysis |
//! | hold     | IDEM, TXN HELD, a ConditionCheck per account ([`crate::ledger::hold_checks`]) | velocity, analysis, alert, review |
//! | decline  | IDEM, TXN DECLINED (`RISK_DECLINED`) | analysis, alert |
//!
//! The velocity put is conditional on the version that was read. When another worker counted a
//! debit of the same account in between, that condition fails, the cancellation is classified
//! [`Stale`](crate::ledger::CancellationVerdict::Stale) (never a duplicate, never a decline),
//! and the worker reads again and scores again, a bounded number of times before leaving the
//! message for redelivery. So the count a decision is based on is exactly the count it
//! extends: two racing workers cannot both take the last slot of a window.
//!
//! # Holds
//!
//! A held transaction's result is `HELD` and its `REVIEW#` item is PENDING. An operator's
//! approval ([`crate::ledger::Ledger::decide_review`]) applies the same movement
//! [`build_effect`](crate::ledger::build_effect) builds, without its IDEM and TXN puts, in one
//! TransactWriteItems with the TXN update HELD → COMPLETED and the review update PENDING →
//! APPROVED, both conditional, and the audit record: a second approval, a retry or a racing
//! operator finds the review decided and changes nothing. The accounts are checked when the
//! movement is held (a failed check declines it with the account's reason instead of queuing a
//! review it could not pay) and again at approval, by the debit's own condition: insufficient
//! funds by approval time end DECLINED, never overdrawn.
//! A rejection ends DECLINED (`REVIEW_REJECTED`). Velocity counted the hold when it was held.

pub mod items;
pub mod rules;
pub mod score;
pub mod velocity;

use aws_sdk_dynamodb::types::TransactWriteItem;
use time::OffsetDateTime;

pub use items::{REVIEWS_PENDING_INDEX, RISK_REVIEW, ReviewStatus, velocity_from_item};
pub use rules::{RiskRules, RulesError, load};
pub use score::{AccountFacts, Assessment, Decision, FiredRule, assess};
pub use velocity::VelocitySnapshot;

use crate::ledger::{ItemRole, LedgerError, ResultRecord, ResultStatus, Tables};
use crate::transaction::Transaction;

/// The HELD result of a transaction held for review.
pub fn held_record(tx: &Transaction, score: u32) -> ResultRecord {
    ResultRecord {
        reason: Some(format!(
            "held for review by an operator (risk score {score})"
        )),
        reason_code: Some(RISK_REVIEW.to_owned()),
        ..ResultRecord::for_transaction(tx, ResultStatus::Held)
    }
}

/// The items a decision adds to the TransactWriteItems of its result (the hook the ledger
/// calls, see the module documentation): the velocity put (approve and hold, when a rule reads
/// velocity and the transaction debits an account), the analysis, the alert (hold and
/// decline) and the review (hold).
pub fn decision_items(
    tables: Tables<'_>,
    rules: &RiskRules,
    tx: &Transaction,
    assessment: &Assessment,
    velocity: &VelocitySnapshot,
    user_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<Vec<(ItemRole, TransactWriteItem)>, LedgerError> {
    let mut out = Vec::with_capacity(4);
    let counts = assessment.decision != Decision::Decline && rules.needs_velocity();
    if counts && let (Some(account), Some(amount)) = (tx.debit_account(), tx.amount) {
        let next = velocity
            .record(
                now,
                amount,
                tx.currency,
                rules.bucket_secs,
                rules.retention_secs(),
            )
            .ok_or_else(|| LedgerError::InvalidInput {
                detail: format!("the velocity of account {account} is beyond range"),
            })?;
        out.push((
            ItemRole::Velocity,
            items::velocity_put(tables.transactions, account, velocity.version, &next, now)?,
        ));
    }
    out.push((
        ItemRole::Analysis,
        items::analysis_put(tables.transactions, tx, assessment, now)?,
    ));
    if assessment.decision != Decision::Approve {
        out.push((
            ItemRole::Alert,
            items::alert_put(tables.transactions, tx, assessment, user_id, now)?,
        ));
    }
    if assessment.decision == Decision::Hold {
        out.push((
            ItemRole::Review,
            items::review_put(tables.transactions, tx, assessment, now)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::ledger::{MAX_TRANSACT_ITEMS, build_effect};
    use crate::transaction::{AccountNumber, Currency, IdempotencyKey, TransactionType};

    const TABLES: Tables<'static> = Tables {
        accounts: "a",
        transactions: "t",
    };

    fn transfer() -> Transaction {
        Transaction {
            transaction_id: Uuid::now_v7(),
            kind: TransactionType::Transfer,
            source_account: Some(AccountNumber::parse("1111111111").unwrap()),
            target_account: Some(AccountNumber::parse("2222222222").unwrap()),
            amount: Some(rust_decimal::Decimal::new(100, 2)),
            currency: Currency::from_code("USD").unwrap(),
            timestamp: OffsetDateTime::UNIX_EPOCH,
            idempotency_key: IdempotencyKey::parse("k").unwrap(),
            principal: None,
            target_currency: None,
        }
    }

    fn roles(rules: &RiskRules, decision: Decision) -> Vec<ItemRole> {
        let assessment = Assessment {
            score: 0,
            decision,
            fired: Vec::new(),
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        decision_items(
            TABLES,
            rules,
            &transfer(),
            &assessment,
            &VelocitySnapshot::default(),
            None,
            now,
        )
        .unwrap()
        .into_iter()
        .map(|(role, _)| role)
        .collect()
    }

    #[test]
    fn each_decision_attaches_its_items_and_fits_one_transaction() {
        let with_velocity = rules::parse(
            "r.yaml",
            "apiVersion: ballast.dev/v1\nkind: RiskRules\nthresholds: { hold: 1, decline: 2 }\n\
             velocity: [{ name: v, window: 60s, maxCount: 1, score: 1 }]\n",
        )
        .unwrap();
        use ItemRole::{Alert, Analysis, Review, Velocity};
        assert_eq!(
            roles(&with_velocity, Decision::Approve),
            [Velocity, Analysis]
        );
        assert_eq!(
            roles(&with_velocity, Decision::Hold),
            [Velocity, Analysis, Alert, Review]
        );
        assert_eq!(roles(&with_velocity, Decision::Decline), [Analysis, Alert]);
        // Without a rule that reads velocity, no velocity item is read or written.
        let without = RiskRules {
            velocity: Vec::new(),
            ..with_velocity.clone()
        };
        assert_eq!(roles(&without, Decision::Hold), [Analysis, Alert, Review]);
        // The largest plan: a movement with every risk item.
        let mut plan = build_effect(TABLES, &transfer(), OffsetDateTime::UNIX_EPOCH).unwrap();
        let assessment = Assessment {
            score: 0,
            decision: Decision::Approve,
            fired: Vec::new(),
        };
        plan.attach(
            decision_items(
                TABLES,
                &with_velocity,
                &transfer(),
                &assessment,
                &VelocitySnapshot::default(),
                None,
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap(),
        );
        assert!(plan.items.len() <= 10 && 10 < MAX_TRANSACT_ITEMS);
        plan.check_size().unwrap();
    }
}
