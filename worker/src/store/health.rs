//! The readiness probe of the tables.

use ballast_aws::SdkResultExt;

use super::StoreError;
use crate::ledger::Ledger;

/// One DescribeTable of the transactions table: `Ok` when DynamoDB answers for it.
#[tracing::instrument(skip_all)]
pub async fn probe(ledger: &Ledger) -> Result<(), StoreError> {
    ledger
        .client()
        .describe_table()
        .table_name(ledger.tables().transactions)
        .send()
        .await
        .classify("dynamodb:DescribeTable")?;
    Ok(())
}
