//! ISO 4217 currency codes and their minor units.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Active ISO 4217 alphabetic codes with their minor units (number of decimal places).
///
/// Codes whose minor unit is "N.A." in ISO 4217 (precious metals XAU/XAG/XPD/XPT, the bond
/// market units XBA–XBD, XDR, XSU, XUA, the testing code XTS and the "no currency" code XXX)
/// are deliberately left out: they are not something this ledger can hold a balance in.
/// Withdrawn codes (HRK, ZWL, ...) are not listed either; ANG is kept for the transition to XCG.
/// The table is sorted by code so lookups can binary-search it.
pub const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// An active ISO 4217 currency (see [`ISO_4217`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

/// Why a string is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not three uppercase ASCII letters.
    #[error("a currency code is three uppercase ASCII letters")]
    Malformed,
    /// Well-formed but not an active ISO 4217 code.
    #[error("not an active ISO 4217 currency code")]
    Unknown,
}

impl Currency {
    /// Looks a code up in the ISO 4217 table. Only exact uppercase codes are accepted.
    pub fn from_code(code: &str) -> Result<Self, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Malformed);
        }
        let index = ISO_4217
            .binary_search_by(|(c, _)| (*c).cmp(code))
            .map_err(|_| CurrencyError::Unknown)?;
        let &(code, minor_units) = ISO_4217.get(index).ok_or(CurrencyError::Unknown)?;
        Ok(Currency { code, minor_units })
    }

    /// The alphabetic code, e.g. `"USD"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Number of decimal places of the minor unit (USD 2, JPY 0, KWD 3, CLF 4).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        assert!(ISO_4217.len() >= 150, "only {} codes", ISO_4217.len());
        for pair in ISO_4217.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} !< {}", pair[0].0, pair[1].0);
        }
        for (code, minor) in ISO_4217 {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(*minor <= 4);
        }
    }

    #[test]
    fn minor_units() {
        let m = |c: &str| Currency::from_code(c).unwrap().minor_units();
        assert_eq!(m("USD"), 2);
        assert_eq!(m("JPY"), 0);
        for c in ["KWD", "BHD", "JOD", "OMR", "TND", "LYD", "IQD"] {
            assert_eq!(m(c), 3, "{c}");
        }
        assert_eq!(m("CLF"), 4);
        assert_eq!(m("UYW"), 4);
    }

    #[test]
    fn rejects_lowercase_unknown_and_non_money_codes() {
        assert_eq!(Currency::from_code("usd"), Err(CurrencyError::Malformed));
        assert_eq!(Currency::from_code("US"), Err(CurrencyError::Malformed));
        assert_eq!(Currency::from_code("USDD"), Err(CurrencyError::Malformed));
        assert_eq!(Currency::from_code("ÜSD"), Err(CurrencyError::Malformed));
        assert_eq!(Currency::from_code("ABC"), Err(CurrencyError::Unknown));
        assert_eq!(Currency::from_code("XXX"), Err(CurrencyError::Unknown));
        assert_eq!(Currency::from_code("XAU"), Err(CurrencyError::Unknown));
        assert_eq!(Currency::from_code("HRK"), Err(CurrencyError::Unknown));
    }
}
