//! Value types shared by every resource kind.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A duration written with a unit: `500ms`, `60s`, `5m`, `12h`, `14d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }

    pub fn std(&self) -> std::time::Duration {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration")]
pub struct DurationError {
    pub input: String,
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            input: s.to_string(),
        };
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits_end == 0 {
            return Err(err());
        }
        let value: u64 = s[..digits_end].parse().map_err(|_| err())?;
        let millis_per_unit: u64 = match &s[digits_end..] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        let millis = value.checked_mul(millis_per_unit).ok_or_else(err)?;
        Ok(Self(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        let (value, unit) = if !millis.is_multiple_of(1000) {
            (millis, "ms")
        } else {
            let secs = millis / 1000;
            // Seconds below an hour read best next to AWS's own numbers (60s, 300s).
            if secs < 3600 {
                (secs, "s")
            } else if secs.is_multiple_of(86_400) {
                (secs / 86_400, "d")
            } else if secs.is_multiple_of(3600) {
                (secs / 3600, "h")
            } else if secs.is_multiple_of(60) {
                (secs / 60, "m")
            } else {
                (secs, "s")
            }
        };
        write!(f, "{value}{unit}")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub const DURATION_PATTERN: &str = "^[0-9]+(ms|s|m|h|d)$";

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "duration",
            "pattern": DURATION_PATTERN,
            "description": "A duration with a unit: ms, s, m, h or d (e.g. 60s, 5m, 14d).",
            "examples": ["60s", "5m", "14d"]
        })
    }
}

/// An exact decimal number (thresholds and the like); never goes through binary floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(pub rust_decimal::Decimal);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.normalize().fmt(f)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        rust_decimal::Decimal::from_str_exact(&text)
            .map(Decimal)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Decimal {
    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "format": "decimal" })
    }
}

/// What `destroy` does with a resource, and with one removed from the blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeletionPolicy {
    Retain,
    Delete,
}

/// Whether Ballast writes a resource or only watches it (`management:` on any resource).
///
/// `observe` is the pause switch of one resource: an operator may change it by hand (raise a
/// group's maximum during a backlog) without apply or `ballast run` undoing it, while plan,
/// drift and the controller keep reporting how it differs from the blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Management {
    /// Create, update, replace and delete it to match the blueprint.
    #[default]
    Manage,
    /// Read it and report its drift; never create, change, replace or delete it.
    Observe,
}

impl Management {
    pub fn as_str(&self) -> &'static str {
        match self {
            Management::Manage => "manage",
            Management::Observe => "observe",
        }
    }
}

/// Extra tags on top of Ballast's ownership tags.
pub type Tags = BTreeMap<String, String>;

/// The settings every resource may carry; read through [`crate::Resource`].
pub trait Lifecycle {
    fn deletion_policy(&self) -> Option<DeletionPolicy>;
    fn adopt(&self) -> bool;
    fn management(&self) -> Management;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (text, secs) in [
            ("60s", 60),
            ("300s", 300),
            ("14d", 1_209_600),
            ("12h", 43_200),
            ("90m", 5400),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs);
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("0s".parse::<Duration>().unwrap().to_string(), "0s");
        assert_eq!("5m".parse::<Duration>().unwrap().as_secs(), 300);
        assert_eq!("1500ms".parse::<Duration>().unwrap().to_string(), "1500ms");
        for bad in ["", "60", "s", "5 m", "-1s", "1.5h", "10w"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }
}
