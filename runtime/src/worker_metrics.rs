//! The names under which the worker publishes its per-minute CloudWatch metrics, shared with
//! the controller, which reads them back to measure the fleet's service rate.

use std::time::Duration;

/// How often each worker publishes its metrics in production. The controller counts the
/// `SampleCount` of [`TRANSACTIONS_PROCESSED`] as worker-minutes to measure the service rate per
/// instance, so a worker publishes exactly one datum a minute.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(60);

/// CloudWatch namespace of the worker's metrics.
pub const NAMESPACE: &str = "Ballast/Worker";
/// Dimension carrying the fleet (Auto Scaling group) name. Every worker of a group publishes
/// under the same value, so CloudWatch's `Sum` is the group's total.
pub const FLEET_DIMENSION: &str = "AutoScalingGroupName";
/// Messages processed successfully in the minute (a `Count`).
pub const TRANSACTIONS_PROCESSED: &str = "TransactionsProcessed";
/// Messages whose processing failed in the minute (a `Count`).
pub const PROCESSING_ERRORS: &str = "ProcessingErrors";
/// Age in seconds of the oldest transaction held for review by the risk rules (a `Seconds`
/// gauge, published each minute while the worker has risk rules; 0 when none is pending).
pub const HELD_OLDEST_AGE: &str = "HeldTransactionOldestAgeSeconds";
/// Age in seconds of the oldest bill occurrence due but not yet paid (00:00 UTC of its due date
/// to now; a `Seconds` gauge published each minute; 0 when nothing due is unpaid).
pub const BILL_OVERDUE_OLDEST_AGE: &str = "BillOverdueOldestAgeSeconds";
