//! Pending reviews of held transactions (`REVIEW#<transaction id>`, see [`crate::risk::items`])
//! read through their sparse index [`REVIEWS_PENDING_INDEX`] (`review_queue` = `PENDING`,
//! `review_sk` = `<fixed-width held_at>#<id>`, oldest first): a decision removes both keys, so
//! only pending reviews are in it. The decisions themselves move money and are the ledger's
//! ([`crate::ledger::Ledger::decide_review`]).

use ballast_aws::SdkResultExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::review_pk;
use super::{StoreError, opt_s, s};
use crate::ledger::{Ledger, Review};
use crate::risk::items::{REVIEW_QUEUE_PENDING, REVIEWS_PENDING_INDEX};

/// A page of pending reviews, oldest first, and the `review_sk` to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPage {
    /// The reviews.
    pub reviews: Vec<Review>,
    /// Pass back to read the next page.
    pub next: Option<String>,
}

/// Pending reviews, oldest first, at most `limit`, after `after` (a `review_sk`).
#[tracing::instrument(skip(ledger))]
pub async fn pending(
    ledger: &Ledger,
    limit: i32,
    after: Option<&str>,
) -> Result<PendingPage, StoreError> {
    let start = match after {
        None => None,
        Some(sk) => {
            // A client's cursor: `<fixed-width time>#<transaction id>`, nothing else.
            let id = sk
                .rsplit_once('#')
                .and_then(|(_, id)| uuid::Uuid::try_parse(id).ok())
                .ok_or(StoreError::BadPageKey)?;
            Some(super::Item::from([
                ("review_queue".to_owned(), s(REVIEW_QUEUE_PENDING)),
                ("review_sk".to_owned(), s(sk)),
                (super::keys::PK.to_owned(), s(review_pk(id))),
            ]))
        }
    };
    let out = ledger
        .client()
        .query()
        .table_name(ledger.tables().transactions)
        .index_name(REVIEWS_PENDING_INDEX)
        .key_condition_expression("review_queue = :q")
        .expression_attribute_values(":q", s(REVIEW_QUEUE_PENDING))
        .scan_index_forward(true)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .classify("dynamodb:Query")?;
    let reviews = out
        .items()
        .iter()
        .map(Review::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let next = out
        .last_evaluated_key()
        .and_then(|key| opt_s(key, "review_sk"))
        .map(str::to_owned);
    Ok(PendingPage { reviews, next })
}

/// How long the oldest pending review has waited at `now` (`None`: nothing is pending).
#[tracing::instrument(skip(ledger))]
pub async fn oldest_pending_age(
    ledger: &Ledger,
    now: OffsetDateTime,
) -> Result<Option<std::time::Duration>, StoreError> {
    let page = pending(ledger, 1, None).await?;
    let Some(oldest) = page.reviews.first() else {
        return Ok(None);
    };
    let held_at =
        OffsetDateTime::parse(&oldest.held_at, &Rfc3339).map_err(|_| StoreError::Corrupt {
            pk: format!("REVIEW#{}", oldest.transaction.transaction_id),
            field: "held_at",
        })?;
    let secs = now
        .unix_timestamp()
        .saturating_sub(held_at.unix_timestamp());
    Ok(Some(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    )))
}
