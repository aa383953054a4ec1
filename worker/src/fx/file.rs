//! The rates file read by `ballast-worker rates load`: YAML, or CSV when its name ends in
//! `.csv` ([`super::csv`], the same fields as columns), validated whole before anything is
//! written, every problem reported at its `file:line:column` with a hint.
//!
//! ```yaml
//! rates:
//!   - base: USD
//!     quote: EUR
//!     rate: "0.9215"                  # exact decimal: at most 10 decimals, below 10^6
//!     source: ECB reference rate 2026-12-04
//!     valid_from: 2026-12-04T00:00:00Z  # inclusive
//!     valid_until: 2026-12-05T00:00:00Z # exclusive
//! ```
//!
//! The file is read through the blueprint's positioned YAML tree
//! ([`ballast_blueprint::yaml`]), with its limits on size, nesting and alias expansion. A file
//! holds at most [`MAX_RATES_PER_FILE`] rates, so that a load is one TransactWriteItems (all or
//! nothing). Rates of one pair may not overlap in time, in the file or with the rates already
//! stored (checked by the load, [`super::admin`]); a rate with the same pair and
//! `valid_from` as a stored one *replaces* it (a correction).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ballast_blueprint::diagnostic::closest;
use ballast_blueprint::yaml::{self, Node, NodeValue};
use ballast_blueprint::{Diagnostic, Diagnostics, Position};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Rate, check_rate};
use crate::transaction::{Currency, CurrencyError, parse_dynamo_number};

/// Most rates in one file (with one guard item per pair, at most 100 items: one
/// TransactWriteItems).
pub const MAX_RATES_PER_FILE: usize = 50;
/// Largest rates file read.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Longest `source` text.
pub const MAX_SOURCE_CHARS: usize = 200;

/// The fields of a rate (the YAML keys, the CSV columns).
pub(super) const FIELDS: [&str; 6] = [
    "base",
    "quote",
    "rate",
    "source",
    "valid_from",
    "valid_until",
];

/// One rate of the file and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRate {
    /// The rate (`version` 0: the load assigns it).
    pub rate: Rate,
    /// Where its list item starts.
    pub position: Position,
}

/// Why a rates file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RatesFileError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The path.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid rates file: every problem, positioned.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and validates a rates file.
pub fn load(path: &Path) -> Result<Vec<FileRate>, RatesFileError> {
    let file = path.display().to_string();
    let limit = u64::try_from(MAX_FILE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(|source| RatesFileError::Io {
            file: file.clone(),
            source,
        })?;
    let one = |d: Diagnostic| {
        RatesFileError::Invalid(Diagnostics {
            file: file.clone(),
            items: vec![d],
        })
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(one(Diagnostic::error(
            start(),
            "",
            format!("the file is over {MAX_FILE_BYTES} bytes"),
        )
        .with_hint(format!(
            "a rates file holds at most {MAX_RATES_PER_FILE} rates; split it"
        ))));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        one(yaml::not_utf8(e.as_bytes(), &e.utf8_error())
            .with_hint("save the rates file as UTF-8 text"))
    })?;
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    match csv {
        true => super::csv::parse(&file, &text),
        false => parse(&file, &text),
    }
    .map_err(RatesFileError::Invalid)
}

fn start() -> Position {
    Position::new(1, 1)
}

/// Validates rates text; `file` only labels the diagnostics. All problems are reported.
pub fn parse(file: &str, source: &str) -> Result<Vec<FileRate>, Diagnostics> {
    let fail = |items: Vec<Diagnostic>| Diagnostics {
        file: file.to_owned(),
        items,
    };
    if source.trim().is_empty() {
        return Err(fail(vec![
            Diagnostic::error(start(), "", "the rates file is empty")
                .with_hint("a rates file is a mapping with one key, `rates:`, holding a list"),
        ]));
    }
    let (root, mut problems) = yaml::parse_document(source).map_err(|d| fail(vec![d]))?;
    let rates = read_root(&root, &mut problems);
    problems.sort_by_key(|d| d.position);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(fail(problems));
    }
    Ok(rates)
}

fn read_root(root: &Node, problems: &mut Vec<Diagnostic>) -> Vec<FileRate> {
    let NodeValue::Mapping(entries) = &root.value else {
        problems.push(
            Diagnostic::error(
                root.position,
                "",
                format!("expected a mapping, found {}", root.kind_name()),
            )
            .with_hint("a rates file is a mapping with one key, `rates:`, holding a list"),
        );
        return Vec::new();
    };
    let mut list = None;
    for (key, value) in entries {
        if key.text == "rates" {
            list = Some(value);
        } else {
            let mut d = Diagnostic::error(
                key.position,
                &key.text,
                format!("unknown key `{}`", key.text),
            );
            d = d.with_hint(match closest(&key.text, ["rates"]) {
                Some(c) => format!("did you mean `{c}`?"),
                None => "the only top-level key is `rates`".to_owned(),
            });
            problems.push(d);
        }
    }
    let Some(list) = list else {
        problems.push(
            Diagnostic::error(root.position, "", "missing key `rates`")
                .with_hint("list the rates under `rates:`"),
        );
        return Vec::new();
    };
    let NodeValue::Sequence(items) = &list.value else {
        problems.push(
            Diagnostic::error(
                list.position,
                "rates",
                format!("expected a list, found {}", list.kind_name()),
            )
            .with_hint("write each rate as a list item starting with `- base: …`"),
        );
        return Vec::new();
    };
    if items.is_empty() {
        problems.push(
            Diagnostic::error(list.position, "rates", "the list of rates is empty")
                .with_hint("a load with nothing to write is probably the wrong file"),
        );
    }
    if items.len() > MAX_RATES_PER_FILE {
        problems.push(
            Diagnostic::error(
                list.position,
                "rates",
                format!(
                    "{} rates, at most {MAX_RATES_PER_FILE} are allowed in one file",
                    items.len()
                ),
            )
            .with_hint("a load is one DynamoDB transaction; split the file and load each part"),
        );
    }
    let rates: Vec<FileRate> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| read_rate(i, item, problems))
        .collect();
    check_overlaps(&rates, problems);
    rates
}

fn read_rate(index: usize, node: &Node, problems: &mut Vec<Diagnostic>) -> Option<FileRate> {
    let path = format!("rates[{index}]");
    let NodeValue::Mapping(entries) = &node.value else {
        problems.push(
            Diagnostic::error(
                node.position,
                &path,
                format!("expected a mapping, found {}", node.kind_name()),
            )
            .with_hint(format!("a rate has the keys {}", FIELDS.join(", "))),
        );
        return None;
    };
    let mut fields: BTreeMap<&str, &Node> = BTreeMap::new();
    for (key, value) in entries {
        match FIELDS.iter().find(|f| **f == key.text) {
            Some(f) => {
                fields.insert(f, value);
            }
            None => problems.push(
                Diagnostic::error(
                    key.position,
                    format!("{path}.{}", key.text),
                    format!("unknown key `{}`", key.text),
                )
                .with_hint(match closest(&key.text, FIELDS) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("a rate has the keys {}", FIELDS.join(", ")),
                }),
            ),
        }
    }
    let before = problems.len();
    let mut scalar = |name: &'static str| -> Option<(&str, Position)> {
        let Some(value) = fields.get(name) else {
            problems.push(
                Diagnostic::error(node.position, &path, format!("missing key `{name}`"))
                    .with_hint(format!("a rate has the keys {}", FIELDS.join(", "))),
            );
            return None;
        };
        match &value.value {
            NodeValue::Scalar(s) if !s.is_null() => Some((s.text.as_str(), value.position)),
            _ => {
                problems.push(Diagnostic::error(
                    value.position,
                    format!("{path}.{name}"),
                    format!("`{name}` must be a text value, found {}", value.kind_name()),
                ));
                None
            }
        }
    };
    let texts = RateTexts {
        base: scalar("base"),
        quote: scalar("quote"),
        rate: scalar("rate"),
        source: scalar("source"),
        valid_from: scalar("valid_from"),
        valid_until: scalar("valid_until"),
    };
    check_rate_texts(&path, node.position, texts, before, problems)
}

/// The six texts of one rate and where each was written (`None`: missing, already reported).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RateTexts<'a> {
    pub(super) base: Option<(&'a str, Position)>,
    pub(super) quote: Option<(&'a str, Position)>,
    pub(super) rate: Option<(&'a str, Position)>,
    pub(super) source: Option<(&'a str, Position)>,
    pub(super) valid_from: Option<(&'a str, Position)>,
    pub(super) valid_until: Option<(&'a str, Position)>,
}

/// Checks one rate's texts, whatever the file's format (the YAML list item or the CSV row at
/// `at`, `path` naming it): every problem is pushed at the text's own position, with a hint.
/// `Some` only when no problem was pushed since `before` (the caller's count, which includes
/// the missing fields it reported).
pub(super) fn check_rate_texts(
    path: &str,
    at: Position,
    texts: RateTexts<'_>,
    before: usize,
    problems: &mut Vec<Diagnostic>,
) -> Option<FileRate> {
    let RateTexts {
        base,
        quote,
        rate,
        source,
        valid_from: from,
        valid_until: until,
    } = texts;
    let quote_at = quote.map(|(_, p)| p);
    let until_at = until.map(|(_, p)| p);
    let currency = |name: &str, (text, at): (&str, Position), problems: &mut Vec<Diagnostic>| {
        match Currency::from_code(text) {
            Ok(c) => Some(c),
            Err(e) => {
                let what = match e {
                    CurrencyError::Malformed => "is not a currency code",
                    CurrencyError::Unknown => "is not an ISO 4217 currency this ledger holds",
                };
                problems.push(
                    Diagnostic::error(at, format!("{path}.{name}"), format!("{text:?} {what}"))
                        .with_hint("use a three-letter ISO 4217 code such as USD, EUR or JPY"),
                );
                None
            }
        }
    };
    let base = base.and_then(|b| currency("base", b, problems));
    let quote = quote.and_then(|q| currency("quote", q, problems));
    if let (Some(b), Some(q), Some(quote_at)) = (base, quote, quote_at)
        && b == q
    {
        problems.push(
            Diagnostic::error(
                quote_at,
                format!("{path}.quote"),
                format!("base and quote are both {b}"),
            )
            .with_hint("a rate converts one currency into another"),
        );
    }
    let rate = rate.and_then(|(text, at)| {
        let parsed = parse_dynamo_number(text)
            .ok()
            .filter(|_| !text.contains(['e', 'E']));
        let Some(value) = parsed else {
            problems.push(
                Diagnostic::error(at, format!("{path}.rate"), format!("{text:?} is not a decimal number"))
                    .with_hint("write the rate as a plain decimal, e.g. \"0.9215\" (quoted keeps it exact to the eye)"),
            );
            return None;
        };
        match check_rate(value) {
            Ok(()) => Some(value),
            Err(e) => {
                problems.push(
                    Diagnostic::error(at, format!("{path}.rate"), format!("{text}: {e}"))
                        .with_hint("a rate is quote units per base unit: positive, below 1000000, at most 10 decimal places"),
                );
                None
            }
        }
    });
    let source = source.and_then(|(text, at)| {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_SOURCE_CHARS || text.chars().any(char::is_control) {
            problems.push(
                Diagnostic::error(at, format!("{path}.source"), format!("`source` must be 1 to {MAX_SOURCE_CHARS} characters without control characters"))
                    .with_hint("name who published the rate, e.g. \"ECB reference rate 2026-12-04\""),
            );
            return None;
        }
        Some(text.to_owned())
    });
    let mut time = |name: &str, found: Option<(&str, Position)>| {
        let (text, at) = found?;
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().filter(|t| {
            matches!(text.as_bytes().get(10), Some(b'T' | b't'))
                && crate::ledger::sort_timestamp(*t).is_ok()
        });
        if parsed.is_none() {
            problems.push(
                Diagnostic::error(
                    at,
                    format!("{path}.{name}"),
                    format!("{text:?} is not an RFC 3339 time"),
                )
                .with_hint("write e.g. 2026-12-04T00:00:00Z (a date, `T`, a time and an offset)"),
            );
        }
        parsed
    };
    let from = time("valid_from", from);
    let until = time("valid_until", until);
    if let (Some(f), Some(u), Some(until_at)) = (from, until, until_at)
        && u <= f
    {
        problems.push(
            Diagnostic::error(
                until_at,
                format!("{path}.valid_until"),
                "`valid_until` is not after `valid_from`",
            )
            .with_hint(
                "a rate is valid from `valid_from` (inclusive) until `valid_until` (exclusive)",
            ),
        );
    }
    if problems.len() != before {
        return None;
    }
    Some(FileRate {
        rate: Rate {
            base: base?,
            quote: quote?,
            rate: rate?,
            source: source?,
            valid_from: from?,
            valid_until: until?,
            version: 0,
        },
        position: at,
    })
}

/// Two rates of one pair whose windows overlap, within `rates`, each reported at the later one.
pub(super) fn check_overlaps(rates: &[FileRate], problems: &mut Vec<Diagnostic>) {
    let mut by_pair: BTreeMap<(Currency, Currency), Vec<&FileRate>> = BTreeMap::new();
    for r in rates {
        by_pair
            .entry((r.rate.base, r.rate.quote))
            .or_default()
            .push(r);
    }
    for list in by_pair.values_mut() {
        list.sort_by_key(|r| r.rate.valid_from);
        for pair in list.windows(2) {
            let [earlier, later] = pair else { continue };
            if later.rate.valid_from < earlier.rate.valid_until {
                problems.push(
                    Diagnostic::error(
                        later.position,
                        "",
                        format!(
                            "this {} rate overlaps the one at line {} (valid until {})",
                            later.rate.pair(),
                            earlier.position.line,
                            earlier.rate.valid_until.format(&Rfc3339).unwrap_or_default()
                        ),
                    )
                    .with_hint("windows of one pair may not overlap: end the earlier one where this one starts"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
rates:
  - base: USD
    quote: EUR
    rate: \"0.9215\"
    source: ECB
    valid_from: 2026-12-04T00:00:00Z
    valid_until: 2026-12-05T00:00:00Z
  - base: USD
    quote: EUR
    rate: 0.9220
    source: ECB
    valid_from: 2026-12-05T00:00:00Z
    valid_until: 2026-12-06T00:00:00Z
  - base: EUR
    quote: JPY
    rate: 162.5
    source: ECB
    valid_from: 2026-12-04T00:00:00Z
    valid_until: 2026-12-05T00:00:00Z
";

    fn errors(text: &str) -> String {
        parse("rates.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_reads_exactly() {
        let rates = parse("rates.yaml", GOOD).unwrap();
        assert_eq!(rates.len(), 3);
        assert_eq!(
            rates[1].rate.rate.to_string(),
            "0.9220",
            "plain scalar kept exact"
        );
        assert_eq!(rates[2].position, Position::new(14, 5));
    }

    #[test]
    fn every_problem_is_positioned_with_a_hint() {
        let text = GOOD
            .replace("rate: \"0.9215\"", "rate: \"-1\"")
            .replace("quote: JPY", "quote: XYZ")
            .replace("rate: 0.9220", "rate: 0.92201234567");
        let out = errors(&text);
        assert!(
            out.contains("rates.yaml:4:11: error: -1: the rate must be positive"),
            "{out}"
        );
        assert!(
            out.contains("rates.yaml:10:11: error: 0.92201234567: the rate has 11 decimal places"),
            "{out}"
        );
        assert!(
            out.contains("rates.yaml:15:12: error: \"XYZ\" is not an ISO 4217"),
            "{out}"
        );
        assert!(out.contains("hint: "), "{out}");
    }

    #[test]
    fn overlapping_windows_of_one_pair_are_refused() {
        let text = GOOD.replace(
            "valid_from: 2026-12-05T00:00:00Z",
            "valid_from: 2026-12-04T12:00:00Z",
        );
        let out = errors(&text);
        assert!(
            out.contains("rates.yaml:8:5: error: this USD/EUR rate overlaps the one at line 2"),
            "{out}"
        );
    }

    #[test]
    fn structure_errors_name_the_key() {
        let out = errors("rate:\n  - base: USD\n");
        assert!(out.contains("1:1: error: unknown key `rate`"), "{out}");
        assert!(out.contains("did you mean `rates`?"), "{out}");
        let out = errors("rates:\n  - base: USD\n    quote: USD\n    rat: 1\n");
        assert!(out.contains("unknown key `rat`"), "{out}");
        assert!(out.contains("missing key `rate`"), "{out}");
        assert!(out.contains("base and quote are both USD"), "{out}");
        assert!(errors("").contains("empty"));
        assert!(errors("rates: []\n").contains("empty"));
        let out = errors(&GOOD.replace(
            "valid_until: 2026-12-05T00:00:00Z\n  - base: USD",
            "valid_until: 2026-12-03T00:00:00Z\n  - base: USD",
        ));
        assert!(
            out.contains("7:18: error: `valid_until` is not after `valid_from`"),
            "{out}"
        );
        let out = errors(&GOOD.replace("2026-12-04T00:00:00Z", "2026-12-04 00:00"));
        assert!(out.contains("is not an RFC 3339 time"), "{out}");
        let out = errors(&GOOD.replace("rate: 162.5", "rate: 1e2"));
        assert!(out.contains("\"1e2\" is not a decimal number"), "{out}");
    }

    #[test]
    fn too_many_rates_are_refused() {
        let mut text = String::from("rates:\n");
        for day in 0..=MAX_RATES_PER_FILE {
            let from = OffsetDateTime::UNIX_EPOCH + time::Duration::days(day as i64);
            let until = from + time::Duration::days(1);
            text.push_str(&format!(
                "  - {{base: USD, quote: EUR, rate: 1, source: x, valid_from: {}, valid_until: {}}}\n",
                from.format(&Rfc3339).unwrap(),
                until.format(&Rfc3339).unwrap()
            ));
        }
        assert!(
            errors(&text).contains("51 rates, at most 50"),
            "{}",
            errors(&text)
        );
    }
}
