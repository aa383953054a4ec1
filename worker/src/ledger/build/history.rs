//! The sort-key range and the opaque cursor of an account's history query.

use time::OffsetDateTime;

use crate::ledger::LedgerError;
use crate::ledger::model::{Item, PK, SK, account_pk, s, sort_timestamp};
use crate::transaction::AccountNumber;

/// Sort-key bounds of a history query: `[ENTRY#<from>, ENTRY#<to>#~]`, both inclusive.
pub fn history_bounds(
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<(String, String), LedgerError> {
    if from > to {
        return Err(LedgerError::InvalidInput {
            detail: "history: `from` is after `to`".into(),
        });
    }
    Ok((
        format!("ENTRY#{}", sort_timestamp(from)?),
        format!("ENTRY#{}#~", sort_timestamp(to)?),
    ))
}

/// Opaque cursor: lowercase hex of the last evaluated sort key.
pub fn encode_cursor(last_evaluated_key: &Item) -> Option<String> {
    let sk = last_evaluated_key.get(SK)?.as_s().ok()?;
    Some(sk.bytes().map(|b| format!("{b:02x}")).collect())
}

/// Decodes a cursor made by [`encode_cursor`] into an `ExclusiveStartKey` for `account`.
pub fn decode_cursor(account: &AccountNumber, cursor: &str) -> Result<Item, LedgerError> {
    let bad = || LedgerError::InvalidInput {
        detail: "invalid history cursor".into(),
    };
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i.checked_add(2)?)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let sk = String::from_utf8(bytes).map_err(|_| bad())?;
    if !sk.starts_with("ENTRY#") {
        return Err(bad());
    }
    Ok(Item::from([
        (PK.into(), s(account_pk(account))),
        (SK.into(), s(sk)),
    ]))
}
