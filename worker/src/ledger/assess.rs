//! A money movement scored by the risk rules before it is applied (see [`crate::risk`]): read
//! the debited account's velocity and META items, score, write the decision in one
//! TransactWriteItems, and read again when the velocity was stale.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::build::{ItemRole, build_result};
use super::model::{Item, OWNER, Outcome, PK, opt_s, s};
use super::{Cancelled, DeclineReason, Ledger, LedgerError, ResultRecord, hold_checks};
use crate::risk::{
    AccountFacts, Decision, RiskRules, assess, decision_items, held_record, items,
    velocity_from_item,
};
use crate::store::keys::velocity_pk;
use crate::transaction::{AccountNumber, Transaction};

/// How often a decision is scored again because another worker moved the same account's
/// velocity first, before the message is left for redelivery (transient).
pub const MAX_STALE_ATTEMPTS: usize = 8;

impl Ledger {
    /// [`Ledger::apply`] with risk rules: one TransactWriteItems per decision.
    pub(super) async fn apply_assessed(
        &self,
        tx: &Transaction,
        rules: &RiskRules,
    ) -> Result<Outcome, LedgerError> {
        let debit = tx.debit_account();
        for attempt in 1..=MAX_STALE_ATTEMPTS {
            let (velocity_item, account_item) =
                tokio::try_join!(self.read_velocity(debit, rules), async {
                    match debit {
                        Some(account) => self.get_account_item(account).await,
                        None => Ok(None),
                    }
                })?;
            let velocity = velocity_from_item(velocity_item.as_ref())?;
            let (facts, owner) = account_facts(account_item.as_ref())?;
            let now = OffsetDateTime::now_utc();
            let assessment = assess(rules, tx, &velocity, facts, now);
            let user_id = tx
                .principal
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .or(owner);
            let (mut plan, outcome) = match assessment.decision {
                // A conversion reads its rate first, and may be declined before any write
                // (nothing moved, so the velocity does not count it).
                Decision::Approve => match self.movement_plan(tx, now).await? {
                    Ok(plan) => (plan, Outcome::Completed),
                    Err(reason) => return self.decline_before_any_write(tx, reason).await,
                },
                // Held only if it could be paid now: the accounts' conditions are checked in
                // the same transaction, and a failed one declines it below (Accounts).
                Decision::Hold => {
                    let mut plan =
                        build_result(self.tables(), &held_record(tx, assessment.score), now)?;
                    plan.attach(hold_checks(self.tables(), tx)?);
                    (plan, Outcome::Held)
                }
                Decision::Decline => {
                    let reason = DeclineReason::RiskDeclined {
                        score: assessment.score,
                    };
                    (
                        build_result(self.tables(), &ResultRecord::declined(tx, &reason), now)?,
                        Outcome::Declined(reason),
                    )
                }
            };
            plan.attach(decision_items(
                self.tables(),
                rules,
                tx,
                &assessment,
                &velocity,
                user_id.as_deref(),
                now,
            )?);
            plan.check_size()?;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    tracing::info!(
                        transaction_id = %tx.transaction_id,
                        decision = assessment.decision.as_str(),
                        score = assessment.score,
                        rules = ?assessment.fired.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
                        "risk decision recorded"
                    );
                    return Ok(outcome);
                }
                Err(err) => err,
            };
            match self.settle_cancelled(tx, &plan.roles, err).await? {
                Cancelled::Settled(outcome) => return Ok(outcome),
                Cancelled::Stale => {
                    tracing::debug!(
                        transaction_id = %tx.transaction_id,
                        attempt,
                        "velocity changed since it was read; scoring again"
                    );
                }
                Cancelled::RateChanged => {
                    tracing::debug!(
                        transaction_id = %tx.transaction_id,
                        attempt,
                        "exchange rate replaced while converting; reading it again"
                    );
                }
                Cancelled::Accounts(failed) => {
                    // The rules approved or held it; the ledger refuses it (a hold that could
                    // not be paid now is declined here, not queued for review). The analysis
                    // is recorded with the decline (the velocity is not: nothing moved).
                    if let Some(reason) = self.decline_reason(tx, failed).await? {
                        let record = ResultRecord::declined(tx, &reason);
                        let mut plan = build_result(self.tables(), &record, now)?;
                        plan.attach([(
                            ItemRole::Analysis,
                            items::analysis_put(self.tables().transactions, tx, &assessment, now)?,
                        )]);
                        return match self.write_plan(plan).await? {
                            true => Ok(Outcome::Declined(reason)),
                            false => self.settle_duplicate(&record).await,
                        };
                    }
                }
            }
        }
        Err(LedgerError::Transient {
            operation: "dynamodb:TransactWriteItems",
            detail: format!(
                "the account's velocity kept changing ({MAX_STALE_ATTEMPTS} attempts); \
                 the message is left for redelivery"
            ),
            source: None,
        })
    }

    /// The velocity item of the debited account (consistent read), when a rule needs it.
    async fn read_velocity(
        &self,
        debit: Option<&AccountNumber>,
        rules: &RiskRules,
    ) -> Result<Option<Item>, LedgerError> {
        let Some(account) = debit.filter(|_| rules.needs_velocity()) else {
            return Ok(None);
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.transactions_table)
            .key(PK, s(velocity_pk(account)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }
}

/// The account's opening time and owner from its META item (none for a missing account: the
/// ledger declines it anyway).
fn account_facts(item: Option<&Item>) -> Result<(AccountFacts, Option<String>), LedgerError> {
    let Some(item) = item else {
        return Ok((AccountFacts::default(), None));
    };
    let created_at = opt_s(item, "created_at")?
        .and_then(|text| time::OffsetDateTime::parse(text, &Rfc3339).ok());
    let owner = opt_s(item, OWNER)?.map(str::to_owned);
    Ok((AccountFacts { created_at }, owner))
}
