//! Currency conversion: exchange rates, their DynamoDB items, and the conversion arithmetic.
//!
//! A [`Rate`] converts its `base` currency into its `quote` currency: `quote amount = base
//! amount × rate`. It is an exact decimal (never a float) with at most [`MAX_RATE_DECIMALS`]
//! decimal places, below [`RATE_LIMIT`] (10^6), valid from
//! `valid_from` (inclusive) until `valid_until` (exclusive), and names its `source` (who
//! published it). Rates are loaded from a file (`ballast-worker rates load`, [`file`]) into the
//! accounts table under `RATE#<base>#<quote>` (see [`crate::store::keys`]); windows of one pair
//! never overlap, so at most one rate is valid at any instant.
//!
//! # Rounding
//!
//! [`convert`] multiplies exactly (in 128-bit integers: an amount below 10^18 with at most 4
//! decimals times a rate below 10^6 with at most 10 decimals stays below 10^38) and rounds
//! **half to even** (banker's rounding) to the quote currency's ISO 4217 minor units: 0.125 EUR
//! becomes 0.12, 0.135 becomes 0.14, 2.5 JPY becomes 2. The difference `exact − credited` is
//! the rounding *residue*, recorded on the transaction so that the exact product can always be
//! reconstructed. A product that rounds to zero, or whose result is not a valid amount (10^18 or
//! more), is refused ([`ConversionError`]) instead of being truncated.
#![deny(clippy::arithmetic_side_effects)]

pub mod admin;
pub mod csv;
pub mod file;

use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ledger::{LedgerError, sort_timestamp};
use crate::store::Item;
use crate::store::keys::{PK, RATE_PAIR_SK, SK, rate_pk, rate_sk};
use crate::transaction::{Currency, MAX_AMOUNT_INTEGER_DIGITS, parse_dynamo_number};

/// Most decimal places of a rate.
pub const MAX_RATE_DECIMALS: u32 = 10;
/// Every rate is below this (1 000 000: six integer digits at most).
pub const RATE_LIMIT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// The rounding rule of every conversion, as recorded on the transaction.
pub const ROUNDING: &str = "HALF_EVEN";

/// An exchange rate as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// The currency converted from (the debited side).
    pub base: Currency,
    /// The currency converted into (the credited side).
    pub quote: Currency,
    /// Quote units per base unit, exact.
    pub rate: Decimal,
    /// Who published the rate (free text, 1-200 characters).
    pub source: String,
    /// First instant the rate applies (inclusive).
    pub valid_from: OffsetDateTime,
    /// First instant it no longer applies (exclusive).
    pub valid_until: OffsetDateTime,
    /// 1 when first loaded; each replacement (same pair and `valid_from`) adds one. A
    /// conversion's TransactWriteItems checks it, so a replaced rate is never used stale.
    pub version: u64,
}

/// Why a rate's value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Zero or negative.
    #[error("the rate must be positive")]
    NotPositive,
    /// More decimal places than [`MAX_RATE_DECIMALS`].
    #[error("the rate has {got} decimal places, at most {MAX_RATE_DECIMALS} are allowed")]
    TooManyDecimals {
        /// Decimal places written.
        got: u32,
    },
    /// [`RATE_LIMIT`] or more.
    #[error("the rate must be below {RATE_LIMIT}")]
    TooLarge,
}

/// Checks a rate's value (see the module documentation).
pub fn check_rate(rate: Decimal) -> Result<(), RateError> {
    if rate <= Decimal::ZERO {
        return Err(RateError::NotPositive);
    }
    if rate.scale() > MAX_RATE_DECIMALS {
        return Err(RateError::TooManyDecimals { got: rate.scale() });
    }
    if rate >= RATE_LIMIT {
        return Err(RateError::TooLarge);
    }
    Ok(())
}

/// The result of [`convert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converted {
    /// The credited amount: exactly the quote currency's minor units.
    pub amount: Decimal,
    /// `amount × rate − credited` (normalized; negative when rounded up).
    pub residue: Decimal,
}

/// Why an amount cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The rate itself is not acceptable.
    #[error(transparent)]
    Rate(#[from] RateError),
    /// The amount is not positive.
    #[error("the amount to convert must be positive")]
    AmountNotPositive,
    /// The product, or the converted amount, is beyond what an amount may be.
    #[error("{amount} × {rate} is not a valid {quote} amount (10^18 or more)")]
    OutOfRange {
        /// The amount.
        amount: Decimal,
        /// The rate.
        rate: Decimal,
        /// The target currency.
        quote: Currency,
    },
    /// The converted amount rounds to zero in the quote currency.
    #[error("{amount} × {rate} rounds to zero {quote}")]
    RoundsToZero {
        /// The amount.
        amount: Decimal,
        /// The rate.
        rate: Decimal,
        /// The target currency.
        quote: Currency,
    },
}

/// Converts `amount` with `rate` into `quote`'s minor units, rounding half to even (see the
/// module documentation). Checked throughout: any input gives a value or an error, never a
/// panic or a silently rounded product.
pub fn convert(
    amount: Decimal,
    rate: Decimal,
    quote: Currency,
) -> Result<Converted, ConversionError> {
    check_rate(rate)?;
    if amount <= Decimal::ZERO {
        return Err(ConversionError::AmountNotPositive);
    }
    let out_of_range = || ConversionError::OutOfRange {
        amount,
        rate,
        quote,
    };
    let product = amount
        .mantissa()
        .checked_mul(rate.mantissa())
        .ok_or_else(out_of_range)?;
    let product_scale = amount
        .scale()
        .checked_add(rate.scale())
        .ok_or_else(out_of_range)?;
    let target_scale = quote.minor_units();
    let (credited, residue, residue_scale) = if product_scale <= target_scale {
        let factor = pow10(target_scale.saturating_sub(product_scale)).ok_or_else(out_of_range)?;
        let credited = product.checked_mul(factor).ok_or_else(out_of_range)?;
        (credited, 0, 0)
    } else {
        let divisor = pow10(product_scale.saturating_sub(target_scale)).ok_or_else(out_of_range)?;
        let quotient = product.checked_div(divisor).ok_or_else(out_of_range)?;
        let remainder = product.checked_rem(divisor).ok_or_else(out_of_range)?;
        let twice = remainder.checked_mul(2).ok_or_else(out_of_range)?;
        let round_up = twice > divisor || (twice == divisor && quotient.checked_rem(2) != Some(0));
        let credited = if round_up {
            quotient.checked_add(1).ok_or_else(out_of_range)?
        } else {
            quotient
        };
        let residue = credited
            .checked_mul(divisor)
            .and_then(|c| product.checked_sub(c))
            .ok_or_else(out_of_range)?;
        (credited, residue, product_scale)
    };
    if credited == 0 {
        return Err(ConversionError::RoundsToZero {
            amount,
            rate,
            quote,
        });
    }
    let limit =
        pow10(MAX_AMOUNT_INTEGER_DIGITS.saturating_add(target_scale)).ok_or_else(out_of_range)?;
    if credited >= limit {
        return Err(out_of_range());
    }
    let amount_out =
        Decimal::try_from_i128_with_scale(credited, target_scale).map_err(|_| out_of_range())?;
    let residue = Decimal::try_from_i128_with_scale(residue, residue_scale)
        .map_err(|_| out_of_range())?
        .normalize();
    Ok(Converted {
        amount: amount_out,
        residue,
    })
}

/// 10^exp, if it fits in an `i128`.
fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

// ----- items -----

/// Attribute names of a rate item.
mod attr {
    pub const BASE: &str = "base";
    pub const QUOTE: &str = "quote";
    pub const RATE: &str = "rate";
    pub const SOURCE: &str = "source";
    pub const VALID_FROM: &str = "valid_from";
    pub const VALID_UNTIL: &str = "valid_until";
    pub const VERSION: &str = "version";
    pub const LOADED_AT: &str = "loaded_at";
}
pub use attr::VERSION as VERSION_ATTRIBUTE;

fn s(v: impl Into<String>) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(v.into())
}

fn rfc3339(t: OffsetDateTime) -> Result<String, LedgerError> {
    crate::ledger::rfc3339(t)
}

impl Rate {
    /// `USD/EUR`.
    pub fn pair(&self) -> String {
        format!("{}/{}", self.base, self.quote)
    }

    /// The key of this rate's item: `RATE#<base>#<quote>` / `FROM#<valid_from>`.
    pub fn key(&self) -> Result<Item, LedgerError> {
        Ok(Item::from([
            (PK.into(), s(rate_pk(self.base, self.quote))),
            (SK.into(), s(rate_sk(&sort_timestamp(self.valid_from)?))),
        ]))
    }

    /// A stable name of this rate and version, recorded on the transactions that used it:
    /// `USD/EUR@2026-12-04T00:00:00Z#v2`.
    pub fn id(&self) -> Result<String, LedgerError> {
        Ok(format!(
            "{}@{}#v{}",
            self.pair(),
            rfc3339(self.valid_from)?,
            self.version
        ))
    }

    /// Whether the rate applies at `at`.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.valid_from <= at && at < self.valid_until
    }

    /// The item (the rate as a string attribute: exact, never a DynamoDB number).
    pub fn to_item(&self, loaded_at: OffsetDateTime) -> Result<Item, LedgerError> {
        let mut item = self.key()?;
        item.extend([
            (attr::BASE.into(), s(self.base.code())),
            (attr::QUOTE.into(), s(self.quote.code())),
            (attr::RATE.into(), s(self.rate.to_string())),
            (attr::SOURCE.into(), s(self.source.clone())),
            (attr::VALID_FROM.into(), s(rfc3339(self.valid_from)?)),
            (attr::VALID_UNTIL.into(), s(rfc3339(self.valid_until)?)),
            (
                attr::VERSION.into(),
                aws_sdk_dynamodb::types::AttributeValue::N(self.version.to_string()),
            ),
            (attr::LOADED_AT.into(), s(rfc3339(loaded_at)?)),
        ]);
        Ok(item)
    }

    /// Decodes a rate item.
    pub fn from_item(item: &Item) -> Result<Self, LedgerError> {
        let key = || {
            let text = |name| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .map_or("?", String::as_str)
            };
            format!("{}/{}", text(PK), text(SK))
        };
        let corrupt = |detail: String| LedgerError::CorruptItem { key: key(), detail };
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| corrupt(format!("missing string attribute `{name}`")))
        };
        let currency = |name: &str| {
            Currency::from_code(text(name)?).map_err(|e| corrupt(format!("`{name}`: {e}")))
        };
        let time = |name: &str| {
            OffsetDateTime::parse(text(name)?, &Rfc3339)
                .map_err(|e| corrupt(format!("`{name}`: {e}")))
        };
        let rate: Decimal = text(attr::RATE)?
            .parse()
            .map_err(|e| corrupt(format!("`rate`: {e}")))?;
        check_rate(rate).map_err(|e| corrupt(format!("`rate`: {e}")))?;
        let version = match item.get(attr::VERSION) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => parse_dynamo_number(n)
                .ok()
                .filter(|d| d.fract().is_zero())
                .and_then(|d| u64::try_from(d).ok())
                .ok_or_else(|| corrupt(format!("bad version {n:?}")))?,
            _ => return Err(corrupt("missing number attribute `version`".into())),
        };
        Ok(Rate {
            base: currency(attr::BASE)?,
            quote: currency(attr::QUOTE)?,
            rate,
            source: text(attr::SOURCE)?.clone(),
            valid_from: time(attr::VALID_FROM)?,
            valid_until: time(attr::VALID_UNTIL)?,
            version,
        })
    }
}

/// The key of a pair's guard item (`RATE#<base>#<quote>` / `PAIR`): every load that writes
/// rates of the pair bumps its `version` conditionally, so two loads of one pair at once cannot
/// both pass their overlap check.
pub fn pair_guard_key(base: Currency, quote: Currency) -> Item {
    Item::from([
        (PK.into(), s(rate_pk(base, quote))),
        (SK.into(), s(RATE_PAIR_SK)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn ccy(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn credited(amount: &str, rate: &str, quote: &str) -> (String, String) {
        let c = convert(dec(amount), dec(rate), ccy(quote)).unwrap();
        (c.amount.to_string(), c.residue.to_string())
    }

    #[test]
    fn rounding_is_half_to_even_at_the_quote_minor_units() {
        // Exactly half: to the even neighbour.
        assert_eq!(
            credited("1.25", "0.1", "EUR"),
            ("0.12".into(), "0.005".into())
        );
        assert_eq!(
            credited("1.35", "0.1", "EUR"),
            ("0.14".into(), "-0.005".into())
        );
        assert_eq!(credited("2.50", "1", "JPY"), ("2".into(), "0.5".into()));
        assert_eq!(credited("3.50", "1", "JPY"), ("4".into(), "-0.5".into()));
        // Not half: to the nearest.
        assert_eq!(
            credited("1.26", "0.1", "EUR"),
            ("0.13".into(), "-0.004".into())
        );
        assert_eq!(
            credited("100.00", "0.9215", "EUR"),
            ("92.15".into(), "0".into())
        );
        assert_eq!(
            credited("100.00", "149.3371", "JPY"),
            ("14934".into(), "-0.29".into())
        );
        // More minor units in the quote than in the product: padded, exact.
        assert_eq!(credited("5", "2", "BHD"), ("10.000".into(), "0".into()));
        assert_eq!(credited("7", "0.5", "CLF"), ("3.5000".into(), "0".into()));
        // The exact product is always credited + residue.
        let c = convert(dec("123.45"), dec("0.0000012345"), ccy("USD"));
        assert!(
            matches!(c, Err(ConversionError::RoundsToZero { .. })),
            "{c:?}"
        );
        let c = convert(dec("9876.54"), dec("1.0987654321"), ccy("GBP")).unwrap();
        assert_eq!(
            c.amount.checked_add(c.residue).unwrap(),
            dec("9876.54").checked_mul(dec("1.0987654321")).unwrap()
        );
        assert_eq!(c.amount.scale(), 2);
    }

    #[test]
    fn amounts_near_the_maximum_are_checked_not_panicking() {
        let max_amount = dec("999999999999999999.99");
        // Converting at 1 keeps the largest amount.
        assert_eq!(
            convert(max_amount, dec("1"), ccy("EUR")).unwrap().amount,
            max_amount
        );
        // 10^17 × 100 000 = 10^22: not an amount.
        let err = convert(dec("100000000000000000.00"), dec("100000"), ccy("EUR")).unwrap_err();
        assert!(matches!(err, ConversionError::OutOfRange { .. }), "{err}");
        // The largest rate with the most decimals times the largest amount with the most
        // minor units: no overflow panic, an error.
        let err = convert(
            dec("999999999999999999.9999"),
            dec("999999.9999999999"),
            ccy("CLF"),
        )
        .unwrap_err();
        assert!(matches!(err, ConversionError::OutOfRange { .. }), "{err}");
        // Decimal's extremes are refused too.
        assert!(convert(Decimal::MAX, dec("1.5"), ccy("USD")).is_err());
        assert!(convert(dec("0.0000000000000000000000000001"), dec("2"), ccy("USD")).is_err());
        // Just below 10^18 after conversion is fine; just at it is not.
        assert_eq!(
            credited("499999999999999999.99", "2", "USD").0,
            "999999999999999999.98"
        );
        assert!(convert(dec("500000000000000000.00"), dec("2"), ccy("USD")).is_err());
    }

    #[test]
    fn rates_are_positive_bounded_and_not_too_precise() {
        assert_eq!(check_rate(dec("0")), Err(RateError::NotPositive));
        assert_eq!(check_rate(dec("-1.2")), Err(RateError::NotPositive));
        assert_eq!(
            check_rate(dec("1.12345678901")),
            Err(RateError::TooManyDecimals { got: 11 })
        );
        assert_eq!(check_rate(dec("1000000")), Err(RateError::TooLarge));
        assert_eq!(check_rate(dec("999999.9999999999")), Ok(()));
        assert!(matches!(
            convert(dec("1"), dec("0"), ccy("USD")),
            Err(ConversionError::Rate(RateError::NotPositive))
        ));
        assert_eq!(
            convert(dec("0"), dec("1"), ccy("USD")),
            Err(ConversionError::AmountNotPositive)
        );
    }

    #[test]
    fn a_rate_item_round_trips() {
        let rate = Rate {
            base: ccy("USD"),
            quote: ccy("EUR"),
            rate: dec("0.9215000000"),
            source: "ECB".into(),
            valid_from: time::macros::datetime!(2026-12-04 00:00 UTC),
            valid_until: time::macros::datetime!(2026-12-05 00:00 UTC),
            version: 3,
        };
        let item = rate.to_item(OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "RATE#USD#EUR");
        assert_eq!(
            item["sk"].as_s().unwrap(),
            "FROM#2026-12-04T00:00:00.000000000Z"
        );
        assert_eq!(item["rate"].as_s().unwrap(), "0.9215000000", "exact text");
        assert_eq!(Rate::from_item(&item).unwrap(), rate);
        assert_eq!(rate.id().unwrap(), "USD/EUR@2026-12-04T00:00:00Z#v3");
        assert!(rate.valid_at(rate.valid_from));
        assert!(!rate.valid_at(rate.valid_until));
    }
}
