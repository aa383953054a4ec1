//! Property tests of the money path's parsers: no input panics, and what is accepted survives a
//! round trip through the wire format unchanged.
//!
//! - arbitrary bytes and near-valid JSON objects into `parse_transaction` (the SQS consumer) and
//!   `parse_transaction_body` (the HTTP ingest API);
//! - amounts: decimal strings with exponents, huge and tiny values, compared with an exact
//!   reference where one exists;
//! - timestamps: any RFC 3339 text, extreme years and offsets included (a UTC offset can carry
//!   `9999-12-31T23:59:59-23:59` past year 9999).
//!
//! Each suite runs a bounded number of cases (set below) so that `make test` stays quick; a
//! failure prints the minimal input that proptest shrank it to.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::str::FromStr;

use ballast_worker::api::models::parse_transaction_body;
use ballast_worker::transaction::{
    AmountText, Currency, ParseError, Transaction, check_amount, parse_transaction,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

const ID: &str = "0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure must not make the suite slow either.
        max_shrink_iters: 2048,
        // A failure prints its shrunk input; no regression files beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn seed() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "transaction_id": ID,
        "type": "TRANSFER",
        "source_account": "1234567890",
        "target_account": "0987654321",
        "amount": "1000.00",
        "currency": "USD",
        "timestamp": "2024-01-15T10:30:00Z",
        "idempotency_key": "unique-key"
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// What an accepted message must satisfy: it re-validates, and serializing and parsing it again
/// gives exactly the same transaction (same amount *and scale*, same instant and offset).
fn assert_round_trip(tx: &Transaction) -> Result<(), TestCaseError> {
    prop_assert!(tx.validate().is_ok(), "accepted but invalid: {tx:?}");
    let wire = tx
        .to_json()
        .map_err(|e| TestCaseError::fail(format!("accepted {tx:?} but cannot serialize: {e}")))?;
    let again = parse_transaction(wire.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("{wire} does not parse back: {e:?}")))?;
    prop_assert_eq!(&again, tx);
    if let Some(amount) = tx.amount {
        prop_assert!(amount > Decimal::ZERO);
        prop_assert_eq!(amount.scale(), tx.currency.minor_units());
    }
    Ok(())
}

/// JSON values of every kind, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,5})?"
            .prop_map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,16}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Plausible and implausible values for each field of the wire format.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let strings: BoxedStrategy<String> = match field {
        "transaction_id" => prop_oneof![
            Just(ID.to_owned()),
            Just("00000000-0000-0000-0000-000000000000".to_owned()),
            "[0-9a-fA-F-]{30,40}",
        ]
        .boxed(),
        "type" => prop_oneof![
            prop::sample::select(vec![
                "TRANSFER",
                "PAYMENT",
                "DEPOSIT",
                "WITHDRAWAL",
                "BALANCE_CHECK",
                "transfer",
                "REFUND",
                ""
            ])
            .prop_map(str::to_owned),
            "[A-Z_]{0,16}",
        ]
        .boxed(),
        "source_account" | "target_account" => prop_oneof![
            "[0-9]{10,12}",
            "[0-9]{0,14}",
            Just("1234567890".to_owned()),
            Just("0987654321".to_owned()),
            ".{0,14}",
        ]
        .boxed(),
        "amount" => amount_text().boxed(),
        "currency" => prop_oneof![
            prop::sample::select(vec!["USD", "EUR", "JPY", "BHD", "CLF", "XXX", "usd", "US"])
                .prop_map(str::to_owned),
            "[A-Z]{3}",
            ".{0,5}",
        ]
        .boxed(),
        "timestamp" => timestamp_text().boxed(),
        _ => prop_oneof![
            "[ -~]{1,128}",
            "[ -~]{129,140}",
            Just(String::new()),
            ".{1,20}"
        ]
        .boxed(),
    };
    prop_oneof![
        6 => strings.prop_map(Value::String),
        1 => any_json(),
    ]
    .boxed()
}

const FIELDS: [&str; 8] = [
    "transaction_id",
    "type",
    "source_account",
    "target_account",
    "amount",
    "currency",
    "timestamp",
    "idempotency_key",
];

/// A valid message with some fields replaced, removed, nulled, duplicated or joined by unknown
/// ones: the inputs closest to the accepting paths.
fn near_valid_message() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            prop::sample::select(FIELDS.to_vec()),
            0..5u8,
            prop::sample::select(FIELDS.to_vec()).prop_flat_map(field_value),
        ),
        0..4,
    );
    (edits, prop::option::of("[a-z_]{1,12}")).prop_map(|(edits, unknown)| {
        let mut map = seed();
        let mut duplicate = None;
        for (field, action, value) in edits {
            match action {
                0 => {
                    map.remove(field);
                }
                1 => {
                    map.insert(field.to_owned(), Value::Null);
                }
                2 => duplicate = Some((field, value)),
                _ => {
                    map.insert(field.to_owned(), value);
                }
            }
        }
        if let Some(name) = unknown {
            map.insert(name, json!(1));
        }
        let mut text = Value::Object(map).to_string();
        if let Some((field, value)) = duplicate {
            // serde_json maps cannot hold a duplicate; splice one into the text.
            text.pop();
            let sep = if text.len() > 1 { "," } else { "" };
            text.push_str(&format!("{sep}{}:{value}}}", Value::from(field)));
        }
        text
    })
}

/// Decimal-looking texts: signs, leading zeros, long digit runs, exponents far out of range.
fn amount_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,6}(\\.[0-9]{1,3})?",
        "-?[0-9]{1,40}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,9})?",
        "[+-]?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,30})?[eE][+-]?[0-9]{1,3}",
        "0\\.0{0,40}[1-9]",
        "[1-9]{1,3}e-?[0-9]{1,2}",
        "[0-9.eE+-]{1,12}",
        ".{0,12}",
    ]
}

/// RFC 3339-shaped texts over the whole range of every component, extremes weighted up.
fn timestamp_text() -> impl Strategy<Value = String> {
    let year = prop_oneof![0..=10_000i32, Just(1), Just(9999), Just(0), Just(10_000)];
    let sign = prop::sample::select(vec!['+', '-']);
    let offset = prop_oneof![
        3 => (sign, 0..=23u8, 0..=59u8).prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        1 => prop::sample::select(vec!["Z", "z", "+23:59", "-23:59", "+24:00", "-00:00", "+0000"])
            .prop_map(str::to_owned),
    ];
    let fraction = prop::option::of("[0-9]{1,12}");
    (
        year,
        1..=12u8,
        1..=31u8,
        0..=23u8,
        0..=59u8,
        0..=60u8,
        fraction,
        prop::sample::select(vec!['T', 't', ' ']),
        offset,
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, sep, off)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

fn deposit_with_amount(raw_json: &str, currency: &str) -> String {
    format!(
        r#"{{"transaction_id":"{ID}","type":"DEPOSIT","target_account":"0987654321","amount":{raw_json},"currency":"{currency}","timestamp":"2024-01-15T10:30:00Z","idempotency_key":"k"}}"#
    )
}

fn with_timestamp(ts: &str) -> String {
    let mut map = seed();
    map.insert("timestamp".into(), Value::String(ts.to_owned()));
    Value::Object(map).to_string()
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(tx) = parse_transaction(&bytes) {
            assert_round_trip(&tx)?;
        }
        let _ = parse_transaction_body(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let text = value.to_string();
        if let Ok(tx) = parse_transaction(text.as_bytes()) {
            assert_round_trip(&tx)?;
        }
        let _ = parse_transaction_body(text.as_bytes());
    }

    #[test]
    fn near_valid_messages_are_accepted_exactly_or_rejected_cleanly(text in near_valid_message()) {
        match parse_transaction(text.as_bytes()) {
            Ok(tx) => assert_round_trip(&tx)?,
            // A rejection always names its reason; Invalid keeps the id for the REJECTED record.
            Err(ParseError::Invalid { transaction_id, error, .. }) => {
                prop_assert!(!error.code().is_empty());
                prop_assert!(!transaction_id.is_nil());
            }
            Err(ParseError::Malformed(e)) => prop_assert!(!e.code().is_empty()),
        }
        let _ = parse_transaction_body(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn amounts_parse_exactly_or_not_at_all(text in amount_text()) {
        let parsed = AmountText::new(text.clone()).to_decimal();
        if let Ok(d) = parsed {
            // Exact: the text and the decimal denote the same number.
            if !text.contains(['e', 'E']) {
                let reference = Decimal::from_str_exact(&text);
                if let Ok(reference) = reference {
                    prop_assert_eq!(d, reference);
                    prop_assert_eq!(d.scale(), reference.scale());
                }
            }
            // The decimal's own text reads back to the same value and scale.
            let back = AmountText::from_decimal(d).to_decimal();
            prop_assert_eq!(back.map(|b| (b, b.scale())), Ok((d, d.scale())));
            for code in ["USD", "JPY", "BHD", "CLF"] {
                let currency = Currency::from_code(code).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Ok(checked) = check_amount(d, currency) {
                    prop_assert_eq!(checked, d);
                    prop_assert_eq!(checked.scale(), currency.minor_units());
                    prop_assert!(checked > Decimal::ZERO);
                }
            }
        }
        // The same text as a string and (when it is JSON) as a number: the whole message path.
        // Unquoted, JSON's own whitespace around the number is not part of it.
        let unquoted = AmountText::new(text.trim_matches([' ', '\t', '\n', '\r']).to_string()).to_decimal();
        for (raw, expected) in [
            (Value::String(text.clone()).to_string(), &parsed),
            (text.clone(), &unquoted),
        ] {
            if let Ok(tx) = parse_transaction(deposit_with_amount(&raw, "USD").as_bytes()) {
                assert_round_trip(&tx)?;
                let amount = tx.amount.ok_or_else(|| TestCaseError::fail("deposit without amount"))?;
                prop_assert_eq!(Ok(amount), expected.clone());
            }
        }
    }

    #[test]
    fn huge_and_tiny_amounts_are_refused_not_rounded(
        digits in "[1-9][0-9]{18,60}",
        zeros in 3..60usize,
    ) {
        // At least 19 integer digits: over the 10^18 limit, whatever the representation.
        let huge = parse_transaction(deposit_with_amount(&digits, "USD").as_bytes());
        prop_assert!(huge.is_err(), "{digits} accepted");
        // More decimal places than USD has: never silently rounded to 0.00 or 0.01.
        let tiny = format!("0.{}1", "0".repeat(zeros));
        let tiny_result = parse_transaction(deposit_with_amount(&tiny, "USD").as_bytes());
        prop_assert!(tiny_result.is_err(), "{tiny} accepted");
        let exp = format!("1e-{zeros}");
        let exp_result = parse_transaction(deposit_with_amount(&exp, "USD").as_bytes());
        prop_assert!(exp_result.is_err(), "{exp} accepted");
    }

    #[test]
    fn exact_exponent_forms_equal_their_plain_value(mantissa in 1..1_000_000u64, exp in 0..10u32) {
        let plain = Decimal::from(mantissa) * Decimal::from(10u64.pow(exp));
        let tx = parse_transaction(deposit_with_amount(&format!("{mantissa}e{exp}"), "USD").as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{mantissa}e{exp}: {e:?}")))?;
        prop_assert_eq!(tx.amount, Some(plain));
        assert_round_trip(&tx)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_rfc3339_timestamp_parses_or_is_rejected_without_panicking(ts in timestamp_text()) {
        match parse_transaction(with_timestamp(&ts).as_bytes()) {
            Ok(tx) => {
                // Accepted instants are within years 1..=9999 in UTC, whatever the offset.
                let utc = tx.timestamp.checked_to_offset(time::UtcOffset::UTC);
                prop_assert!(
                    utc.is_some_and(|u| (1..=9999).contains(&u.year())),
                    "{ts} accepted as {:?}", tx.timestamp
                );
                assert_round_trip(&tx)?;
            }
            Err(ParseError::Invalid { error, .. }) => prop_assert_eq!(error.field(), "timestamp"),
            Err(other) => prop_assert!(false, "{ts}: {other:?}"),
        }
    }
}

/// The case the issue names, kept as an explicit regression next to the generated ones.
#[test]
fn the_last_second_of_9999_with_a_negative_offset_is_rejected_not_a_panic() {
    let result = parse_transaction(with_timestamp("9999-12-31T23:59:59-23:59").as_bytes());
    match result {
        Err(ParseError::Invalid { error, .. }) => assert_eq!(error.field(), "timestamp"),
        other => panic!("expected an invalid timestamp, got {other:?}"),
    }
}

#[test]
fn reference_parser_agrees_on_plain_amounts() {
    // A sanity check of the property's oracle itself.
    assert_eq!(
        AmountText::new("1000.00").to_decimal(),
        Ok(Decimal::from_str("1000.00").unwrap_or_default())
    );
}
