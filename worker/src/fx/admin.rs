//! Exchange-rate items (`RATE#<base>#<quote>`, see [`crate::fx`]): the operator's load and
//! list (`ballast-worker rates`, run with operator credentials: the listing scans the accounts
//! table, which the worker's own role may not). The money path reads rates through
//! [`Ledger::rate_at`](crate::ledger::Ledger::rate_at).
//!
//! A load is all or nothing: the file is validated whole ([`crate::fx::file`]), then checked
//! against the stored rates of each pair it names (no overlapping windows), then written in
//! **one** TransactWriteItems. Each put is conditional on what the check read (a new rate on
//! not existing, a replaced one on its version), and each pair's guard item (`sk = PAIR`) on its
//! version, so that a second load of the same pair running at once cannot slip an overlapping
//! rate past the check: one of the two is cancelled, writes nothing, and says so.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use ballast_aws::{AwsError, SdkResultExt};
use ballast_blueprint::{Diagnostic, Diagnostics};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fx::file::FileRate;
use crate::fx::{Rate, VERSION_ATTRIBUTE, pair_guard_key};
use crate::ledger::{Ledger, LedgerError};
use crate::store::keys::{PK, RATE_FROM_PREFIX, RATE_PAIR_SK, RATE_PREFIX, SK, rate_pk};
use crate::store::{Item, Outcome};
use crate::transaction::Currency;

/// Why a load or a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum RatesError {
    /// A DynamoDB call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// An item could not be encoded or decoded.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The file conflicts with the stored rates (positioned in the file); nothing was written.
    #[error("{0}")]
    Conflicts(Diagnostics),
    /// Another load changed rates of these pairs meanwhile; nothing was written.
    #[error(
        "rates of {pairs} changed while this file was being loaded; nothing was written \
         (hint: load the file again)"
    )]
    Concurrent {
        /// The pairs, `USD/EUR, …`.
        pairs: String,
    },
    /// A request could not be built (a bug).
    #[error("cannot build the {what}: {source}")]
    Build {
        /// What.
        what: &'static str,
        /// Why.
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Rates written for the first time.
    pub added: usize,
    /// Stored rates replaced (same pair and `valid_from`, another value, source or end).
    pub replaced: usize,
    /// Rates identical to the stored ones (left as they are: a reload changes nothing).
    pub unchanged: usize,
}

/// The stored state of one pair.
#[derive(Debug, Default)]
struct Stored {
    rates: Vec<Rate>,
    guard_version: Option<u64>,
}

/// Loads validated rates (see the module documentation). `file` labels the diagnostics.
#[tracing::instrument(skip(ledger, rates), fields(count = rates.len()))]
pub async fn load(
    ledger: &Ledger,
    file: &str,
    rates: &[FileRate],
    now: OffsetDateTime,
) -> Result<LoadSummary, RatesError> {
    let pairs: std::collections::BTreeSet<(Currency, Currency)> =
        rates.iter().map(|r| (r.rate.base, r.rate.quote)).collect();
    let mut stored: BTreeMap<(Currency, Currency), Stored> = BTreeMap::new();
    for (base, quote) in pairs {
        stored.insert((base, quote), read_pair(ledger, base, quote).await?);
    }
    let mut problems = Vec::new();
    let mut summary = LoadSummary::default();
    let mut items = Vec::new();
    let mut touched: BTreeMap<(Currency, Currency), Option<u64>> = BTreeMap::new();
    for r in rates {
        let pair = (r.rate.base, r.rate.quote);
        let Some(pair_state) = stored.get(&pair) else {
            continue;
        };
        let same_start = pair_state
            .rates
            .iter()
            .find(|s| s.valid_from == r.rate.valid_from);
        for other in &pair_state.rates {
            let overlaps =
                other.valid_from < r.rate.valid_until && r.rate.valid_from < other.valid_until;
            if overlaps && other.valid_from != r.rate.valid_from {
                problems.push(
                    Diagnostic::error(
                        r.position,
                        "",
                        format!(
                            "this {} rate overlaps the stored one valid from {} until {}",
                            r.rate.pair(),
                            other.valid_from.format(&Rfc3339).unwrap_or_default(),
                            other.valid_until.format(&Rfc3339).unwrap_or_default(),
                        ),
                    )
                    .with_hint(
                        "windows of one pair may not overlap; to correct a stored rate, load \
                         one with the same valid_from (it replaces it)",
                    ),
                );
            }
        }
        let (rate, condition) = match same_start {
            Some(old)
                if old.rate == r.rate.rate
                    && old.source == r.rate.source
                    && old.valid_until == r.rate.valid_until =>
            {
                summary.unchanged = summary.unchanged.saturating_add(1);
                continue;
            }
            Some(old) => {
                summary.replaced = summary.replaced.saturating_add(1);
                (
                    Rate {
                        version: old.version.saturating_add(1),
                        ..r.rate.clone()
                    },
                    Some(old.version),
                )
            }
            None => {
                summary.added = summary.added.saturating_add(1);
                (
                    Rate {
                        version: 1,
                        ..r.rate.clone()
                    },
                    None,
                )
            }
        };
        items.push(versioned_put(ledger, rate.to_item(now)?, condition)?);
        touched.insert(pair, pair_state.guard_version);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.position);
        return Err(RatesError::Conflicts(Diagnostics {
            file: file.to_owned(),
            items: problems,
        }));
    }
    if items.is_empty() {
        return Ok(summary);
    }
    for (&(base, quote), seen) in &touched {
        let mut guard = pair_guard_key(base, quote);
        guard.insert(
            VERSION_ATTRIBUTE.into(),
            AttributeValue::N(seen.unwrap_or(0).saturating_add(1).to_string()),
        );
        items.push(versioned_put(ledger, guard, *seen)?);
    }
    match crate::store::transact_conditional(ledger.client(), items).await? {
        Outcome::Won => Ok(summary),
        // A version or an absence another load changed since this one read them.
        Outcome::Lost => Err(RatesError::Concurrent {
            pairs: touched
                .keys()
                .map(|(b, q)| format!("{b}/{q}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A put conditional on the item not existing (`seen = None`) or holding version `seen`.
fn versioned_put(
    ledger: &Ledger,
    item: Item,
    seen: Option<u64>,
) -> Result<TransactWriteItem, RatesError> {
    let builder = Put::builder()
        .table_name(ledger.tables().accounts)
        .set_item(Some(item));
    let builder = match seen {
        None => builder.condition_expression("attribute_not_exists(pk)"),
        Some(v) => builder
            .condition_expression("#version = :seen")
            .expression_attribute_names("#version", VERSION_ATTRIBUTE)
            .expression_attribute_values(":seen", AttributeValue::N(v.to_string())),
    };
    let put = builder.build().map_err(|source| RatesError::Build {
        what: "rate put",
        source,
    })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Every stored rate of a pair and its guard's version (consistent reads).
async fn read_pair(ledger: &Ledger, base: Currency, quote: Currency) -> Result<Stored, RatesError> {
    let mut stored = Stored::default();
    let mut start = None;
    loop {
        let page = ledger
            .client()
            .query()
            .table_name(ledger.tables().accounts)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(rate_pk(base, quote)))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .classify("dynamodb:Query")?;
        for item in page.items() {
            let sk = item.get(SK).and_then(|v| v.as_s().ok());
            if sk.is_some_and(|sk| sk == RATE_PAIR_SK) {
                stored.guard_version = match item.get(VERSION_ATTRIBUTE) {
                    Some(AttributeValue::N(n)) => n.parse().ok(),
                    _ => None,
                };
            } else if sk.is_some_and(|sk| sk.starts_with(RATE_FROM_PREFIX)) {
                stored.rates.push(Rate::from_item(item)?);
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(stored)
}

/// Every stored rate, by pair and start (a scan: for operators, not the money path).
#[tracing::instrument(skip(ledger))]
pub async fn list(ledger: &Ledger) -> Result<Vec<Rate>, RatesError> {
    let mut rates = Vec::new();
    let mut start = None;
    loop {
        let page = ledger
            .client()
            .scan()
            .table_name(ledger.tables().accounts)
            .filter_expression("begins_with(#pk, :rate) AND begins_with(#sk, :from)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":rate", AttributeValue::S(RATE_PREFIX.into()))
            .expression_attribute_values(":from", AttributeValue::S(RATE_FROM_PREFIX.into()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .classify("dynamodb:Scan")?;
        for item in page.items() {
            rates.push(Rate::from_item(item)?);
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    rates.sort_by(|a, b| {
        (a.base.code(), a.quote.code(), a.valid_from).cmp(&(
            b.base.code(),
            b.quote.code(),
            b.valid_from,
        ))
    });
    Ok(rates)
}
