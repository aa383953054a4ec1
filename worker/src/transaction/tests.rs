use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;

const ID: &str = "0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b";

fn seed() -> Value {
    json!({
        "transaction_id": ID,
        "type": "TRANSFER",
        "source_account": "1234567890",
        "target_account": "0987654321",
        "amount": 1000.00,
        "currency": "USD",
        "timestamp": "2024-01-15T10:30:00Z",
        "idempotency_key": "unique-key"
    })
}

/// Replaces (or with `None`, removes) one field of the seed message and parses it.
fn with(field: &str, value: Option<Value>) -> Result<Transaction, ParseError> {
    let mut v = seed();
    let obj = v.as_object_mut().unwrap();
    match value {
        Some(value) => {
            obj.insert(field.to_owned(), value);
        }
        None => {
            obj.remove(field);
        }
    }
    parse_transaction(v.to_string().as_bytes())
}

/// Splices a raw JSON text (e.g. a number literal) in as the amount.
fn with_raw_amount(raw: &str, currency: &str) -> Result<Transaction, ParseError> {
    let text = format!(
        r#"{{"transaction_id":"{ID}","type":"DEPOSIT","target_account":"0987654321","amount":{raw},"currency":"{currency}","timestamp":"2024-01-15T10:30:00Z","idempotency_key":"k"}}"#
    );
    parse_transaction(text.as_bytes())
}

fn invalid_code(r: Result<Transaction, ParseError>) -> (&'static str, String) {
    match r {
        Err(ParseError::Invalid { error, .. }) => (error.code(), error.field().to_owned()),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn malformed_code(r: Result<Transaction, ParseError>) -> &'static str {
    match r {
        Err(e @ ParseError::Malformed(_)) => e.code(),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

#[test]
fn parses_the_seed_message() {
    let tx = parse_transaction(seed().to_string().as_bytes()).unwrap();
    assert_eq!(tx.transaction_id.to_string(), ID);
    assert_eq!(tx.kind, TransactionType::Transfer);
    assert_eq!(tx.source_account.as_ref().unwrap().as_str(), "1234567890");
    assert_eq!(tx.target_account.as_ref().unwrap().as_str(), "0987654321");
    assert_eq!(tx.amount.unwrap().to_string(), "1000.00");
    assert_eq!(tx.currency.code(), "USD");
    assert_eq!(tx.timestamp.unix_timestamp(), 1_705_314_600);
    assert_eq!(tx.idempotency_key.as_str(), "unique-key");
    assert_eq!(tx.debit_account(), tx.source_account.as_ref());
    assert_eq!(tx.credit_account(), tx.target_account.as_ref());
}

#[test]
fn serializes_back_to_the_seed_format_with_exact_amount_text() {
    let raw = r#"{"transaction_id":"0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b","type":"TRANSFER","source_account":"1234567890","target_account":"0987654321","amount":1000.00,"currency":"USD","timestamp":"2024-01-15T10:30:00Z","idempotency_key":"unique-key"}"#;
    let tx = parse_transaction(raw.as_bytes()).unwrap();
    assert_eq!(tx.to_json().unwrap(), raw);
    // And the serialized form parses back to the same transaction.
    assert_eq!(
        parse_transaction(tx.to_json().unwrap().as_bytes()).unwrap(),
        tx
    );
    // serde round trip through the Deserialize impl.
    let back: Transaction = serde_json::from_str(raw).unwrap();
    assert_eq!(back, tx);
}

#[test]
fn amount_is_canonicalised_to_minor_units() {
    assert_eq!(
        with("amount", Some(json!(1000)))
            .unwrap()
            .amount
            .unwrap()
            .to_string(),
        "1000.00"
    );
    let tx = with_raw_amount("5", "KWD").unwrap();
    assert_eq!(tx.amount.unwrap().to_string(), "5.000");
    assert!(tx.to_json().unwrap().contains(r#""amount":5.000"#));
}

#[test]
fn amount_as_decimal_string() {
    let tx = with("amount", Some(json!("1000.00"))).unwrap();
    assert_eq!(tx.amount, Some(dec("1000.00")));
    assert_eq!(
        invalid_code(with("amount", Some(json!("1,000.00")))).0,
        "invalid_amount"
    );
    assert_eq!(
        invalid_code(with("amount", Some(json!(" 10")))).0,
        "invalid_amount"
    );
    assert_eq!(
        invalid_code(with("amount", Some(json!("")))).0,
        "invalid_amount"
    );
}

#[test]
fn amount_exactness_point_one_plus_point_two() {
    let a = with_raw_amount("0.1", "USD").unwrap().amount.unwrap();
    let b = with_raw_amount("0.2", "USD").unwrap().amount.unwrap();
    assert_eq!(a + b, dec("0.30"));
    // A literal that is inexact in binary floating point survives byte for byte.
    let tx = with_raw_amount("123456789012345.67", "USD").unwrap();
    assert_eq!(tx.amount.unwrap().to_string(), "123456789012345.67");
    let tx = with_raw_amount("9007199254740993", "JPY").unwrap();
    assert_eq!(tx.amount.unwrap().to_string(), "9007199254740993");
}

#[test]
fn amount_exponent_forms() {
    assert_eq!(
        with_raw_amount("1e2", "USD").unwrap().amount,
        Some(dec("100.00"))
    );
    assert_eq!(
        with_raw_amount("1E2", "JPY").unwrap().amount,
        Some(dec("100"))
    );
    assert_eq!(
        with_raw_amount("1.5e1", "JPY").unwrap().amount,
        Some(dec("15"))
    );
    assert_eq!(
        with_raw_amount("1e-2", "USD").unwrap().amount,
        Some(dec("0.01"))
    );
    assert_eq!(
        invalid_code(with_raw_amount("1e-3", "USD")).0,
        "too_many_decimal_places"
    );
    assert_eq!(
        invalid_code(with_raw_amount("1e-40", "USD")).0,
        "amount_not_exact"
    );
    assert_eq!(
        invalid_code(with_raw_amount("1e400", "USD")).0,
        "amount_out_of_range"
    );
    assert_eq!(
        with("amount", Some(json!("2.5e2"))).unwrap().amount,
        Some(dec("250.00"))
    );
}

#[test]
fn amount_huge_values() {
    assert!(with_raw_amount("999999999999999999.99", "USD").is_ok());
    assert_eq!(
        invalid_code(with_raw_amount("1000000000000000000", "USD")).0,
        "amount_out_of_range"
    );
    assert_eq!(
        invalid_code(with_raw_amount(&"9".repeat(100), "USD")).0,
        "amount_out_of_range"
    );
    assert_eq!(
        invalid_code(with_raw_amount("1e18", "JPY")).0,
        "amount_out_of_range"
    );
}

#[test]
fn amount_not_positive() {
    for raw in ["0", "0.00", "-1", "-0", "-0.01", "-1e999", "0e5"] {
        let (code, field) = invalid_code(with_raw_amount(raw, "USD"));
        assert_eq!(code, "amount_not_positive", "{raw}");
        assert_eq!(field, "amount");
    }
    assert_eq!(
        invalid_code(with("amount", Some(json!("-5")))).0,
        "amount_not_positive"
    );
}

#[test]
fn amount_nan_and_infinity() {
    for s in ["NaN", "nan", "Infinity", "-Infinity", "inf"] {
        assert_eq!(
            invalid_code(with("amount", Some(json!(s)))).0,
            "invalid_amount",
            "{s}"
        );
    }
    // A bare NaN literal is not JSON at all.
    assert_eq!(
        malformed_code(with_raw_amount("NaN", "USD")),
        "malformed_json"
    );
}

#[test]
fn amount_wrong_json_type() {
    assert_eq!(
        invalid_code(with("amount", Some(json!(true)))).0,
        "wrong_type"
    );
    assert_eq!(
        invalid_code(with("amount", Some(json!([1])))).0,
        "wrong_type"
    );
    assert_eq!(
        invalid_code(with("amount", Some(json!({"v": 1})))).0,
        "wrong_type"
    );
}

#[test]
fn decimal_places_per_currency() {
    assert_eq!(
        invalid_code(with_raw_amount("100.5", "JPY")),
        ("too_many_decimal_places", "amount".to_owned())
    );
    assert_eq!(
        invalid_code(with_raw_amount("100.0", "JPY")).0,
        "too_many_decimal_places"
    );
    assert!(with_raw_amount("100", "JPY").is_ok());
    assert!(with_raw_amount("1.234", "KWD").is_ok());
    assert!(with_raw_amount("1.234", "BHD").is_ok());
    assert_eq!(
        invalid_code(with_raw_amount("1.2345", "OMR")).0,
        "too_many_decimal_places"
    );
    assert!(with_raw_amount("1.2345", "CLF").is_ok());
    assert_eq!(
        invalid_code(with_raw_amount("10.001", "USD")).0,
        "too_many_decimal_places"
    );
    // Trailing zeros count as written.
    assert_eq!(
        invalid_code(with_raw_amount("10.000", "USD")).0,
        "too_many_decimal_places"
    );
    match with_raw_amount("1.5", "JPY") {
        Err(ParseError::Invalid { error, .. }) => {
            let msg = error.to_string();
            assert!(msg.contains("JPY allows at most 0"), "{msg}");
            assert!(msg.contains("hint"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn currency_rules() {
    assert_eq!(
        invalid_code(with("currency", Some(json!("usd")))).0,
        "invalid_currency"
    );
    assert_eq!(
        invalid_code(with("currency", Some(json!("US")))).0,
        "invalid_currency"
    );
    assert_eq!(
        invalid_code(with("currency", Some(json!("ZZZ")))).0,
        "unknown_currency"
    );
    assert_eq!(
        invalid_code(with("currency", Some(json!(840)))).0,
        "wrong_type"
    );
    assert_eq!(
        invalid_code(with("currency", None)),
        ("missing_field", "currency".to_owned())
    );
    assert_eq!(
        with("currency", Some(json!("EUR")))
            .unwrap()
            .currency
            .code(),
        "EUR"
    );
}

#[test]
fn account_number_rules() {
    for ok in ["1234567890", "12345678901", "123456789012"] {
        assert!(with("source_account", Some(json!(ok))).is_ok(), "{ok}");
    }
    for bad in [
        "123456789",
        "1234567890123",
        "12345-67890",
        "12345678a0",
        "１２３４５６７８９０",
        "",
    ] {
        assert_eq!(
            invalid_code(with("source_account", Some(json!(bad)))),
            ("invalid_account_number", "source_account".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(
        invalid_code(with("target_account", Some(json!(1234567890u64)))),
        ("wrong_type", "target_account".to_owned())
    );
}

#[test]
fn transfer_and_payment_need_distinct_accounts() {
    assert_eq!(
        invalid_code(with("target_account", Some(json!("1234567890")))),
        ("same_account", "target_account".to_owned())
    );
    assert_eq!(
        invalid_code(with("target_account", None)),
        ("missing_field", "target_account".to_owned())
    );
    assert_eq!(
        invalid_code(with("source_account", Some(Value::Null))),
        ("missing_field", "source_account".to_owned())
    );
    assert!(with("type", Some(json!("PAYMENT"))).is_ok());
}

#[test]
fn deposit_rules() {
    let mut v = seed();
    v["type"] = json!("DEPOSIT");
    let r = parse_transaction(v.to_string().as_bytes());
    assert_eq!(
        invalid_code(r),
        ("field_not_allowed", "source_account".to_owned())
    );
    v.as_object_mut().unwrap().remove("source_account");
    let tx = parse_transaction(v.to_string().as_bytes()).unwrap();
    assert_eq!(tx.debit_account(), None);
    assert_eq!(tx.credit_account().unwrap().as_str(), "0987654321");
    v.as_object_mut().unwrap().remove("target_account");
    let r = parse_transaction(v.to_string().as_bytes());
    assert_eq!(
        invalid_code(r),
        ("missing_field", "target_account".to_owned())
    );
}

#[test]
fn withdrawal_rules() {
    let mut v = seed();
    v["type"] = json!("WITHDRAWAL");
    let r = parse_transaction(v.to_string().as_bytes());
    assert_eq!(
        invalid_code(r),
        ("field_not_allowed", "target_account".to_owned())
    );
    v.as_object_mut().unwrap().remove("target_account");
    let tx = parse_transaction(v.to_string().as_bytes()).unwrap();
    assert_eq!(tx.debit_account().unwrap().as_str(), "1234567890");
    assert_eq!(tx.credit_account(), None);
}

#[test]
fn balance_check_rules() {
    let mut v = seed();
    v["type"] = json!("BALANCE_CHECK");
    let obj = v.as_object_mut().unwrap();
    obj.remove("amount");
    let r = parse_transaction(v.to_string().as_bytes());
    assert_eq!(invalid_code(r).0, "ambiguous_account");
    v.as_object_mut().unwrap().remove("target_account");
    let tx = parse_transaction(v.to_string().as_bytes()).unwrap();
    assert_eq!(tx.amount, None);
    assert_eq!(tx.balance_account().unwrap().as_str(), "1234567890");
    assert!(!tx.to_json().unwrap().contains("amount"));
    // Amount must be absent: even zero is refused.
    for amount in [json!(0), json!(10.5), json!("0")] {
        v["amount"] = amount;
        let r = parse_transaction(v.to_string().as_bytes());
        assert_eq!(invalid_code(r), ("field_not_allowed", "amount".to_owned()));
    }
    v["amount"] = Value::Null;
    assert!(parse_transaction(v.to_string().as_bytes()).is_ok());
    // Target only also works; neither is an error.
    let obj = v.as_object_mut().unwrap();
    obj.remove("source_account");
    obj.insert("target_account".into(), json!("0987654321"));
    let tx = parse_transaction(v.to_string().as_bytes()).unwrap();
    assert_eq!(tx.balance_account().unwrap().as_str(), "0987654321");
    v.as_object_mut().unwrap().remove("target_account");
    assert_eq!(
        invalid_code(parse_transaction(v.to_string().as_bytes())).0,
        "missing_account"
    );
}

#[test]
fn money_movements_require_an_amount() {
    assert_eq!(
        invalid_code(with("amount", None)),
        ("missing_field", "amount".to_owned())
    );
    assert_eq!(
        invalid_code(with("amount", Some(Value::Null))),
        ("missing_field", "amount".to_owned())
    );
}

#[test]
fn transaction_type_is_exact() {
    for bad in ["transfer", "Transfer", "REFUND", "", " TRANSFER"] {
        assert_eq!(
            invalid_code(with("type", Some(json!(bad)))),
            ("unknown_transaction_type", "type".to_owned())
        );
    }
    assert_eq!(
        invalid_code(with("type", None)),
        ("missing_field", "type".to_owned())
    );
    for t in TransactionType::ALL {
        assert_eq!(t.as_str().parse::<TransactionType>().unwrap(), t);
    }
}

#[test]
fn unknown_and_duplicate_fields_are_rejected() {
    assert_eq!(
        invalid_code(with("memo", Some(json!("hi")))),
        ("unknown_field", "memo".to_owned())
    );
    let dup = format!(
        r#"{{"transaction_id":"{ID}","type":"DEPOSIT","target_account":"0987654321","amount":1,"amount":2,"currency":"USD","timestamp":"2024-01-15T10:30:00Z","idempotency_key":"k"}}"#
    );
    assert_eq!(
        invalid_code(parse_transaction(dup.as_bytes())),
        ("duplicate_field", "amount".to_owned())
    );
    let dup_id = format!(r#"{{"transaction_id":"{ID}","transaction_id":"{ID}"}}"#);
    assert_eq!(
        malformed_code(parse_transaction(dup_id.as_bytes())),
        "duplicate_field"
    );
}

#[test]
fn timestamp_rules() {
    let ok = with("timestamp", Some(json!("2024-01-15T12:30:00.123456+02:00"))).unwrap();
    assert_eq!(ok.timestamp.unix_timestamp(), 1_705_314_600);
    for bad in [
        "2024-01-15",
        "2024-01-15 10:30:00Z",
        "1705314600",
        "2024-13-01T00:00:00Z",
        "yesterday",
    ] {
        assert_eq!(
            invalid_code(with("timestamp", Some(json!(bad)))),
            ("invalid_timestamp", "timestamp".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(
        invalid_code(with("timestamp", Some(json!(1_705_314_600)))).0,
        "wrong_type"
    );
}

/// Valid RFC 3339 texts whose conversion to UTC leaves years 0001-9999 (or the representable
/// range): a clear validation error naming the field, never a panic.
#[test]
fn timestamps_that_overflow_in_utc_are_invalid_not_a_panic() {
    for bad in [
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59.999999999-00:01",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00+00:01",
    ] {
        let parsed = std::panic::catch_unwind(|| with("timestamp", Some(json!(bad))));
        let result = parsed.unwrap_or_else(|_| panic!("parsing {bad} panicked"));
        assert_eq!(
            invalid_code(result),
            ("invalid_timestamp", "timestamp".to_owned()),
            "{bad}"
        );
    }
    // The edges themselves are fine.
    for good in [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+23:59",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00-23:59",
    ] {
        assert!(with("timestamp", Some(json!(good))).is_ok(), "{good}");
    }
    // A Transaction built directly is re-checked by validate without panicking.
    let mut tx = with("timestamp", Some(json!("2024-01-15T10:30:00Z"))).unwrap();
    tx.timestamp = time::macros::datetime!(9999-12-31 23:59:59 -23:59);
    let err = tx.validate().unwrap_err();
    assert_eq!(err.code(), "invalid_timestamp");
    assert_eq!(err.field(), "timestamp");
    assert!(err.to_string().contains("years 0001-9999"), "{err}");
}

#[test]
fn idempotency_key_rules() {
    assert!(with("idempotency_key", Some(json!("a".repeat(128)))).is_ok());
    assert!(with("idempotency_key", Some(json!("key with spaces ~!@#"))).is_ok());
    for bad in [
        String::new(),
        "a".repeat(129),
        "tab\there".into(),
        "ключ".into(),
        "nl\n".into(),
    ] {
        assert_eq!(
            invalid_code(with("idempotency_key", Some(json!(bad)))),
            ("invalid_idempotency_key", "idempotency_key".to_owned()),
            "{bad:?}"
        );
    }
    assert_eq!(
        invalid_code(with("idempotency_key", None)),
        ("missing_field", "idempotency_key".to_owned())
    );
}

#[test]
fn invalid_carries_id_and_valid_key_only() {
    match with("currency", Some(json!("ZZZ"))) {
        Err(ParseError::Invalid {
            transaction_id,
            idempotency_key,
            ..
        }) => {
            assert_eq!(transaction_id.to_string(), ID);
            assert_eq!(idempotency_key.unwrap().as_str(), "unique-key");
        }
        other => panic!("{other:?}"),
    }
    match with("idempotency_key", Some(json!(""))) {
        Err(ParseError::Invalid {
            idempotency_key, ..
        }) => assert_eq!(idempotency_key, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_messages() {
    assert_eq!(malformed_code(parse_transaction(b"")), "malformed_json");
    assert_eq!(
        malformed_code(parse_transaction(b"not json")),
        "malformed_json"
    );
    assert_eq!(
        malformed_code(parse_transaction(b"{\"a\":1")),
        "malformed_json"
    );
    assert_eq!(
        malformed_code(parse_transaction(b"{} trailing")),
        "malformed_json"
    );
    assert_eq!(
        malformed_code(parse_transaction(b"\xff\xfe")),
        "malformed_json"
    );
    assert_eq!(malformed_code(parse_transaction(b"[1,2]")), "not_an_object");
    assert_eq!(
        malformed_code(parse_transaction(b"\"str\"")),
        "not_an_object"
    );
    assert_eq!(malformed_code(parse_transaction(b"42")), "not_an_object");
    assert_eq!(malformed_code(parse_transaction(b"null")), "not_an_object");
    assert_eq!(
        malformed_code(parse_transaction(b"{}")),
        "missing_transaction_id"
    );
    assert_eq!(
        malformed_code(with("transaction_id", None)),
        "missing_transaction_id"
    );
    assert_eq!(
        malformed_code(with("transaction_id", Some(Value::Null))),
        "missing_transaction_id"
    );
    for bad in [
        json!("not-a-uuid"),
        json!(42),
        json!("0b9d2c5e6a7f4c1e9a0b3f2d1c4e5a6b"),
        json!("00000000-0000-0000-0000-000000000000"),
        json!("{0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b}"),
    ] {
        assert_eq!(
            malformed_code(with("transaction_id", Some(bad.clone()))),
            "invalid_transaction_id",
            "{bad}"
        );
    }
}

#[test]
fn request_validate_is_reusable_without_json() {
    let req = TransactionRequest {
        transaction_id: Some(ID.into()),
        kind: Some("WITHDRAWAL".into()),
        source_account: Some("1234567890".into()),
        target_account: None,
        amount: Some(AmountText::new("12.5")),
        currency: Some("EUR".into()),
        timestamp: Some("2024-01-15T10:30:00Z".into()),
        idempotency_key: Some("k-1".into()),
        principal: None,
        target_currency: None,
    };
    let tx = req.validate().unwrap();
    assert_eq!(tx.amount, Some(dec("12.50")));
    let bad = TransactionRequest {
        transaction_id: Some("nope".into()),
        ..req.clone()
    };
    assert_eq!(bad.validate().unwrap_err().code(), "invalid_transaction_id");
    let missing = TransactionRequest {
        transaction_id: None,
        ..req
    };
    assert_eq!(missing.validate().unwrap_err().field(), "transaction_id");
}

#[test]
fn request_deserializes_strictly_via_serde() {
    let req: TransactionRequest = serde_json::from_str(&seed().to_string()).unwrap();
    assert_eq!(req.amount.as_ref().unwrap().as_str(), "1000.0");
    let raw = r#"{"transaction_id":"x","amount":1000.00}"#;
    let req: TransactionRequest = serde_json::from_str(raw).unwrap();
    assert_eq!(req.amount.unwrap().as_str(), "1000.00");
    assert!(serde_json::from_str::<TransactionRequest>(r#"{"bogus":1}"#).is_err());
    assert!(serde_json::from_str::<Transaction>(r#"{"transaction_id":"x"}"#).is_err());
}

#[test]
fn transaction_validate_rechecks_built_values() {
    let mut tx = parse_transaction(seed().to_string().as_bytes()).unwrap();
    assert_eq!(tx.validate(), Ok(()));
    tx.amount = Some(dec("-1"));
    assert_eq!(tx.validate().unwrap_err().code(), "amount_not_positive");
    tx.amount = Some(dec("0.001"));
    assert_eq!(tx.validate().unwrap_err().code(), "too_many_decimal_places");
    tx.amount = Some(dec("1"));
    tx.target_account = tx.source_account.clone();
    assert_eq!(tx.validate().unwrap_err(), ValidationError::SameAccount);
}

#[test]
fn every_error_has_code_field_and_hint() {
    let errors = [
        invalid_code(with("memo", Some(json!(1)))),
        invalid_code(with("amount", Some(json!(-1)))),
        invalid_code(with("currency", Some(json!("ZZZ")))),
        invalid_code(with("source_account", Some(json!("1")))),
    ];
    for (code, field) in errors {
        assert!(!code.is_empty());
        assert!(!field.is_empty());
    }
    let e = ValidationError::InvalidAccountNumber {
        field: "source_account",
        reason: AccountNumberError::Length(3),
    };
    let msg = e.to_string();
    assert!(
        msg.contains("source_account") && msg.contains("hint"),
        "{msg}"
    );
    let e = ValidationError::MissingField {
        field: "target_account",
        kind: Some(TransactionType::Deposit),
    };
    assert!(
        e.to_string().contains("DEPOSIT needs `target_account`"),
        "{e}"
    );
}

#[test]
fn property_random_valid_amounts_round_trip() {
    // Deterministic xorshift: every generated amount parses exactly and re-serializes as the
    // same number, for currencies with 0, 2, 3 and 4 minor units.
    let mut state: u64 = 0xDEAD_BEEF_CAFE_F00D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (ccy, minor) in [("JPY", 0u32), ("USD", 2), ("KWD", 3), ("CLF", 4)] {
        for _ in 0..300 {
            let int = next() % 10_000_000_000 + 1;
            let text = if minor == 0 {
                int.to_string()
            } else {
                let frac = next() % 10u64.pow(minor);
                format!("{int}.{frac:0width$}", width = minor as usize)
            };
            let tx = with_raw_amount(&text, ccy).unwrap();
            assert_eq!(tx.amount.unwrap().to_string(), text);
            assert!(
                tx.to_json()
                    .unwrap()
                    .contains(&format!("\"amount\":{text},"))
            );
        }
    }
}

#[test]
fn principal_is_optional_and_round_trips() {
    assert_eq!(with("principal", None).unwrap().principal, None);
    let tx = with("principal", Some(json!("alice"))).unwrap();
    assert_eq!(tx.principal.as_ref().map(Subject::as_str), Some("alice"));
    let text = tx.to_json().unwrap();
    assert!(text.ends_with(r#""principal":"alice"}"#), "{text}");
    assert_eq!(parse_transaction(text.as_bytes()).unwrap(), tx);
    // Without a principal the seed format is unchanged.
    let plain = with("principal", None).unwrap().to_json().unwrap();
    assert!(!plain.contains("principal"), "{plain}");
    // `null` counts as absent, like every field.
    assert_eq!(
        with("principal", Some(Value::Null)).unwrap().principal,
        None
    );
}

#[test]
fn principal_must_be_a_plain_subject() {
    for (value, code) in [
        (json!(""), "invalid_principal"),
        (json!("a\nb"), "invalid_principal"),
        (json!("x".repeat(256)), "invalid_principal"),
        (json!(42), "wrong_type"),
    ] {
        let (got, field) = invalid_code(with("principal", Some(value.clone())));
        assert_eq!((got, field.as_str()), (code, "principal"), "{value}");
    }
    // Still nothing else new is accepted.
    let (code, field) = invalid_code(with("owner", Some(json!("alice"))));
    assert_eq!((code, field.as_str()), ("unknown_field", "owner"));
}

#[test]
fn target_currency_is_optional_and_only_for_transfers_and_payments() {
    // Absent: the seed format is unchanged and the movement is same-currency.
    let plain = with("target_currency", None).unwrap();
    assert_eq!((plain.target_currency, plain.conversion()), (None, None));
    assert!(!plain.to_json().unwrap().contains("target_currency"));
    // Present: a conversion, round-tripped.
    let tx = with("target_currency", Some(json!("EUR"))).unwrap();
    assert_eq!(tx.conversion().map(|c| c.code()), Some("EUR"));
    assert_eq!(tx.credit_currency().code(), "EUR");
    let text = tx.to_json().unwrap();
    assert!(
        text.contains(r#""currency":"USD","target_currency":"EUR""#),
        "{text}"
    );
    assert_eq!(parse_transaction(text.as_bytes()).unwrap(), tx);
    // Equal to `currency`: no conversion.
    let same = with("target_currency", Some(json!("USD"))).unwrap();
    assert_eq!(same.conversion(), None);
    // Checked like `currency`.
    for (value, code) in [
        (json!("usd"), "invalid_currency"),
        (json!("XYZ"), "unknown_currency"),
        (json!(978), "wrong_type"),
    ] {
        let (got, field) = invalid_code(with("target_currency", Some(value.clone())));
        assert_eq!(got, code, "{value} ({field})");
    }
    // Only TRANSFER and PAYMENT may convert.
    let mut deposit = seed();
    let obj = deposit.as_object_mut().unwrap();
    obj.insert("type".into(), json!("DEPOSIT"));
    obj.remove("source_account");
    obj.insert("target_currency".into(), json!("EUR"));
    let (code, field) = invalid_code(parse_transaction(deposit.to_string().as_bytes()));
    assert_eq!(
        (code, field.as_str()),
        ("field_not_allowed", "target_currency")
    );
}
