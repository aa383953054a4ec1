//! The storage boundary of the worker: the layout of every DynamoDB item (see [`keys`]) and
//! every DynamoDB call of the API, so that no other module spells a key prefix, builds an
//! attribute value or calls DynamoDB by hand.
//!
//! - [`ingest`]: the idempotency records of `POST /v1/transactions` (`INGEST#`, `INGESTID#`);
//! - [`audit`]: audit records (`AUDIT#`) and their two indexes;
//! - [`pending`]: the sweeper's pending marker on ingest records and its index;
//! - [`health`]: the readiness probe;
//! - [`poison`]: the consumer's record of a poison message (`POISON#`), read by the rescue;
//! - [`bills`]: payees, payment schedules and their due index (`BILLS#`, `BILLDUE#`).
//! - [`reviews`]: pending reviews of held transactions (`REVIEW#`) and their index.
//!
//! Exchange rates (`RATE#`) are written and listed by the operator's `rates` command
//! ([`crate::fx::admin`], with operator credentials: listing scans, which the worker's role may
//! not) and read on the money path by [`Ledger::rate_at`](crate::ledger::Ledger::rate_at).
//!
//! The money items (`ACCT#`, `TXN#`, `IDEM#`) belong to the ledger ([`crate::ledger`]), the
//! store's other half: its pure builders make the TransactWriteItems of a money movement and
//! [`Ledger`](crate::ledger::Ledger) runs them. Both reach DynamoDB through the one
//! [`Ledger`](crate::ledger::Ledger) handle (client and table names); the functions here take
//! it as their first argument and answer typed values and a [`StoreError`].
#![deny(clippy::arithmetic_side_effects)]

pub mod audit;
pub mod bills;
pub mod error;
pub mod health;
pub mod ingest;
pub mod keys;
pub mod pending;
pub mod poison;
pub mod reviews;

pub use error::StoreError;

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use ballast_aws::{AwsError, classify};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The string attribute `name` of `item`, if it is present and a string.
pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Whether a conditional write won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The condition held: the write is done.
    Won,
    /// The item was not in the expected state (another writer got there first, or it is gone).
    Lost,
}

/// Sends one TransactWriteItems of conditional writes: `Lost` when DynamoDB cancelled it because
/// a condition failed. Any other cancellation (a concurrent transaction on the same items,
/// throttling) is not a lost race, since the other writer may not commit either: it is the
/// classified error, which callers retry or report.
pub async fn transact_conditional(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
) -> Result<Outcome, AwsError> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Won),
        Err(err) => match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e))
                if e.cancellation_reasons()
                    .iter()
                    .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
            {
                Ok(Outcome::Lost)
            }
            _ => Err(classify("dynamodb:TransactWriteItems", err)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsError, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::{Outcome, transact_conditional};

    fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(
                    codes
                        .iter()
                        .map(|c| CancellationReason::builder().code(*c).build())
                        .collect(),
                ))
                .build(),
        )
    }

    #[tokio::test]
    async fn only_a_failed_condition_is_a_lost_race() {
        let won = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&won]);
        assert_eq!(
            transact_conditional(&client, vec![]).await.unwrap(),
            Outcome::Won
        );

        let lost = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(|| cancelled(&["None", "ConditionalCheckFailed"]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&lost]);
        assert_eq!(
            transact_conditional(&client, vec![]).await.unwrap(),
            Outcome::Lost
        );

        // Another transaction on the same items may not commit either: not a lost race.
        let conflict = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(|| cancelled(&["TransactionConflict", "None"]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&conflict]);
        let err = transact_conditional(&client, vec![]).await.unwrap_err();
        assert_eq!(err.operation(), "dynamodb:TransactWriteItems");
    }

    /// Every file under `dir`, its subfolders included.
    fn sources(dir: &str) -> Vec<(String, String)> {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path.display().to_string(), text));
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
        out
    }

    /// The HTTP path runs api → store in one direction: no API module calls DynamoDB itself,
    /// nor does the consumer, and nothing in the store imports the API (its docs may link
    /// there).
    #[test]
    fn the_api_and_the_consumer_reach_dynamodb_only_through_the_store() {
        for (path, text) in sources("src/api") {
            for needle in [".client()", "aws_sdk_dynamodb"] {
                assert!(!text.contains(needle), "{path} uses {needle}");
            }
        }
        // The SQS path too: the consumer's DynamoDB items (poison records) are the store's.
        for (path, text) in sources("src/consumer") {
            assert!(!text.contains(".client()"), "{path} calls a client itself");
        }
        // Spelt in two pieces so that this file does not match itself.
        let import = ["use crate", "::api"].concat();
        for (path, text) in sources("src/store") {
            assert!(!text.contains(&import), "{path} imports the API");
        }
    }
}
