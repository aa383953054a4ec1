//! The storage boundary of the worker: the layout of every DynamoDB item (see [`keys`]) and the
//! attribute helpers shared by the ledger and the ingest API, so that no other module spells a
//! key prefix or builds an attribute value by hand.
#![deny(clippy::arithmetic_side_effects)]

pub mod keys;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

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
