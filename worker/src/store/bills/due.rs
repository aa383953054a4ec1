//! The bill due index (see [`super`]): `pk = BILLDUE#<shard>`, `sk = <due date>#<schedule id>`
//! entries, one per schedule's next occurrence, read by the runner through the sparse index
//! [`BILLS_DUE_INDEX`] while they are unsettled, settled (out of the index, [`EXPIRES_AT`] set
//! for the table's TTL) in the transaction that advances or cancels their schedule.

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use ballast_aws::{SdkResultExt, classify};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::super::keys::{PK, SK, bill_due_pk, bill_due_sk};
use super::super::{Item, StoreError, opt_s, s};
use super::corrupt;
use crate::bills::{format_date, parse_date};
use crate::ledger::Ledger;
use crate::transaction::Subject;

/// Number of due-index shards.
pub const BILL_DUE_SHARDS: u8 = 4;
/// The sparse index of the accounts table holding the unsettled due entries
/// (`blueprints/banking.yaml`).
pub const BILLS_DUE_INDEX: &str = "bills-due";
/// Hash key of [`BILLS_DUE_INDEX`] (`BILLDUE#<shard>`, present while the entry is unsettled).
pub const DUE_QUEUE: &str = "due_queue";
/// Range key of [`BILLS_DUE_INDEX`] (`<due date>#<schedule id>`).
pub const DUE_SK: &str = "due_sk";
/// The accounts table's TTL attribute (epoch seconds): set on settled due entries only.
pub const EXPIRES_AT: &str = "expires_at";
/// How long a settled due entry stays before the table's TTL deletes it (for an operator
/// looking at a recent occurrence; the schedule's `past` is the record).
pub const HANDLED_RETENTION: time::Duration = time::Duration::days(7);

/// The due shard of a schedule (from its id's SHA-256).
pub fn due_shard(schedule_id: Uuid) -> u8 {
    let digest = Sha256::digest(schedule_id.as_bytes());
    digest.first().copied().unwrap_or(0) % BILL_DUE_SHARDS
}

pub(super) fn due_item(owner: &Subject, schedule_id: Uuid, due: time::Date) -> Item {
    let (pk, sk) = (
        bill_due_pk(due_shard(schedule_id)),
        bill_due_sk(due, schedule_id),
    );
    Item::from([
        (DUE_QUEUE.to_owned(), s(&pk)),
        (DUE_SK.to_owned(), s(&sk)),
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(sk)),
        ("owner".to_owned(), s(owner.as_str())),
        (
            "schedule_id".to_owned(),
            s(schedule_id.hyphenated().to_string()),
        ),
    ])
}

fn due_key(schedule_id: Uuid, due: time::Date) -> Item {
    Item::from([
        (PK.to_owned(), s(bill_due_pk(due_shard(schedule_id)))),
        (SK.to_owned(), s(bill_due_sk(due, schedule_id))),
    ])
}

/// What settles a due entry: marked `handled`, out of [`BILLS_DUE_INDEX`] (so no runner reads
/// it again) and deleted by the table's TTL [`HANDLED_RETENTION`] after now (the wall clock:
/// housekeeping, not the runner's business date).
const SETTLE_DUE: &str = "SET handled = :true, #expires = :expires REMOVE #queue, #due_sk";

fn settle_due(builder: UpdateBuilder) -> UpdateBuilder {
    let expires = time::OffsetDateTime::now_utc()
        .checked_add(HANDLED_RETENTION)
        .map_or(i64::MAX, time::OffsetDateTime::unix_timestamp);
    builder
        .update_expression(SETTLE_DUE)
        .expression_attribute_names("#expires", EXPIRES_AT)
        .expression_attribute_names("#queue", DUE_QUEUE)
        .expression_attribute_names("#due_sk", DUE_SK)
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
}

/// Settles a due entry ([`SETTLE_DUE`]) in the transaction that advances or cancels its
/// schedule.
pub(super) fn handle_due(
    table: &str,
    schedule_id: Uuid,
    due: time::Date,
) -> Result<TransactWriteItem, StoreError> {
    let update = settle_due(Update::builder())
        .table_name(table)
        .set_key(Some(due_key(schedule_id, due)))
        .build()
        .map_err(StoreError::build("bill due entry"))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A due index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    /// The schedule's owner.
    pub owner: Subject,
    /// The schedule.
    pub schedule_id: Uuid,
    /// The due date the entry is filed under.
    pub due: time::Date,
}

/// One page of a shard's unsettled due entries (see [`due_page`]).
#[derive(Debug)]
pub struct DuePage {
    /// The entries, oldest first (an unreadable one as its error).
    pub entries: Vec<Result<DueEntry, StoreError>>,
    /// The `due_sk` of the last entry read: where the next page starts.
    pub last: Option<String>,
    /// Whether DynamoDB has more (its `LastEvaluatedKey`).
    pub more: bool,
}

/// One Query of [`BILLS_DUE_INDEX`] for shard `shard`: unsettled entries due on or before
/// `today`, oldest first, at most `limit`, from `from` (a `due_sk`, inclusive) on.
///
/// The runner pages by the last `due_sk` it read rather than by `ExclusiveStartKey` because it
/// settles entries as it goes: the entry a page ended on may have left the index by the time
/// the next page is read, and an inclusive bound on the key the index is sorted by does not
/// depend on it still being there. The page therefore starts with `from` itself when that entry
/// is still unsettled; the caller skips it. The index is eventually consistent: an entry
/// settled a moment ago may still be listed (the runner reads the schedule consistently and
/// finds it no longer due), one written a moment ago may be missed (the next pass finds it).
#[tracing::instrument(skip(ledger))]
pub async fn due_page(
    ledger: &Ledger,
    shard: u8,
    today: time::Date,
    from: Option<&str>,
    limit: i32,
) -> Result<DuePage, StoreError> {
    // `~` sorts after every character of a UUID, so the bound includes every entry of `today`.
    let upper = format!("{}#~", format_date(today));
    let query = ledger
        .client()
        .query()
        .table_name(ledger.tables().accounts)
        .index_name(BILLS_DUE_INDEX)
        .expression_attribute_names("#queue", DUE_QUEUE)
        .expression_attribute_names("#sk", DUE_SK)
        .expression_attribute_values(":queue", s(bill_due_pk(shard)))
        .expression_attribute_values(":upper", s(&upper))
        .limit(limit);
    let query = match from {
        Some(from) => query
            .key_condition_expression("#queue = :queue AND #sk BETWEEN :from AND :upper")
            .expression_attribute_values(":from", s(from)),
        None => query.key_condition_expression("#queue = :queue AND #sk <= :upper"),
    };
    let out = query.send().await.classify("dynamodb:Query")?;
    Ok(DuePage {
        entries: out.items().iter().map(due_entry).collect(),
        last: out
            .items()
            .last()
            .and_then(|item| opt_s(item, DUE_SK))
            .map(str::to_owned),
        more: out.last_evaluated_key().is_some(),
    })
}

/// The due date of the oldest unsettled entry due on or before `today` (one Query of
/// [`BILLS_DUE_INDEX`] per shard, one item each): the oldest due-but-unpaid occurrence.
#[tracing::instrument(skip(ledger))]
pub async fn oldest_due(
    ledger: &Ledger,
    today: time::Date,
) -> Result<Option<time::Date>, StoreError> {
    let mut oldest: Option<time::Date> = None;
    for shard in 0..BILL_DUE_SHARDS {
        let page = due_page(ledger, shard, today, None, 1).await?;
        if let Some(entry) = page.entries.into_iter().next() {
            let due = entry?.due;
            oldest = Some(oldest.map_or(due, |o| o.min(due)));
        }
    }
    Ok(oldest)
}

/// Seconds from 00:00 UTC of [`oldest_due`]'s date to `now` (`None`: nothing unpaid).
pub async fn oldest_due_age(
    ledger: &Ledger,
    now: time::OffsetDateTime,
) -> Result<Option<std::time::Duration>, StoreError> {
    let today = now.to_offset(time::UtcOffset::UTC).date();
    Ok(oldest_due(ledger, today).await?.map(|due| {
        let secs = now
            .unix_timestamp()
            .saturating_sub(due.midnight().assume_utc().unix_timestamp());
        std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }))
}

fn due_entry(item: &Item) -> Result<DueEntry, StoreError> {
    let pk = opt_s(item, PK).unwrap_or_default();
    let sk = opt_s(item, SK).unwrap_or_default();
    Ok(DueEntry {
        owner: opt_s(item, "owner")
            .and_then(|o| Subject::parse(o).ok())
            .ok_or_else(|| corrupt(pk, "owner"))?,
        schedule_id: opt_s(item, "schedule_id")
            .and_then(|t| Uuid::try_parse(t).ok())
            .ok_or_else(|| corrupt(pk, "schedule_id"))?,
        due: sk
            .get(..10)
            .and_then(parse_date)
            .ok_or_else(|| corrupt(pk, "sk"))?,
    })
}

/// Settles a due entry whose schedule no longer expects it (cancelled, advanced, gone), if it
/// still exists (an UpdateItem must not create an entry the TTL already deleted).
#[tracing::instrument(skip_all, fields(schedule_id = %entry.schedule_id))]
pub async fn drop_due(ledger: &Ledger, entry: &DueEntry) -> Result<(), StoreError> {
    let update = settle_due(Update::builder());
    let result = ledger
        .client()
        .update_item()
        .table_name(ledger.tables().accounts)
        .set_key(Some(due_key(entry.schedule_id, entry.due)))
        .set_update_expression(update.get_update_expression().clone())
        .set_expression_attribute_names(update.get_expression_attribute_names().clone())
        .set_expression_attribute_values(update.get_expression_attribute_values().clone())
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(classify("dynamodb:UpdateItem", err).into()),
    }
}
