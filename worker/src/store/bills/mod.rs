//! The bill-payment items of the accounts table and their DynamoDB calls (see [`crate::bills`]):
//!
//! - `pk = BILLS#<owner>`, `sk = PAYEE#<payee id>`: a payee;
//! - `pk = BILLS#<owner>`, `sk = SCHEDULE#<schedule id>`: a schedule, the truth about what is
//!   due next (`next_due`, `next_index`), its `status` and its past occurrences (`past`);
//! - `pk = BILLDUE#<shard>`, `sk = <due date>#<schedule id>`: a due index entry. While it is
//!   unsettled it also carries `due_queue` (= its `pk`) and `due_sk` (= its `sk`), the keys of
//!   the sparse index [`BILLS_DUE_INDEX`]: the runner pages through that index per shard
//!   (`due_sk <= <today>#~`), so it reads only unsettled entries, never a scan and never the
//!   entries of past occurrences.
//!
//! The worker's IAM policy grants no `DeleteItem` (deliberately: the ledger tables are never
//! deleted from), so nothing here deletes: a deleted payee is marked `deleted_at` and hidden,
//! and a due entry that is no longer current is settled in the same transaction that advances or
//! cancels its schedule: marked `handled`, taken out of the index (its index keys removed) and
//! given an [`EXPIRES_AT`] time, after which the table's TTL deletes it
//! ([`HANDLED_RETENTION`] after it was settled). No other bill or ledger item carries
//! `expires_at`.
//!
//! The due index lives in [`due`]. The owner is part of every payee and schedule key, so a principal can only ever address its
//! own: another's id simply does not exist under its key. A schedule and its due entry change
//! together in one TransactWriteItems (create, advance, cancel), each conditional on the
//! schedule's `next_due`, so of two runners (or a runner and a cancel) exactly one wins.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use ballast_aws::{SdkResultExt, classify};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::keys::{PAYEE_PREFIX, SCHEDULE_PREFIX};
use super::keys::{PK, SK, bills_pk, payee_sk, schedule_sk};
use super::{Item, StoreError, opt_s, s};
use crate::bills::{
    Occurrence, Payee, Recurrence, Schedule, ScheduleStatus, format_date, parse_date,
};
use crate::ledger::Ledger;
use crate::transaction::{AccountNumber, Currency, Subject};

mod due;

pub use due::{
    BILL_DUE_SHARDS, BILLS_DUE_INDEX, DUE_QUEUE, DUE_SK, DueEntry, DuePage, EXPIRES_AT,
    HANDLED_RETENTION, drop_due, due_page, due_shard, oldest_due, oldest_due_age,
};
use due::{due_item, handle_due};

/// Most items one page of a listing returns (payees or schedules of one principal).
pub const MAX_LISTED: i32 = 500;

pub use super::Outcome;

fn corrupt(pk: &str, field: &'static str) -> StoreError {
    StoreError::Corrupt {
        pk: pk.to_owned(),
        field,
    }
}

fn payee_item(owner: &Subject, p: &Payee) -> Item {
    Item::from([
        (PK.to_owned(), s(bills_pk(owner))),
        (SK.to_owned(), s(payee_sk(p.payee_id))),
        (
            "payee_id".to_owned(),
            s(p.payee_id.hyphenated().to_string()),
        ),
        ("biller_id".to_owned(), s(&p.biller_id)),
        ("account".to_owned(), s(p.account.as_str())),
        ("name".to_owned(), s(&p.name)),
        ("created_at".to_owned(), s(&p.created_at)),
    ])
}

/// Whether a payee item was deleted by its owner.
fn deleted(item: &Item) -> bool {
    item.contains_key("deleted_at")
}

fn payee_from(item: &Item) -> Result<Payee, StoreError> {
    let pk = opt_s(item, PK).unwrap_or_default();
    Ok(Payee {
        payee_id: opt_s(item, "payee_id")
            .and_then(|t| Uuid::try_parse(t).ok())
            .ok_or_else(|| corrupt(pk, "payee_id"))?,
        biller_id: opt_s(item, "biller_id")
            .ok_or_else(|| corrupt(pk, "biller_id"))?
            .to_owned(),
        account: opt_s(item, "account")
            .and_then(|a| AccountNumber::parse(a).ok())
            .ok_or_else(|| corrupt(pk, "account"))?,
        name: opt_s(item, "name").unwrap_or_default().to_owned(),
        created_at: opt_s(item, "created_at").unwrap_or_default().to_owned(),
    })
}

fn occurrence_value(o: &Occurrence) -> AttributeValue {
    let mut map = Item::from([("date".to_owned(), s(format_date(o.date)))]);
    if let Some(id) = o.transaction_id {
        map.insert("transaction_id".to_owned(), s(id.hyphenated().to_string()));
    }
    if let Some(reason) = &o.refused {
        map.insert("refused".to_owned(), s(reason));
    }
    AttributeValue::M(map)
}

fn schedule_item(owner: &Subject, sc: &Schedule) -> Item {
    let mut item = Item::from([
        (PK.to_owned(), s(bills_pk(owner))),
        (SK.to_owned(), s(schedule_sk(sc.schedule_id))),
        (
            "schedule_id".to_owned(),
            s(sc.schedule_id.hyphenated().to_string()),
        ),
        (
            "payee_id".to_owned(),
            s(sc.payee_id.hyphenated().to_string()),
        ),
        ("source_account".to_owned(), s(sc.source_account.as_str())),
        ("target_account".to_owned(), s(sc.target_account.as_str())),
        ("amount".to_owned(), s(sc.amount.to_string())),
        ("currency".to_owned(), s(sc.currency.code())),
        ("recurrence".to_owned(), s(sc.recurrence.as_str())),
        ("first_due".to_owned(), s(format_date(sc.first_due))),
        ("next_index".to_owned(), s(sc.next_index.to_string())),
        ("status".to_owned(), s(sc.status.as_str())),
        (
            "past".to_owned(),
            AttributeValue::L(sc.past.iter().map(occurrence_value).collect()),
        ),
        ("created_at".to_owned(), s(&sc.created_at)),
    ]);
    if let Some(c) = sc.count {
        item.insert("count".to_owned(), s(c.to_string()));
    }
    if let Some(u) = sc.until {
        item.insert("until".to_owned(), s(format_date(u)));
    }
    if let Some(n) = sc.next_due {
        item.insert("next_due".to_owned(), s(format_date(n)));
    }
    item
}

fn schedule_from(item: &Item) -> Result<Schedule, StoreError> {
    let pk = opt_s(item, PK).unwrap_or_default();
    let field = |name: &'static str| opt_s(item, name).ok_or_else(|| corrupt(pk, name));
    let id = |name: &'static str| {
        field(name).and_then(|t| Uuid::try_parse(t).map_err(|_| corrupt(pk, name)))
    };
    let account = |name: &'static str| {
        field(name).and_then(|t| AccountNumber::parse(t).map_err(|_| corrupt(pk, name)))
    };
    let date = |name: &'static str| {
        opt_s(item, name)
            .map(|t| parse_date(t).ok_or_else(|| corrupt(pk, name)))
            .transpose()
    };
    let past = match item.get("past") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                let m = v.as_m().map_err(|_| corrupt(pk, "past"))?;
                Ok(Occurrence {
                    date: opt_s(m, "date")
                        .and_then(parse_date)
                        .ok_or_else(|| corrupt(pk, "past"))?,
                    transaction_id: opt_s(m, "transaction_id")
                        .and_then(|t| Uuid::try_parse(t).ok()),
                    refused: opt_s(m, "refused").map(str::to_owned),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
        _ => Vec::new(),
    };
    Ok(Schedule {
        schedule_id: id("schedule_id")?,
        payee_id: id("payee_id")?,
        source_account: account("source_account")?,
        target_account: account("target_account")?,
        amount: field("amount")?
            .parse::<Decimal>()
            .map_err(|_| corrupt(pk, "amount"))?,
        currency: Currency::from_code(field("currency")?).map_err(|_| corrupt(pk, "currency"))?,
        recurrence: Recurrence::parse(field("recurrence")?)
            .ok_or_else(|| corrupt(pk, "recurrence"))?,
        first_due: date("first_due")?.ok_or_else(|| corrupt(pk, "first_due"))?,
        count: opt_s(item, "count")
            .map(|c| c.parse::<u32>().map_err(|_| corrupt(pk, "count")))
            .transpose()?,
        until: date("until")?,
        next_index: field("next_index")?
            .parse::<u32>()
            .map_err(|_| corrupt(pk, "next_index"))?,
        next_due: date("next_due")?,
        status: ScheduleStatus::parse(field("status")?).ok_or_else(|| corrupt(pk, "status"))?,
        past,
        created_at: opt_s(item, "created_at").unwrap_or_default().to_owned(),
    })
}

fn key(owner: &Subject, sk: String) -> Item {
    Item::from([(PK.to_owned(), s(bills_pk(owner))), (SK.to_owned(), s(sk))])
}

/// Runs one TransactWriteItems; `Lost` when DynamoDB cancelled it for a failed condition.
async fn transact(ledger: &Ledger, items: Vec<TransactWriteItem>) -> Result<Outcome, StoreError> {
    Ok(super::transact_conditional(ledger.client(), items).await?)
}

/// PutItem of a new payee.
#[tracing::instrument(skip_all, fields(payee_id = %payee.payee_id))]
pub async fn put_payee(ledger: &Ledger, owner: &Subject, payee: &Payee) -> Result<(), StoreError> {
    ledger
        .client()
        .put_item()
        .table_name(ledger.tables().accounts)
        .set_item(Some(payee_item(owner, payee)))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .classify("dynamodb:PutItem")?;
    Ok(())
}

/// One page of a listing, and the sort key to continue after (the API's cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page (possibly fewer than asked, even none, when more follow).
    pub items: Vec<T>,
    /// Pass back as `after` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// An optional filter of a listing: the expression and its `:values` (read after the page's
/// `Limit`, as DynamoDB applies filters).
type Filter<'a> = Option<(&'a str, Vec<(&'a str, AttributeValue)>)>;

/// One Query page of the owner's items whose sort key starts with `prefix`, after `after` (a
/// sort key this listing returned as `next`: its prefix and a UUID, else
/// [`StoreError::BadPageKey`]; the owner comes from the caller's token, never from the cursor).
async fn list_page(
    ledger: &Ledger,
    owner: &Subject,
    prefix: &str,
    limit: i32,
    after: Option<&str>,
    filter: Filter<'_>,
) -> Result<Page<Item>, StoreError> {
    let start = after
        .map(|sk| {
            sk.strip_prefix(prefix)
                .filter(|id| id.len() == 36 && Uuid::try_parse(id).is_ok())
                .map(|_| key(owner, sk.to_owned()))
                .ok_or(StoreError::BadPageKey)
        })
        .transpose()?;
    let mut query = ledger
        .client()
        .query()
        .table_name(ledger.tables().accounts)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", s(bills_pk(owner)))
        .expression_attribute_values(":prefix", s(prefix))
        .consistent_read(true)
        .limit(limit.clamp(1, MAX_LISTED))
        .set_exclusive_start_key(start);
    if let Some((expression, values)) = filter {
        query = query.filter_expression(expression);
        // DynamoDB refuses a name the expressions do not use.
        if expression.contains("#status") {
            query = query.expression_attribute_names("#status", "status");
        }
        for (name, value) in values {
            query = query.expression_attribute_values(name, value);
        }
    }
    let out = query.send().await.classify("dynamodb:Query")?;
    Ok(Page {
        items: out.items().to_vec(),
        next: out
            .last_evaluated_key()
            .and_then(|k| opt_s(k, SK))
            .map(str::to_owned),
    })
}

async fn get(ledger: &Ledger, owner: &Subject, sk: String) -> Result<Option<Item>, StoreError> {
    Ok(ledger
        .client()
        .get_item()
        .table_name(ledger.tables().accounts)
        .set_key(Some(key(owner, sk)))
        .consistent_read(true)
        .send()
        .await
        .classify("dynamodb:GetItem")?
        .item)
}

/// One page of the owner's payees (one Query of at most `limit` items, deleted ones read and
/// skipped), after `after` (a previous page's `next`).
#[tracing::instrument(skip_all)]
pub async fn payees(
    ledger: &Ledger,
    owner: &Subject,
    limit: i32,
    after: Option<&str>,
) -> Result<Page<Payee>, StoreError> {
    let page = list_page(ledger, owner, PAYEE_PREFIX, limit, after, None).await?;
    Ok(Page {
        items: page
            .items
            .iter()
            .filter(|item| !deleted(item))
            .map(payee_from)
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

/// One of the owner's payees.
#[tracing::instrument(skip_all, fields(%payee_id))]
pub async fn payee(
    ledger: &Ledger,
    owner: &Subject,
    payee_id: Uuid,
) -> Result<Option<Payee>, StoreError> {
    get(ledger, owner, payee_sk(payee_id))
        .await?
        .as_ref()
        .filter(|item| !deleted(item))
        .map(payee_from)
        .transpose()
}

/// Marks one of the owner's payees deleted (UpdateItem); `Lost` when it does not exist or was
/// already deleted.
#[tracing::instrument(skip_all, fields(%payee_id))]
pub async fn delete_payee(
    ledger: &Ledger,
    owner: &Subject,
    payee_id: Uuid,
    at: &str,
) -> Result<Outcome, StoreError> {
    let result = ledger
        .client()
        .update_item()
        .table_name(ledger.tables().accounts)
        .set_key(Some(key(owner, payee_sk(payee_id))))
        .update_expression("SET deleted_at = :at")
        .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleted_at)")
        .expression_attribute_values(":at", s(at))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Won),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(Outcome::Lost)
        }
        Err(err) => Err(classify("dynamodb:UpdateItem", err).into()),
    }
}

/// One TransactWriteItems: the payee still exists (condition check), the schedule and its due
/// entry. `Lost` when the payee was deleted meanwhile.
#[tracing::instrument(skip_all, fields(schedule_id = %schedule.schedule_id))]
pub async fn create_schedule(
    ledger: &Ledger,
    owner: &Subject,
    schedule: &Schedule,
) -> Result<Outcome, StoreError> {
    let table = ledger.tables().accounts;
    let build = StoreError::build("bill schedule write");
    let mut items = vec![
        TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key(owner, payee_sk(schedule.payee_id))))
                    .condition_expression(
                        "attribute_exists(pk) AND attribute_not_exists(deleted_at)",
                    )
                    .build()
                    .map_err(StoreError::build("bill schedule write"))?,
            )
            .build(),
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(schedule_item(owner, schedule)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(StoreError::build("bill schedule write"))?,
            )
            .build(),
    ];
    if let Some(due) = schedule.next_due {
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(due_item(owner, schedule.schedule_id, due)))
                        .build()
                        .map_err(build)?,
                )
                .build(),
        );
    }
    transact(ledger, items).await
}

/// One page of the owner's schedules (of one payee when `payee` is given: a filter, so a page
/// may hold fewer than `limit`), after `after` (a previous page's `next`).
#[tracing::instrument(skip_all)]
pub async fn schedules(
    ledger: &Ledger,
    owner: &Subject,
    payee: Option<Uuid>,
    limit: i32,
    after: Option<&str>,
) -> Result<Page<Schedule>, StoreError> {
    let filter = payee.map(|id| {
        (
            "payee_id = :payee",
            vec![(":payee", s(id.hyphenated().to_string()))],
        )
    });
    let page = list_page(ledger, owner, SCHEDULE_PREFIX, limit, after, filter).await?;
    Ok(Page {
        items: page
            .items
            .iter()
            .map(schedule_from)
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

/// Whether one of the owner's schedules paying `payee` is ACTIVE (pages through all of them).
#[tracing::instrument(skip_all, fields(payee_id = %payee))]
pub async fn has_active_schedule(
    ledger: &Ledger,
    owner: &Subject,
    payee: Uuid,
) -> Result<bool, StoreError> {
    let mut after: Option<String> = None;
    loop {
        let filter = Some((
            "payee_id = :payee AND #status = :active",
            vec![
                (":payee", s(payee.hyphenated().to_string())),
                (":active", s(ScheduleStatus::Active.as_str())),
            ],
        ));
        let page = list_page(
            ledger,
            owner,
            SCHEDULE_PREFIX,
            MAX_LISTED,
            after.as_deref(),
            filter,
        )
        .await?;
        if !page.items.is_empty() {
            return Ok(true);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(false),
        }
    }
}

/// One of the owner's schedules (consistent read).
#[tracing::instrument(skip_all, fields(%schedule_id))]
pub async fn schedule(
    ledger: &Ledger,
    owner: &Subject,
    schedule_id: Uuid,
) -> Result<Option<Schedule>, StoreError> {
    get(ledger, owner, schedule_sk(schedule_id))
        .await?
        .as_ref()
        .map(schedule_from)
        .transpose()
}

/// The new state of a schedule after one occurrence.
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    /// The schedule as read (its `next_due` is the condition).
    pub schedule: &'a Schedule,
    /// What happened to the occurrence due on `schedule.next_due`.
    pub occurrence: Occurrence,
    /// The following due date; `None` completes the schedule.
    pub next_due: Option<time::Date>,
}

/// One TransactWriteItems: the schedule moves to its next occurrence (appending the one handled
/// to `past`) if it is still ACTIVE with the `next_due` read, its old due entry is deleted and
/// the new one written. `Lost` when another runner advanced it, or its owner cancelled it.
#[tracing::instrument(skip_all, fields(schedule_id = %advance.schedule.schedule_id))]
pub async fn advance(
    ledger: &Ledger,
    owner: &Subject,
    advance: &Advance<'_>,
) -> Result<Outcome, StoreError> {
    let sc = advance.schedule;
    let Some(current) = sc.next_due else {
        return Ok(Outcome::Lost);
    };
    let table = ledger.tables().accounts;
    let next_index = sc.next_index.saturating_add(1).to_string();
    let (set, status) = match advance.next_due {
        Some(_) => (
            "SET next_due = :next, next_index = :index, past = list_append(past, :o)",
            crate::bills::ScheduleStatus::Active,
        ),
        None => (
            "SET next_index = :index, past = list_append(past, :o), #status = :done REMOVE next_due",
            crate::bills::ScheduleStatus::Completed,
        ),
    };
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(owner, schedule_sk(sc.schedule_id))))
        .update_expression(set)
        .condition_expression("#status = :active AND next_due = :current")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s(ScheduleStatus::Active.as_str()))
        .expression_attribute_values(":current", s(format_date(current)))
        .expression_attribute_values(":index", s(next_index))
        .expression_attribute_values(
            ":o",
            AttributeValue::L(vec![occurrence_value(&advance.occurrence)]),
        );
    match advance.next_due {
        Some(next) => update = update.expression_attribute_values(":next", s(format_date(next))),
        None => update = update.expression_attribute_values(":done", s(status.as_str())),
    }
    let mut items = vec![
        TransactWriteItem::builder()
            .update(update.build().map_err(StoreError::build("bill advance"))?)
            .build(),
        handle_due(table, sc.schedule_id, current)?,
    ];
    if let Some(next) = advance.next_due {
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(due_item(owner, sc.schedule_id, next)))
                        .build()
                        .map_err(StoreError::build("bill advance"))?,
                )
                .build(),
        );
    }
    transact(ledger, items).await
}

/// One TransactWriteItems: the schedule becomes CANCELLED if it is ACTIVE with the `next_due`
/// read, and its due entry is deleted. `Lost` when it changed meanwhile (read it again).
#[tracing::instrument(skip_all, fields(schedule_id = %schedule.schedule_id))]
pub async fn cancel(
    ledger: &Ledger,
    owner: &Subject,
    schedule: &Schedule,
) -> Result<Outcome, StoreError> {
    let table = ledger.tables().accounts;
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(owner, schedule_sk(schedule.schedule_id))))
        .update_expression("SET #status = :cancelled")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s(ScheduleStatus::Active.as_str()))
        .expression_attribute_values(":cancelled", s(ScheduleStatus::Cancelled.as_str()));
    update = match schedule.next_due {
        Some(due) => update
            .condition_expression("#status = :active AND next_due = :current")
            .expression_attribute_values(":current", s(format_date(due))),
        None => update.condition_expression("#status = :active AND attribute_not_exists(next_due)"),
    };
    let mut items = vec![
        TransactWriteItem::builder()
            .update(update.build().map_err(StoreError::build("bill cancel"))?)
            .build(),
    ];
    if let Some(due) = schedule.next_due {
        items.push(handle_due(table, schedule.schedule_id, due)?);
    }
    transact(ledger, items).await
}
