//! Pure request builders and response interpreters (no I/O).

use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use super::LedgerError;
use super::model::{
    AccountStatus, DeclineReason, Direction, EXTERNAL, Item, META, OPENING_BALANCE, OWNER, PK,
    ResultStatus, SK, account_pk, entry_sk, get_n, get_s, idempotency_pk, n, result_pk, rfc3339, s,
    sort_timestamp,
};
use crate::transaction::{
    AccountNumber, Currency, Subject, Transaction, TransactionType, check_amount,
};

/// Condition on items that must not exist yet (idempotency, result and entry puts).
pub const NOT_EXISTS: &str = "attribute_not_exists(pk)";
/// Condition on the debited account.
pub const DEBIT_CONDITION: &str =
    "attribute_exists(pk) AND #status = :open AND #currency = :ccy AND #balance >= :amount";
/// Condition on the debited account of a message that carries a principal: the same as
/// [`DEBIT_CONDITION`], and the account's owner is the principal. Checked inside the same
/// TransactWriteItems, so there is no window between an ownership read and the debit.
pub const DEBIT_OWNED_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND \
     #currency = :ccy AND #balance >= :amount AND #owner = :principal";
/// Update of the debited account.
pub const DEBIT_UPDATE: &str = "SET #balance = #balance - :amount, #version = #version + :one";
/// Condition on the credited account.
pub const CREDIT_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND #currency = :ccy";
/// Update of the credited account.
pub const CREDIT_UPDATE: &str = "SET #balance = #balance + :amount, #version = #version + :one";
/// Condition for closing an account.
pub const CLOSE_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND #balance = :zero";
/// Update closing an account.
pub const CLOSE_UPDATE: &str = "SET #status = :closed, #version = #version + :one";

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
}

/// One TransactWriteItems request and the role of each item.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// The items, ready for `transact_write_items().set_transact_items(Some(items))`.
    pub items: Vec<TransactWriteItem>,
    /// `roles[i]` describes `items[i]`.
    pub roles: Vec<ItemRole>,
}

impl WritePlan {
    fn new() -> Self {
        WritePlan {
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn push(&mut self, role: ItemRole, item: TransactWriteItem) {
        self.roles.push(role);
        self.items.push(item);
    }
}

fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, LedgerError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NOT_EXISTS)
        .build()
        .map_err(LedgerError::build)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn account_key(account: &AccountNumber) -> Item {
    Item::from([(PK.into(), s(account_pk(account))), (SK.into(), s(META))])
}

/// The key of an account's META item.
pub fn account_meta_key(account: &AccountNumber) -> Item {
    account_key(account)
}

/// Conditional balance update of one account (see [`DEBIT_CONDITION`], [`CREDIT_CONDITION`]).
/// A debit with a `principal` also requires the account's owner to be that principal
/// ([`DEBIT_OWNED_CONDITION`]); credits never do (anyone may pay into an account).
pub fn balance_update(
    table: &str,
    account: &AccountNumber,
    direction: Direction,
    currency: Currency,
    amount: Decimal,
    principal: Option<&Subject>,
) -> Result<Update, LedgerError> {
    let (condition, update, principal) = match (direction, principal) {
        (Direction::Debit, None) => (DEBIT_CONDITION, DEBIT_UPDATE, None),
        (Direction::Debit, Some(p)) => (DEBIT_OWNED_CONDITION, DEBIT_UPDATE, Some(p)),
        (Direction::Credit, _) => (CREDIT_CONDITION, CREDIT_UPDATE, None),
    };
    let builder = match principal {
        Some(p) => Update::builder()
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_values(":principal", s(p.as_str())),
        None => Update::builder(),
    };
    builder
        .table_name(table)
        .set_key(Some(account_key(account)))
        .condition_expression(condition)
        .update_expression(update)
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#currency", "currency")
        .expression_attribute_names("#balance", "balance")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(":open", s(AccountStatus::Open.as_str()))
        .expression_attribute_values(":ccy", s(currency.code()))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(LedgerError::build)
}

/// A ledger entry item.
#[allow(clippy::too_many_arguments)]
pub fn entry_item(
    account: &AccountNumber,
    transaction_id: Uuid,
    kind: &str,
    direction: Direction,
    amount: Decimal,
    currency: Currency,
    counterparty: &str,
    posted_at: OffsetDateTime,
    timestamp: Option<OffsetDateTime>,
) -> Result<Item, LedgerError> {
    let mut item = Item::from([
        (PK.into(), s(account_pk(account))),
        (
            SK.into(),
            s(entry_sk(posted_at, transaction_id, direction)?),
        ),
        (
            "transaction_id".into(),
            s(transaction_id.hyphenated().to_string()),
        ),
        ("type".into(), s(kind)),
        ("direction".into(), s(direction.as_str())),
        ("amount".into(), n(amount)),
        ("currency".into(), s(currency.code())),
        ("counterparty".into(), s(counterparty)),
        ("posted_at".into(), s(rfc3339(posted_at)?)),
    ]);
    if let Some(ts) = timestamp {
        item.insert("timestamp".into(), s(rfc3339(ts)?));
    }
    Ok(item)
}

/// The content of a `TXN#<id>` result item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The transaction.
    pub transaction_id: Uuid,
    /// Also written as `IDEM#<key>` when present.
    pub idempotency_key: Option<String>,
    /// COMPLETED, DECLINED or REJECTED.
    pub status: ResultStatus,
    /// Human-readable reason.
    pub reason: Option<String>,
    /// Machine code of the reason.
    pub reason_code: Option<String>,
    /// Transaction type.
    pub kind: Option<String>,
    /// Amount.
    pub amount: Option<Decimal>,
    /// Currency.
    pub currency: Option<Currency>,
    /// Accounts involved, source first.
    pub accounts: Vec<String>,
    /// Balance read by a BALANCE_CHECK.
    pub balance: Option<Decimal>,
    /// The client's timestamp.
    pub timestamp: Option<OffsetDateTime>,
    /// The principal the message acted for, if it carried one.
    pub principal: Option<String>,
}

impl ResultRecord {
    /// A record describing `tx` with the given status.
    pub fn for_transaction(tx: &Transaction, status: ResultStatus) -> Self {
        ResultRecord {
            transaction_id: tx.transaction_id,
            idempotency_key: Some(tx.idempotency_key.as_str().to_owned()),
            status,
            reason: None,
            reason_code: None,
            kind: Some(tx.kind.as_str().to_owned()),
            amount: tx.amount,
            currency: Some(tx.currency),
            accounts: tx.accounts().map(|a| a.as_str().to_owned()).collect(),
            balance: None,
            timestamp: Some(tx.timestamp),
            principal: tx.principal.as_ref().map(|p| p.as_str().to_owned()),
        }
    }

    /// A DECLINED record for `tx`.
    pub fn declined(tx: &Transaction, reason: &DeclineReason) -> Self {
        ResultRecord {
            reason: Some(reason.to_string()),
            reason_code: Some(reason.code().to_owned()),
            ..ResultRecord::for_transaction(tx, ResultStatus::Declined)
        }
    }

    /// The `TXN#<id>` item.
    pub fn to_item(&self, processed_at: OffsetDateTime) -> Result<Item, LedgerError> {
        let mut item = Item::from([
            (PK.into(), s(result_pk(self.transaction_id))),
            (
                "transaction_id".into(),
                s(self.transaction_id.hyphenated().to_string()),
            ),
            ("status".into(), s(self.status.as_str())),
            ("processed_at".into(), s(rfc3339(processed_at)?)),
        ]);
        let mut opt = |name: &str, v: Option<AttributeValue>| {
            if let Some(v) = v {
                item.insert(name.to_owned(), v);
            }
        };
        opt("idempotency_key", self.idempotency_key.clone().map(s));
        opt("reason", self.reason.clone().map(s));
        opt("reason_code", self.reason_code.clone().map(s));
        opt("type", self.kind.clone().map(s));
        opt("amount", self.amount.map(n));
        opt("currency", self.currency.map(|c| s(c.code())));
        opt("balance", self.balance.map(n));
        opt("principal", self.principal.clone().map(s));
        if !self.accounts.is_empty() {
            opt(
                "accounts",
                Some(AttributeValue::L(
                    self.accounts.iter().cloned().map(s).collect(),
                )),
            );
        }
        if let Some(ts) = self.timestamp {
            item.insert("timestamp".into(), s(rfc3339(ts)?));
        }
        Ok(item)
    }
}

fn idempotency_item(
    key: &str,
    transaction_id: Uuid,
    now: OffsetDateTime,
) -> Result<Item, LedgerError> {
    Ok(Item::from([
        (PK.into(), s(idempotency_pk(key))),
        (
            "transaction_id".into(),
            s(transaction_id.hyphenated().to_string()),
        ),
        ("created_at".into(), s(rfc3339(now)?)),
    ]))
}

fn push_records(
    plan: &mut WritePlan,
    tables: Tables<'_>,
    record: &ResultRecord,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    if let Some(key) = &record.idempotency_key {
        plan.push(
            ItemRole::Idempotency,
            put_new(
                tables.transactions,
                idempotency_item(key, record.transaction_id, now)?,
            )?,
        );
    }
    plan.push(
        ItemRole::Result,
        put_new(tables.transactions, record.to_item(now)?)?,
    );
    Ok(())
}

/// IDEM (when the record has a key) + TXN puts, each conditional on not existing. Used for
/// DECLINED, REJECTED and BALANCE_CHECK results.
pub fn build_result(
    tables: Tables<'_>,
    record: &ResultRecord,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    let mut plan = WritePlan::new();
    push_records(&mut plan, tables, record, now)?;
    Ok(plan)
}

/// The single TransactWriteItems request applying a money movement exactly once:
/// IDEM put, TXN put (COMPLETED), debit update, credit update, then one entry per side.
/// Entries are keyed by the posting time `now`; the client's timestamp is an attribute.
pub fn build_effect(
    tables: Tables<'_>,
    tx: &Transaction,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    tx.validate().map_err(|e| LedgerError::InvalidInput {
        detail: e.to_string(),
    })?;
    let amount = tx.amount.ok_or_else(|| LedgerError::InvalidInput {
        detail: format!("{} has no ledger effect", tx.kind),
    })?;
    let mut plan = WritePlan::new();
    push_records(
        &mut plan,
        tables,
        &ResultRecord::for_transaction(tx, ResultStatus::Completed),
        now,
    )?;
    let debit = tx.debit_account();
    let credit = tx.credit_account();
    if let Some(account) = debit {
        let update = balance_update(
            tables.accounts,
            account,
            Direction::Debit,
            tx.currency,
            amount,
            tx.principal.as_ref(),
        )?;
        plan.push(
            ItemRole::Debit(account.clone()),
            TransactWriteItem::builder().update(update).build(),
        );
    }
    if let Some(account) = credit {
        let update = balance_update(
            tables.accounts,
            account,
            Direction::Credit,
            tx.currency,
            amount,
            None,
        )?;
        plan.push(
            ItemRole::Credit(account.clone()),
            TransactWriteItem::builder().update(update).build(),
        );
    }
    let sides = [
        (debit, Direction::Debit, credit),
        (credit, Direction::Credit, debit),
    ];
    for (account, direction, other) in sides {
        let Some(account) = account else { continue };
        let counterparty = other.map_or(EXTERNAL, AccountNumber::as_str);
        let item = entry_item(
            account,
            tx.transaction_id,
            tx.kind.as_str(),
            direction,
            amount,
            tx.currency,
            counterparty,
            now,
            Some(tx.timestamp),
        )?;
        plan.push(ItemRole::Entry, put_new(tables.accounts, item)?);
    }
    Ok(plan)
}

/// Account creation: META put (+ an opening-balance CREDIT entry from `EXTERNAL` and its
/// COMPLETED result, so that entry sums reconcile with the balance). `owner` is stored as the
/// META item's `owner` and never changes.
#[allow(clippy::too_many_arguments)]
pub fn build_create_account(
    tables: Tables<'_>,
    account: &AccountNumber,
    currency: Currency,
    account_type: &str,
    opening_balance: Decimal,
    owner: &Subject,
    opening_transaction_id: Uuid,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    if account_type.is_empty() || account_type.len() > 64 {
        return Err(LedgerError::InvalidInput {
            detail: "account type must be 1 to 64 characters".into(),
        });
    }
    let opening = if opening_balance.is_zero() {
        let mut zero = Decimal::ZERO;
        zero.rescale(currency.minor_units());
        zero
    } else {
        check_amount(opening_balance, currency).map_err(|e| LedgerError::InvalidInput {
            detail: format!("opening balance: {e}"),
        })?
    };
    let mut plan = WritePlan::new();
    let meta = Item::from([
        (PK.into(), s(account_pk(account))),
        (SK.into(), s(META)),
        ("balance".into(), n(opening)),
        ("currency".into(), s(currency.code())),
        ("status".into(), s(AccountStatus::Open.as_str())),
        ("type".into(), s(account_type)),
        ("created_at".into(), s(rfc3339(now)?)),
        ("version".into(), AttributeValue::N("1".into())),
        (OWNER.into(), s(owner.as_str())),
    ]);
    plan.push(ItemRole::AccountMeta, put_new(tables.accounts, meta)?);
    if !opening.is_zero() {
        let entry = entry_item(
            account,
            opening_transaction_id,
            OPENING_BALANCE,
            Direction::Credit,
            opening,
            currency,
            EXTERNAL,
            now,
            None,
        )?;
        plan.push(ItemRole::Entry, put_new(tables.accounts, entry)?);
        let record = ResultRecord {
            transaction_id: opening_transaction_id,
            idempotency_key: None,
            status: ResultStatus::Completed,
            reason: None,
            reason_code: None,
            kind: Some(OPENING_BALANCE.into()),
            amount: Some(opening),
            currency: Some(currency),
            accounts: vec![account.as_str().to_owned()],
            balance: None,
            timestamp: None,
            principal: None,
        };
        push_records(&mut plan, tables, &record, now)?;
    }
    Ok(plan)
}

/// An account whose condition failed in a cancelled transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAccount {
    /// The account.
    pub account: AccountNumber,
    /// Whether it was being debited or credited.
    pub direction: Direction,
    /// The item as it was (`ReturnValuesOnConditionCheckFailure::AllOld`), if returned.
    /// `None` means "not returned": the account may or may not exist.
    pub item: Option<Item>,
}

/// What a `TransactionCanceledException` means for a [`WritePlan`].
#[derive(Debug, Clone, PartialEq)]
pub enum CancellationVerdict {
    /// The idempotency or result item already exists: the transaction was processed before.
    Duplicate,
    /// Conflict with a concurrent transaction or throttling: retry later.
    Transient {
        /// The non-condition failure codes seen.
        codes: Vec<String>,
    },
    /// Account conditions failed, debit side first: classify into a decline.
    Accounts(Vec<FailedAccount>),
    /// Anything else (e.g. an entry item already exists without a result item).
    Fatal {
        /// What happened.
        detail: String,
    },
}

/// Cancellation reason codes that mean "try again".
pub const TRANSIENT_CANCELLATION_CODES: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "InternalServerError",
];

/// Interprets per-item cancellation reasons (same order as `roles`).
pub fn interpret_cancellation(
    roles: &[ItemRole],
    reasons: &[CancellationReason],
) -> CancellationVerdict {
    if roles.len() != reasons.len() {
        return CancellationVerdict::Fatal {
            detail: format!(
                "{} cancellation reasons for {} items",
                reasons.len(),
                roles.len()
            ),
        };
    }
    let failed: Vec<(&ItemRole, &CancellationReason, &str)> = roles
        .iter()
        .zip(reasons)
        .filter_map(|(role, reason)| match reason.code() {
            None | Some("None") => None,
            Some(code) => Some((role, reason, code)),
        })
        .collect();
    let condition_failed =
        |(_, _, code): &&(&ItemRole, &CancellationReason, &str)| *code == "ConditionalCheckFailed";
    if failed
        .iter()
        .filter(condition_failed)
        .any(|(role, _, _)| matches!(role, ItemRole::Idempotency | ItemRole::Result))
    {
        return CancellationVerdict::Duplicate;
    }
    let transient: Vec<String> = failed
        .iter()
        .filter(|(_, _, code)| TRANSIENT_CANCELLATION_CODES.contains(code))
        .map(|(_, _, code)| (*code).to_owned())
        .collect();
    if !transient.is_empty() {
        return CancellationVerdict::Transient { codes: transient };
    }
    let mut accounts = Vec::new();
    for (role, reason, code) in &failed {
        match (role, *code) {
            (ItemRole::Debit(account), "ConditionalCheckFailed") => accounts.push(FailedAccount {
                account: account.clone(),
                direction: Direction::Debit,
                item: reason.item().cloned(),
            }),
            (ItemRole::Credit(account), "ConditionalCheckFailed") => accounts.push(FailedAccount {
                account: account.clone(),
                direction: Direction::Credit,
                item: reason.item().cloned(),
            }),
            (role, code) => {
                return CancellationVerdict::Fatal {
                    detail: format!(
                        "{role:?} failed with {code}: {}",
                        reason.message().unwrap_or("")
                    ),
                };
            }
        }
    }
    if accounts.is_empty() {
        return CancellationVerdict::Fatal {
            detail: "transaction cancelled without a failed item".into(),
        };
    }
    accounts.sort_by_key(|f| f.direction == Direction::Credit);
    CancellationVerdict::Accounts(accounts)
}

/// Why an account refuses a debit (`direction = Some(Debit)` with `amount`), a credit
/// (`Some(Credit)`), or a balance check (`None`). `Ok(None)` means the conditions hold on this
/// item (e.g. it changed since the cancelled attempt).
pub fn classify_account(
    account: &AccountNumber,
    item: Option<&Item>,
    direction: Option<Direction>,
    currency: Currency,
    amount: Option<Decimal>,
) -> Result<Option<DeclineReason>, LedgerError> {
    let Some(item) = item else {
        return Ok(Some(DeclineReason::AccountNotFound {
            account: account.clone(),
        }));
    };
    if get_s(item, "status")? != AccountStatus::Open.as_str() {
        return Ok(Some(DeclineReason::AccountClosed {
            account: account.clone(),
        }));
    }
    let account_currency = get_s(item, "currency")?;
    if account_currency != currency.code() {
        return Ok(Some(DeclineReason::CurrencyMismatch {
            account: account.clone(),
            account_currency: account_currency.to_owned(),
            transaction_currency: currency,
        }));
    }
    if let (Some(Direction::Debit), Some(amount)) = (direction, amount)
        && get_n(item, "balance")? < amount
    {
        return Ok(Some(DeclineReason::InsufficientFunds {
            account: account.clone(),
        }));
    }
    Ok(None)
}

/// [`DeclineReason::NotAccountOwner`] when `principal` is set and the account item's `owner`
/// differs (or is absent: accounts opened before owners existed are reachable only by trusted
/// producers). A missing item is not a mismatch: [`classify_account`] reports it.
pub fn owner_mismatch(
    account: &AccountNumber,
    item: Option<&Item>,
    principal: Option<&Subject>,
) -> Result<Option<DeclineReason>, LedgerError> {
    let (Some(item), Some(principal)) = (item, principal) else {
        return Ok(None);
    };
    let owner = super::model::opt_s(item, OWNER)?;
    Ok(
        (owner != Some(principal.as_str())).then(|| DeclineReason::NotAccountOwner {
            account: account.clone(),
        }),
    )
}

/// The BALANCE_CHECK result for `tx` given the account item read (consistently).
pub fn balance_check_record(
    tx: &Transaction,
    item: Option<&Item>,
) -> Result<ResultRecord, LedgerError> {
    let account = tx
        .balance_account()
        .ok_or_else(|| LedgerError::InvalidInput {
            detail: "not a BALANCE_CHECK".into(),
        })?;
    if tx.kind != TransactionType::BalanceCheck {
        return Err(LedgerError::InvalidInput {
            detail: "not a BALANCE_CHECK".into(),
        });
    }
    match (
        classify_account(account, item, None, tx.currency, None)?,
        item,
    ) {
        (Some(reason), _) => Ok(ResultRecord::declined(tx, &reason)),
        (None, Some(item)) => Ok(ResultRecord {
            balance: Some(get_n(item, "balance")?),
            ..ResultRecord::for_transaction(tx, ResultStatus::Completed)
        }),
        (None, None) => Err(LedgerError::InvalidInput {
            detail: "no account item".into(),
        }),
    }
}

/// Sort-key bounds of a history query: `[ENTRY#<from>, ENTRY#<to>#~]`, both inclusive.
pub fn history_bounds(
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<(String, String), LedgerError> {
    if from > to {
        return Err(LedgerError::InvalidInput {
            detail: "history: `from` is after `to`".into(),
        });
    }
    Ok((
        format!("ENTRY#{}", sort_timestamp(from)?),
        format!("ENTRY#{}#~", sort_timestamp(to)?),
    ))
}

/// Opaque cursor: lowercase hex of the last evaluated sort key.
pub fn encode_cursor(last_evaluated_key: &Item) -> Option<String> {
    let sk = last_evaluated_key.get(SK)?.as_s().ok()?;
    Some(sk.bytes().map(|b| format!("{b:02x}")).collect())
}

/// Decodes a cursor made by [`encode_cursor`] into an `ExclusiveStartKey` for `account`.
pub fn decode_cursor(account: &AccountNumber, cursor: &str) -> Result<Item, LedgerError> {
    let bad = || LedgerError::InvalidInput {
        detail: "invalid history cursor".into(),
    };
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i.checked_add(2)?)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let sk = String::from_utf8(bytes).map_err(|_| bad())?;
    if !sk.starts_with("ENTRY#") {
        return Err(bad());
    }
    Ok(Item::from([
        (PK.into(), s(account_pk(account))),
        (SK.into(), s(sk)),
    ]))
}
