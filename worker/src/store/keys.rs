//! Keys and attribute names of every item the worker writes, ledger and ingest alike.
//!
//! Both tables share one `pk` string attribute; the accounts table adds `sk`. The prefix names
//! the item kind, so that one table holds several kinds without collisions:
//!
//! | table        | `pk`                        | written by                  |
//! |--------------|-----------------------------|-----------------------------|
//! | accounts     | `ACCT#<account>`            | ledger (META and entries)   |
//! | accounts     | `RATE#<base>#<quote>`       | `rates load` (exchange rates, `sk = FROM#<valid from>`; the pair's guard, `sk = PAIR`) |
//! | accounts     | `FX#<currency>`             | ledger (FX position shards, `sk = POSITION#<n>`) |
//! | accounts     | `BILLS#<owner>`             | bill-payment API (payees `sk = PAYEE#<id>`, schedules `sk = SCHEDULE#<id>`) |
//! | accounts     | `BILLDUE#<shard>`           | bill payments (due index, `sk = <next due date>#<schedule id>`) |
//! | transactions | `TXN#<transaction id>`      | ledger (results)            |
//! | transactions | `IDEM#<idempotency key>`    | ledger (idempotency record) |
//! | transactions | `INGEST#<idempotency key>`  | ingest API                  |
//! | transactions | `INGESTID#<transaction id>` | ingest API                  |
//! | transactions | `AUDIT#<audit id>`          | ingest API (audit record)   |
//! | transactions | `POISON#<SQS message id>`   | consumer (poison record)    |
//! | transactions | `VELOCITY#<account>`        | ledger (risk velocity)      |
//! | transactions | `ANALYSIS#<transaction id>` | ledger (risk analysis)      |
//! | transactions | `ALERT#<transaction id>`    | ledger (risk alert)         |
//! | transactions | `REVIEW#<transaction id>`   | ledger (held for review)    |
//!
//! Rates and FX positions live in the accounts table because they need its sort key (the rates of
//! a pair are read as a range by validity; a currency's position is sharded) and are written in
//! the same TransactWriteItems as the accounts they move; a table of their own would add a table
//! to the blueprint, the IAM policies and every place that resolves table names for no gain.
//!
//! Payees and schedules live there too: the sort key lists a principal's items with one Query,
//! and the due index is a sorted range per shard, with no new table or index to provision.
//!
//! These strings are persisted: changing one orphans every item written before. They are
//! byte-for-byte those of the code that first wrote them (no migration).

use uuid::Uuid;

use crate::transaction::{AccountNumber, Currency, Subject};

/// Partition key attribute (both tables).
pub const PK: &str = "pk";
/// Sort key attribute (accounts table).
pub const SK: &str = "sk";
/// Sort key of an account's metadata item.
pub const META: &str = "META";
/// Counterparty recorded on entries of money entering or leaving the bank.
pub const EXTERNAL: &str = "EXTERNAL";
/// Attribute of an account's META item holding its owner (the `sub` of the token that opened it).
pub const OWNER: &str = "owner";
/// Entry/result type used for the opening balance written by `create_account`.
pub const OPENING_BALANCE: &str = "OPENING_BALANCE";

/// Prefix of a pair's exchange rates.
pub const RATE_PREFIX: &str = "RATE#";
/// Sort-key prefix of one exchange rate (followed by its fixed-width `valid_from`).
pub const RATE_FROM_PREFIX: &str = "FROM#";
/// Sort key of a pair's guard item (bumped by every `rates load` of the pair).
pub const RATE_PAIR_SK: &str = "PAIR";
/// Prefix of a currency's FX position.
pub const FX_PREFIX: &str = "FX#";
/// Sort-key prefix of one shard of an FX position (followed by the shard number).
pub const FX_POSITION_PREFIX: &str = "POSITION#";

/// Prefix of a principal's bill-payment items.
pub const BILLS_PREFIX: &str = "BILLS#";
/// Sort-key prefix of a payee.
pub const PAYEE_PREFIX: &str = "PAYEE#";
/// Sort-key prefix of a payment schedule.
pub const SCHEDULE_PREFIX: &str = "SCHEDULE#";
/// Prefix of a shard of the bill due index.
pub const BILL_DUE_PREFIX: &str = "BILLDUE#";

/// `BILLS#<owner>`.
pub fn bills_pk(owner: &Subject) -> String {
    format!("{BILLS_PREFIX}{}", owner.as_str())
}

/// `PAYEE#<payee id>`.
pub fn payee_sk(payee_id: Uuid) -> String {
    format!("{PAYEE_PREFIX}{}", payee_id.hyphenated())
}

/// `SCHEDULE#<schedule id>`.
pub fn schedule_sk(schedule_id: Uuid) -> String {
    format!("{SCHEDULE_PREFIX}{}", schedule_id.hyphenated())
}

/// `BILLDUE#<shard>`.
pub fn bill_due_pk(shard: u8) -> String {
    format!("{BILL_DUE_PREFIX}{shard}")
}

/// `<YYYY-MM-DD>#<schedule id>`: sorted by date.
pub fn bill_due_sk(due: time::Date, schedule_id: Uuid) -> String {
    format!(
        "{}#{}",
        crate::bills::format_date(due),
        schedule_id.hyphenated()
    )
}

/// `RATE#<base>#<quote>`.
pub fn rate_pk(base: Currency, quote: Currency) -> String {
    format!("{RATE_PREFIX}{}#{}", base.code(), quote.code())
}

/// `FROM#<fixed-width valid_from>`.
pub fn rate_sk(valid_from_sort_timestamp: &str) -> String {
    format!("{RATE_FROM_PREFIX}{valid_from_sort_timestamp}")
}

/// `FX#<currency>`.
pub fn fx_pk(currency: Currency) -> String {
    format!("{FX_PREFIX}{}", currency.code())
}

/// `POSITION#<shard>`.
pub fn fx_position_sk(shard: u8) -> String {
    format!("{FX_POSITION_PREFIX}{shard}")
}

/// `ACCT#<account_id>`.
pub fn account_pk(account: &AccountNumber) -> String {
    format!("ACCT#{account}")
}

/// `TXN#<transaction_id>`.
pub fn result_pk(transaction_id: Uuid) -> String {
    format!("TXN#{}", transaction_id.hyphenated())
}

/// `IDEM#<idempotency_key>`.
pub fn idempotency_pk(key: &str) -> String {
    format!("IDEM#{key}")
}

/// Prefix of a transaction's result.
pub const RESULT_PREFIX: &str = "TXN#";

/// Prefix of the ingest record of an idempotency key.
pub const INGEST_PREFIX: &str = "INGEST#";
/// Prefix of the ingest item that maps a transaction id to its idempotency key.
pub const INGEST_ID_PREFIX: &str = "INGESTID#";
/// Prefix of an audit record.
pub const AUDIT_PREFIX: &str = "AUDIT#";
/// Prefix of the record of a poison (malformed) message.
pub const POISON_PREFIX: &str = "POISON#";

/// Prefix of an account's risk velocity state.
pub const VELOCITY_PREFIX: &str = "VELOCITY#";
/// Prefix of a transaction's risk analysis.
pub const ANALYSIS_PREFIX: &str = "ANALYSIS#";
/// Prefix of a risk alert.
pub const ALERT_PREFIX: &str = "ALERT#";
/// Prefix of a held transaction's review.
pub const REVIEW_PREFIX: &str = "REVIEW#";

/// `VELOCITY#<account>`.
pub fn velocity_pk(account: &AccountNumber) -> String {
    format!("{VELOCITY_PREFIX}{account}")
}

/// `ANALYSIS#<transaction id>`.
pub fn analysis_pk(transaction_id: Uuid) -> String {
    format!("{ANALYSIS_PREFIX}{}", transaction_id.hyphenated())
}

/// `ALERT#<transaction id>`.
pub fn alert_pk(transaction_id: Uuid) -> String {
    format!("{ALERT_PREFIX}{}", transaction_id.hyphenated())
}

/// `REVIEW#<transaction id>`.
pub fn review_pk(transaction_id: Uuid) -> String {
    format!("{REVIEW_PREFIX}{}", transaction_id.hyphenated())
}

/// `INGEST#<idempotency key>`.
pub fn ingest_pk(key: &str) -> String {
    format!("{INGEST_PREFIX}{key}")
}

/// `INGESTID#<transaction id>` (hyphenated, lower case).
pub fn ingest_id_pk(transaction_id: Uuid) -> String {
    format!("{INGEST_ID_PREFIX}{}", transaction_id.hyphenated())
}

/// `AUDIT#<audit id>`.
pub fn audit_pk(audit_id: &str) -> String {
    format!("{AUDIT_PREFIX}{audit_id}")
}

/// `POISON#<SQS message id>`.
pub fn poison_pk(message_id: &str) -> String {
    format!("{POISON_PREFIX}{message_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The persisted layouts, spelt out: a change here means data written before is lost.
    #[test]
    fn keys_are_byte_identical_to_the_stored_layout() {
        let id = Uuid::parse_str("0190a6f2-7b1c-7def-8abc-0123456789ab").unwrap();
        let account = AccountNumber::parse("1234567890").unwrap();
        assert_eq!(account_pk(&account), "ACCT#1234567890");
        assert_eq!(result_pk(id), "TXN#0190a6f2-7b1c-7def-8abc-0123456789ab");
        assert_eq!(idempotency_pk("k-1"), "IDEM#k-1");
        assert_eq!(ingest_pk("k-1"), "INGEST#k-1");
        assert_eq!(
            ingest_id_pk(id),
            "INGESTID#0190a6f2-7b1c-7def-8abc-0123456789ab"
        );
        assert_eq!(audit_pk("a"), "AUDIT#a");
        assert_eq!(poison_pk("m-1"), "POISON#m-1");
        assert_eq!(velocity_pk(&account), "VELOCITY#1234567890");
        assert_eq!(
            analysis_pk(id),
            "ANALYSIS#0190a6f2-7b1c-7def-8abc-0123456789ab"
        );
        assert_eq!(alert_pk(id), "ALERT#0190a6f2-7b1c-7def-8abc-0123456789ab");
        assert_eq!(review_pk(id), "REVIEW#0190a6f2-7b1c-7def-8abc-0123456789ab");
        assert_eq!((PK, SK, META, OWNER), ("pk", "sk", "META", "owner"));
        let usd = Currency::from_code("USD").unwrap();
        let eur = Currency::from_code("EUR").unwrap();
        assert_eq!(rate_pk(usd, eur), "RATE#USD#EUR");
        assert_eq!(
            rate_sk("2026-12-04T00:00:00.000000000Z"),
            "FROM#2026-12-04T00:00:00.000000000Z"
        );
        assert_eq!(RATE_PAIR_SK, "PAIR");
        assert_eq!(fx_pk(eur), "FX#EUR");
        assert_eq!(fx_position_sk(7), "POSITION#7");
        let owner = Subject::parse("alice").unwrap();
        assert_eq!(bills_pk(&owner), "BILLS#alice");
        assert_eq!(payee_sk(id), "PAYEE#0190a6f2-7b1c-7def-8abc-0123456789ab");
        assert_eq!(
            schedule_sk(id),
            "SCHEDULE#0190a6f2-7b1c-7def-8abc-0123456789ab"
        );
        assert_eq!(bill_due_pk(3), "BILLDUE#3");
        let date = time::Date::from_calendar_date(2027, time::Month::February, 28).unwrap();
        assert_eq!(
            bill_due_sk(date, id),
            "2027-02-28#0190a6f2-7b1c-7def-8abc-0123456789ab"
        );
    }
}
