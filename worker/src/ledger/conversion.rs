//! The ledger's side of currency conversion: reading the rate valid at the posting time and
//! choosing the TransactWriteItems of a movement (a conversion or a same-currency one).

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::build::{WritePlan, build_conversion, build_effect};
use super::model::{DeclineReason, PK, SK, rfc3339, sort_timestamp};
use super::{Ledger, LedgerError};
use crate::fx::{Rate, convert};
use crate::store::keys::{RATE_FROM_PREFIX, rate_pk, rate_sk};
use crate::transaction::{Currency, Transaction};

impl Ledger {
    /// The `base`→`quote` rate valid at `at`, if any (a strongly consistent read of the latest
    /// rate starting at or before `at`; windows of a pair never overlap, so it is the only
    /// candidate).
    #[tracing::instrument(skip(self))]
    pub async fn rate_at(
        &self,
        base: Currency,
        quote: Currency,
        at: OffsetDateTime,
    ) -> Result<Option<Rate>, LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.accounts_table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lowest AND :at")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(rate_pk(base, quote)))
            .expression_attribute_values(":lowest", AttributeValue::S(RATE_FROM_PREFIX.into()))
            .expression_attribute_values(":at", AttributeValue::S(rate_sk(&sort_timestamp(at)?)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:Query", e))?;
        let Some(item) = out.items().first() else {
            return Ok(None);
        };
        let rate = Rate::from_item(item)?;
        Ok(rate.valid_at(at).then_some(rate))
    }

    /// The TransactWriteItems of `tx`'s movement posted at `now`, or why it is declined before
    /// any write (a conversion without a valid rate, or whose result is not an amount).
    pub(super) async fn movement_plan(
        &self,
        tx: &Transaction,
        now: OffsetDateTime,
    ) -> Result<Result<WritePlan, DeclineReason>, LedgerError> {
        let Some(quote) = tx.conversion() else {
            return Ok(Ok(build_effect(self.tables(), tx, now)?));
        };
        let amount = tx.amount.ok_or_else(|| LedgerError::InvalidInput {
            detail: format!("{} has no amount to convert", tx.kind),
        })?;
        let Some(rate) = self.rate_at(tx.currency, quote, now).await? else {
            return Ok(Err(DeclineReason::NoRate {
                base: tx.currency,
                quote,
                at: rfc3339(now)?,
            }));
        };
        let converted = match convert(amount, rate.rate, quote) {
            Ok(converted) => converted,
            Err(e) => {
                return Ok(Err(DeclineReason::ConversionOutOfRange {
                    detail: e.to_string(),
                }));
            }
        };
        Ok(Ok(build_conversion(
            self.tables(),
            tx,
            &rate,
            &converted,
            now,
        )?))
    }
}
