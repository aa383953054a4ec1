//! Pure request builders and response interpreters of the ledger (no I/O), one file per
//! concept:
//!
//! - [`items`]: the item layouts (account META key, conditional balance updates, ledger
//!   entries, `TXN#` results, `IDEM#` records) and the conditions on them;
//! - [`plans`]: the TransactWriteItems of a money movement, a result and an account opening;
//! - [`conversion`]: the TransactWriteItems of a cross-currency movement (both legs through the
//!   FX positions, the rate's condition check);
//! - [`verdict`]: what a cancelled TransactWriteItems means, and why an account declines;
//! - [`history`]: the sort-key range and the cursor of an account's history.

mod conversion;
mod history;
mod items;
mod plans;
mod verdict;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

pub use conversion::{FX_SHARDS, build_conversion};
pub use history::{decode_cursor, encode_cursor, history_bounds};
pub use items::{
    CLOSE_CONDITION, CLOSE_UPDATE, CREDIT_CONDITION, CREDIT_UPDATE, DEBIT_CONDITION,
    DEBIT_OWNED_CONDITION, DEBIT_UPDATE, NOT_EXISTS, ResultRecord, account_meta_key,
    balance_update, entry_item,
};
pub use plans::{build_create_account, build_effect, build_result, hold_checks};
pub use verdict::{
    CancellationVerdict, FailedAccount, TRANSIENT_CANCELLATION_CODES, balance_check_record,
    classify_account, interpret_cancellation, owner_mismatch,
};

use super::LedgerError;
use super::model::Item;
use crate::transaction::AccountNumber;

/// Names of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables<'a> {
    /// Accounts + ledger entries (pk, sk).
    pub accounts: &'a str,
    /// Results + idempotency records (pk).
    pub transactions: &'a str,
}

/// What each item of a TransactWriteItems request is, in request order (cancellation reasons
/// come back in the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRole {
    /// `IDEM#<key>` put.
    Idempotency,
    /// `TXN#<id>` put.
    Result,
    /// Conditional balance decrease.
    Debit(AccountNumber),
    /// Conditional balance increase.
    Credit(AccountNumber),
    /// Ledger entry put.
    Entry,
    /// Account META put (create_account).
    AccountMeta,
    /// Risk velocity state put, conditional on the version read ([`crate::risk`]).
    Velocity,
    /// Risk analysis record put.
    Analysis,
    /// Risk alert record put.
    Alert,
    /// Review of a held transaction: its put, or its decision (conditional on PENDING).
    Review,
    /// Audit record put.
    Audit,
    /// Update of an FX position shard (a conversion).
    FxPosition,
    /// Condition check on the exchange rate a conversion read.
    RateCheck,
    /// Condition check of a held movement on one of its accounts (see
    /// [`hold_checks`](plans::hold_checks)): failed, it declines like the debit or credit.
    AccountCheck {
        /// The account.
        account: AccountNumber,
        /// Whether the movement debits or credits it.
        direction: crate::ledger::model::Direction,
    },
}

/// One TransactWriteItems request and the role of each item.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// The items, ready for `transact_write_items().set_transact_items(Some(items))`.
    pub items: Vec<TransactWriteItem>,
    /// `roles[i]` describes `items[i]`.
    pub roles: Vec<ItemRole>,
    /// What the result record says beyond the common fields (a conversion's credited leg, rate
    /// and rounding): the approval of a held movement sets them on the held record, whose put
    /// it does not repeat.
    pub result_attributes: Vec<(String, AttributeValue)>,
}

impl WritePlan {
    pub(super) fn new() -> Self {
        WritePlan {
            items: Vec::new(),
            roles: Vec::new(),
            result_attributes: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, role: ItemRole, item: TransactWriteItem) {
        self.roles.push(role);
        self.items.push(item);
    }

    /// Adds items another concern writes in the same transaction (the risk decision's).
    pub fn attach(&mut self, items: impl IntoIterator<Item = (ItemRole, TransactWriteItem)>) {
        for (role, item) in items {
            self.push(role, item);
        }
    }

    /// Drops the items whose role `keep` refuses (an approval applies a held movement without
    /// its IDEM and TXN puts, which the hold already wrote).
    pub fn retain(&mut self, keep: impl Fn(&ItemRole) -> bool) {
        let (roles, items) = std::mem::take(&mut self.roles)
            .into_iter()
            .zip(std::mem::take(&mut self.items))
            .filter(|(role, _)| keep(role))
            .unzip();
        self.roles = roles;
        self.items = items;
    }

    /// Fails when the plan exceeds DynamoDB's limit of items per TransactWriteItems.
    pub fn check_size(&self) -> Result<(), LedgerError> {
        if self.items.len() > MAX_TRANSACT_ITEMS {
            return Err(LedgerError::InvalidInput {
                detail: format!(
                    "{} items in one TransactWriteItems; DynamoDB allows {MAX_TRANSACT_ITEMS}",
                    self.items.len()
                ),
            });
        }
        Ok(())
    }
}

/// DynamoDB's limit of items in one TransactWriteItems.
pub const MAX_TRANSACT_ITEMS: usize = 100;

pub(super) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, LedgerError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NOT_EXISTS)
        .build()
        .map_err(LedgerError::build)?;
    Ok(TransactWriteItem::builder().put(put).build())
}
