pub mod ledger;
pub mod transaction;
