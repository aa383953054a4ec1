// Test arithmetic builds expectations from known small values.
#![allow(clippy::arithmetic_side_effects)]
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use rust_decimal::Decimal;
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::transaction::{AccountNumber, Currency, parse_transaction};

const TABLES: Tables<'static> = Tables {
    accounts: "accounts",
    transactions: "transactions",
};
const NOW: OffsetDateTime = datetime!(2024-01-15 10:30:05.25 UTC);

fn tx(kind: &str, source: Option<&str>, target: Option<&str>, amount: Option<&str>) -> Transaction {
    let mut v = serde_json::json!({
        "transaction_id": "0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b",
        "type": kind,
        "currency": "USD",
        "timestamp": "2024-01-15T10:30:00Z",
        "idempotency_key": "unique-key"
    });
    let obj = v.as_object_mut().unwrap();
    if let Some(s) = source {
        obj.insert("source_account".into(), s.into());
    }
    if let Some(t) = target {
        obj.insert("target_account".into(), t.into());
    }
    let mut text = v.to_string();
    if let Some(a) = amount {
        text = text.replacen('{', &format!("{{\"amount\":{a},"), 1);
    }
    parse_transaction(text.as_bytes()).unwrap()
}

fn transfer() -> Transaction {
    tx(
        "TRANSFER",
        Some("1234567890"),
        Some("0987654321"),
        Some("1000.00"),
    )
}

fn acct(s: &str) -> AccountNumber {
    AccountNumber::parse(s).unwrap()
}

fn sv(v: &AttributeValue) -> &str {
    v.as_s().unwrap()
}

fn put_item(item: &TransactWriteItem) -> &Item {
    item.put().unwrap().item()
}

fn reason(code: &str) -> CancellationReason {
    CancellationReason::builder().code(code).build()
}

#[test]
fn transfer_effect_is_one_transaction_with_double_entry() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    assert_eq!(
        plan.roles,
        vec![
            ItemRole::Idempotency,
            ItemRole::Result,
            ItemRole::Debit(acct("1234567890")),
            ItemRole::Credit(acct("0987654321")),
            ItemRole::Entry,
            ItemRole::Entry,
        ]
    );
    assert_eq!(plan.items.len(), 6);

    let idem = plan.items[0].put().unwrap();
    assert_eq!(idem.table_name(), "transactions");
    assert_eq!(
        idem.condition_expression(),
        Some("attribute_not_exists(pk)")
    );
    assert_eq!(sv(&idem.item()["pk"]), "IDEM#unique-key");
    assert_eq!(
        sv(&idem.item()["transaction_id"]),
        "0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b"
    );

    let txn = plan.items[1].put().unwrap();
    assert_eq!(txn.condition_expression(), Some(NOT_EXISTS));
    let t = txn.item();
    assert_eq!(sv(&t["pk"]), "TXN#0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b");
    assert_eq!(sv(&t["status"]), "COMPLETED");
    assert_eq!(t["amount"].as_n().unwrap(), "1000.00");
    assert_eq!(sv(&t["currency"]), "USD");
    assert_eq!(sv(&t["type"]), "TRANSFER");
    assert_eq!(sv(&t["idempotency_key"]), "unique-key");
    assert_eq!(sv(&t["processed_at"]), "2024-01-15T10:30:05.25Z");
    assert_eq!(
        t["accounts"].as_l().unwrap(),
        &vec![s("1234567890"), s("0987654321")]
    );
    assert!(!t.contains_key("balance"));

    let entries: Vec<&Item> = plan.items[4..].iter().map(put_item).collect();
    let debit = entries[0];
    assert_eq!(sv(&debit["pk"]), "ACCT#1234567890");
    assert_eq!(
        sv(&debit["sk"]),
        "ENTRY#2024-01-15T10:30:05.250000000Z#0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b#DEBIT"
    );
    assert_eq!(sv(&debit["direction"]), "DEBIT");
    assert_eq!(sv(&debit["counterparty"]), "0987654321");
    assert_eq!(debit["amount"].as_n().unwrap(), "1000.00");
    assert!(!debit.contains_key("balance_after"));
    let credit = entries[1];
    assert_eq!(sv(&credit["pk"]), "ACCT#0987654321");
    assert!(sv(&credit["sk"]).ends_with("#CREDIT"));
    assert_eq!(sv(&credit["counterparty"]), "1234567890");
    for item in &plan.items[4..] {
        let put = item.put().unwrap();
        assert_eq!(put.table_name(), "accounts");
        assert_eq!(put.condition_expression(), Some(NOT_EXISTS));
    }
}

#[test]
fn debit_update_conditions_and_expression() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let u = plan.items[2].update().unwrap();
    assert_eq!(u.table_name(), "accounts");
    assert_eq!(u.key()["pk"], s("ACCT#1234567890"));
    assert_eq!(u.key()["sk"], s("META"));
    assert_eq!(
        u.condition_expression(),
        Some(
            "attribute_exists(pk) AND #status = :open AND #currency = :ccy AND #balance >= :amount"
        )
    );
    assert_eq!(
        u.update_expression(),
        "SET #balance = #balance - :amount, #version = #version + :one"
    );
    let names = u.expression_attribute_names().unwrap();
    assert_eq!(names["#status"], "status");
    assert_eq!(names["#currency"], "currency");
    assert_eq!(names["#balance"], "balance");
    let values = u.expression_attribute_values().unwrap();
    assert_eq!(values[":amount"], AttributeValue::N("1000.00".into()));
    assert_eq!(values[":ccy"], s("USD"));
    assert_eq!(values[":open"], s("OPEN"));
    assert_eq!(values[":one"], AttributeValue::N("1".into()));
    assert_eq!(
        u.return_values_on_condition_check_failure(),
        Some(&ReturnValuesOnConditionCheckFailure::AllOld)
    );
}

#[test]
fn credit_update_conditions_and_expression() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let u = plan.items[3].update().unwrap();
    assert_eq!(u.key()["pk"], s("ACCT#0987654321"));
    assert_eq!(
        u.condition_expression(),
        Some("attribute_exists(pk) AND #status = :open AND #currency = :ccy")
    );
    assert_eq!(
        u.update_expression(),
        "SET #balance = #balance + :amount, #version = #version + :one"
    );
    assert_eq!(
        u.return_values_on_condition_check_failure(),
        Some(&ReturnValuesOnConditionCheckFailure::AllOld)
    );
}

#[test]
fn every_expression_placeholder_is_defined_and_used() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    for item in &plan.items[2..4] {
        let u = item.update().unwrap();
        let text = format!(
            "{} {}",
            u.condition_expression().unwrap(),
            u.update_expression()
        );
        for k in u.expression_attribute_names().unwrap().keys() {
            assert!(text.contains(k.as_str()), "unused {k}");
        }
        for k in u.expression_attribute_values().unwrap().keys() {
            assert!(text.contains(k.as_str()), "unused {k}");
        }
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '#' || c == ':' || c == '_'))
        {
            if let Some(rest) = word.strip_prefix('#') {
                assert!(
                    u.expression_attribute_names().unwrap().contains_key(word),
                    "{rest}"
                );
            }
            if word.starts_with(':') {
                assert!(
                    u.expression_attribute_values().unwrap().contains_key(word),
                    "{word}"
                );
            }
        }
    }
}

#[test]
fn deposit_and_withdrawal_have_one_side_and_external_counterparty() {
    let d = tx("DEPOSIT", None, Some("0987654321"), Some("25"));
    let plan = build_effect(TABLES, &d, NOW).unwrap();
    assert_eq!(
        plan.roles,
        vec![
            ItemRole::Idempotency,
            ItemRole::Result,
            ItemRole::Credit(acct("0987654321")),
            ItemRole::Entry
        ]
    );
    let e = put_item(&plan.items[3]);
    assert_eq!(sv(&e["counterparty"]), "EXTERNAL");
    assert_eq!(sv(&e["direction"]), "CREDIT");
    assert_eq!(e["amount"].as_n().unwrap(), "25.00");

    let w = tx("WITHDRAWAL", Some("1234567890"), None, Some("0.10"));
    let plan = build_effect(TABLES, &w, NOW).unwrap();
    assert_eq!(plan.roles[2], ItemRole::Debit(acct("1234567890")));
    let e = put_item(&plan.items[3]);
    assert_eq!(sv(&e["counterparty"]), "EXTERNAL");
    assert_eq!(sv(&e["direction"]), "DEBIT");
    assert_eq!(
        plan.items[2]
            .update()
            .unwrap()
            .expression_attribute_values()
            .unwrap()[":amount"],
        AttributeValue::N("0.10".into())
    );
}

#[test]
fn balance_check_and_invalid_transactions_have_no_effect() {
    let b = tx("BALANCE_CHECK", Some("1234567890"), None, None);
    assert!(matches!(
        build_effect(TABLES, &b, NOW),
        Err(LedgerError::InvalidInput { .. })
    ));
    let mut bad = transfer();
    bad.amount = Some(Decimal::new(-1, 0));
    assert!(matches!(
        build_effect(TABLES, &bad, NOW),
        Err(LedgerError::InvalidInput { .. })
    ));
}

#[test]
fn numbers_travel_as_exact_strings() {
    let t = tx(
        "TRANSFER",
        Some("1234567890"),
        Some("0987654321"),
        Some("999999999999999999.99"),
    );
    let plan = build_effect(TABLES, &t, NOW).unwrap();
    let u = plan.items[2].update().unwrap();
    assert_eq!(
        u.expression_attribute_values().unwrap()[":amount"],
        AttributeValue::N("999999999999999999.99".into())
    );
}

#[test]
fn sort_keys_order_chronologically() {
    let id = Uuid::nil();
    let a = entry_sk(datetime!(2024-01-15 10:30:00 UTC), id, Direction::Debit).unwrap();
    let b = entry_sk(datetime!(2024-01-15 10:30:00.5 UTC), id, Direction::Debit).unwrap();
    let c = entry_sk(datetime!(2024-01-15 12:30:01 +02:00), id, Direction::Debit).unwrap();
    assert!(a < b && b < c, "{a} {b} {c}");
    assert_eq!(
        sort_timestamp(datetime!(2024-01-15 12:30:01 +02:00)).unwrap(),
        "2024-01-15T10:30:01.000000000Z"
    );
    let (lo, hi) = history_bounds(
        datetime!(2024-01-15 10:30:00 UTC),
        datetime!(2024-01-15 10:30:00 UTC),
    )
    .unwrap();
    assert!(lo.as_str() <= a.as_str() && a.as_str() <= hi.as_str());
    assert!(b.as_str() > hi.as_str());
    assert!(
        history_bounds(
            datetime!(2024-01-16 0:00 UTC),
            datetime!(2024-01-15 0:00 UTC)
        )
        .is_err()
    );
}

#[test]
fn cursor_round_trip_and_rejects_garbage() {
    let account = acct("1234567890");
    let key = Item::from([
        ("pk".into(), s("ACCT#1234567890")),
        (
            "sk".into(),
            s("ENTRY#2024-01-15T10:30:00.000000000Z#x#DEBIT"),
        ),
    ]);
    let cursor = encode_cursor(&key).unwrap();
    assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(decode_cursor(&account, &cursor).unwrap(), key);
    for bad in ["zz", "abc", "4d455441", ""] {
        assert!(decode_cursor(&account, bad).is_err(), "{bad}");
    }
}

#[test]
fn cancellation_idempotency_failure_is_duplicate() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[0] = reason("ConditionalCheckFailed");
    // Even when an account check failed too.
    reasons[2] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&plan.roles, &reasons),
        CancellationVerdict::Duplicate
    );
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[1] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&plan.roles, &reasons),
        CancellationVerdict::Duplicate
    );
}

#[test]
fn cancellation_conflict_and_throttling_are_transient() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    for code in [
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    ] {
        let mut reasons = vec![reason("None"); plan.roles.len()];
        reasons[3] = reason(code);
        reasons[2] = reason("ConditionalCheckFailed");
        assert_eq!(
            interpret_cancellation(&plan.roles, &reasons),
            CancellationVerdict::Transient {
                codes: vec![code.to_owned()]
            }
        );
    }
}

#[test]
fn cancellation_account_failures_carry_the_old_item_debit_first() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let old = Item::from([
        ("pk".into(), s("ACCT#1234567890")),
        ("balance".into(), AttributeValue::N("5".into())),
    ]);
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[3] = reason("ConditionalCheckFailed");
    reasons[2] = CancellationReason::builder()
        .code("ConditionalCheckFailed")
        .set_item(Some(old.clone()))
        .build();
    match interpret_cancellation(&plan.roles, &reasons) {
        CancellationVerdict::Accounts(f) => {
            assert_eq!(f.len(), 2);
            assert_eq!(f[0].direction, Direction::Debit);
            assert_eq!(f[0].account, acct("1234567890"));
            assert_eq!(f[0].item.as_ref(), Some(&old));
            assert_eq!(f[1].direction, Direction::Credit);
            assert_eq!(f[1].item, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancellation_oddities_are_fatal() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[4] = reason("ConditionalCheckFailed");
    assert!(matches!(
        interpret_cancellation(&plan.roles, &reasons),
        CancellationVerdict::Fatal { .. }
    ));
    assert!(matches!(
        interpret_cancellation(&plan.roles, &[]),
        CancellationVerdict::Fatal { .. }
    ));
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[2] = reason("ValidationError");
    assert!(matches!(
        interpret_cancellation(&plan.roles, &reasons),
        CancellationVerdict::Fatal { .. }
    ));
}

fn account_item(status: &str, currency: &str, balance: &str) -> Item {
    Item::from([
        ("pk".into(), s("ACCT#1234567890")),
        ("sk".into(), s("META")),
        ("status".into(), s(status)),
        ("currency".into(), s(currency)),
        ("balance".into(), AttributeValue::N(balance.into())),
        ("type".into(), s("CHECKING")),
        ("created_at".into(), s("2024-01-01T00:00:00Z")),
        ("version".into(), AttributeValue::N("3".into())),
    ])
}

#[test]
fn classify_account_declines() {
    let a = acct("1234567890");
    let usd = Currency::from_code("USD").unwrap();
    let amt = Some(Decimal::new(10_000, 2));
    let debit = Some(Direction::Debit);
    let code = |item: Option<&Item>, dir| {
        classify_account(&a, item, dir, usd, amt)
            .unwrap()
            .map(|r| r.code())
    };
    assert_eq!(code(None, debit), Some("ACCOUNT_NOT_FOUND"));
    assert_eq!(
        code(Some(&account_item("CLOSED", "USD", "500")), debit),
        Some("ACCOUNT_CLOSED")
    );
    assert_eq!(
        code(Some(&account_item("OPEN", "EUR", "500")), debit),
        Some("CURRENCY_MISMATCH")
    );
    assert_eq!(
        code(Some(&account_item("OPEN", "USD", "99.99")), debit),
        Some("INSUFFICIENT_FUNDS")
    );
    assert_eq!(code(Some(&account_item("OPEN", "USD", "100")), debit), None);
    // Credits never fail for funds.
    assert_eq!(
        code(
            Some(&account_item("OPEN", "USD", "0")),
            Some(Direction::Credit)
        ),
        None
    );
    // Corrupt balances are errors, not declines.
    assert!(matches!(
        classify_account(
            &a,
            Some(&account_item("OPEN", "USD", "abc")),
            debit,
            usd,
            amt
        ),
        Err(LedgerError::CorruptItem { .. })
    ));
}

#[test]
fn balance_check_records() {
    let b = tx("BALANCE_CHECK", None, Some("1234567890"), None);
    let ok = balance_check_record(&b, Some(&account_item("OPEN", "USD", "12.34"))).unwrap();
    assert_eq!(ok.status, ResultStatus::Completed);
    assert_eq!(ok.balance, Some(Decimal::new(1234, 2)));
    let item = ok.to_item(NOW).unwrap();
    assert_eq!(item["balance"], AttributeValue::N("12.34".into()));
    assert!(!item.contains_key("amount"));
    let missing = balance_check_record(&b, None).unwrap();
    assert_eq!(missing.status, ResultStatus::Declined);
    assert_eq!(missing.reason_code.as_deref(), Some("ACCOUNT_NOT_FOUND"));
    let plan = build_result(TABLES, &missing, NOW).unwrap();
    assert_eq!(plan.roles, vec![ItemRole::Idempotency, ItemRole::Result]);
    assert_eq!(sv(&put_item(&plan.items[1])["status"]), "DECLINED");
}

#[test]
fn rejection_without_key_writes_only_the_result() {
    let record = ResultRecord {
        transaction_id: Uuid::nil(),
        idempotency_key: None,
        status: ResultStatus::Rejected,
        reason: Some("bad".into()),
        reason_code: Some("invalid_amount".into()),
        kind: None,
        amount: None,
        currency: None,
        accounts: vec![],
        balance: None,
        timestamp: None,
        principal: None,
    };
    let plan = build_result(TABLES, &record, NOW).unwrap();
    assert_eq!(plan.roles, vec![ItemRole::Result]);
    let item = put_item(&plan.items[0]);
    assert_eq!(sv(&item["status"]), "REJECTED");
    assert!(!item.contains_key("accounts"));
    let back = TransactionResult::from_item(item).unwrap();
    assert_eq!(back.reason_code.as_deref(), Some("invalid_amount"));
}

#[test]
fn create_account_writes_opening_entry_that_reconciles() {
    let a = acct("1234567890");
    let usd = Currency::from_code("USD").unwrap();
    let id = Uuid::now_v7();
    let plan = build_create_account(
        TABLES,
        &a,
        usd,
        "CHECKING",
        Decimal::new(500, 0),
        &owner(),
        id,
        NOW,
    )
    .unwrap();
    assert_eq!(
        plan.roles,
        vec![ItemRole::AccountMeta, ItemRole::Entry, ItemRole::Result]
    );
    let meta = put_item(&plan.items[0]);
    assert_eq!(meta["balance"], AttributeValue::N("500.00".into()));
    assert_eq!(sv(&meta["status"]), "OPEN");
    assert_eq!(meta["version"], AttributeValue::N("1".into()));
    let parsed = Account::from_item(meta).unwrap();
    assert_eq!(parsed.balance, Decimal::new(50000, 2));
    let entry = LedgerEntry::from_item(put_item(&plan.items[1])).unwrap();
    assert_eq!(entry.amount, parsed.balance);
    assert_eq!(entry.direction, Direction::Credit);
    assert_eq!(entry.kind, OPENING_BALANCE);
    // Zero opening balance: only the META item.
    let plan = build_create_account(
        TABLES,
        &a,
        usd,
        "CHECKING",
        Decimal::ZERO,
        &owner(),
        id,
        NOW,
    )
    .unwrap();
    assert_eq!(plan.roles, vec![ItemRole::AccountMeta]);
    assert_eq!(
        put_item(&plan.items[0])["balance"],
        AttributeValue::N("0.00".into())
    );
    // Negative or over-precise opening balances are refused.
    for bad in [Decimal::new(-1, 0), Decimal::new(1, 3)] {
        assert!(matches!(
            build_create_account(TABLES, &a, usd, "CHECKING", bad, &owner(), id, NOW),
            Err(LedgerError::InvalidInput { .. })
        ));
    }
}

#[test]
fn decline_reason_codes_and_messages() {
    let a = acct("1234567890");
    let r = DeclineReason::CurrencyMismatch {
        account: a.clone(),
        account_currency: "EUR".into(),
        transaction_currency: Currency::from_code("USD").unwrap(),
    };
    assert_eq!(r.code(), "CURRENCY_MISMATCH");
    assert_eq!(
        r.to_string(),
        "account 1234567890 holds EUR, the transaction is in USD"
    );
    assert_eq!(
        DeclineReason::InsufficientFunds { account: a }.code(),
        "INSUFFICIENT_FUNDS"
    );
}

fn owner() -> crate::transaction::Subject {
    crate::transaction::Subject::parse("alice").unwrap()
}

fn with_principal(mut t: Transaction, who: &str) -> Transaction {
    t.principal = Some(crate::transaction::Subject::parse(who).unwrap());
    t
}

#[test]
fn a_principal_adds_the_owner_condition_to_the_debit_only() {
    let plan = build_effect(TABLES, &with_principal(transfer(), "alice"), NOW).unwrap();
    let debit = plan.items[2].update().unwrap();
    assert_eq!(debit.condition_expression(), Some(DEBIT_OWNED_CONDITION));
    let names = debit.expression_attribute_names().unwrap();
    assert_eq!(names["#owner"], OWNER);
    let values = debit.expression_attribute_values().unwrap();
    assert_eq!(sv(&values[":principal"]), "alice");
    let credit = plan.items[3].update().unwrap();
    assert_eq!(credit.condition_expression(), Some(CREDIT_CONDITION));
    assert!(
        !credit
            .expression_attribute_values()
            .unwrap()
            .contains_key(":principal")
    );
    // The result item records who the message acted for.
    assert_eq!(sv(&put_item(&plan.items[1])["principal"]), "alice");

    // Without a principal (a trusted producer) the debit is as before.
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let debit = plan.items[2].update().unwrap();
    assert_eq!(debit.condition_expression(), Some(DEBIT_CONDITION));
    assert!(!put_item(&plan.items[1]).contains_key("principal"));
}

#[test]
fn owner_mismatch_names_the_account() {
    let a = acct("1234567890");
    let mut item = Item::new();
    item.insert(OWNER.into(), AttributeValue::S("alice".into()));
    let alice = crate::transaction::Subject::parse("alice").unwrap();
    let mallory = crate::transaction::Subject::parse("mallory").unwrap();
    assert_eq!(owner_mismatch(&a, Some(&item), Some(&alice)).unwrap(), None);
    assert_eq!(owner_mismatch(&a, Some(&item), None).unwrap(), None);
    assert_eq!(owner_mismatch(&a, None, Some(&mallory)).unwrap(), None);
    let reason = owner_mismatch(&a, Some(&item), Some(&mallory))
        .unwrap()
        .unwrap();
    assert_eq!(reason.code(), "NOT_ACCOUNT_OWNER");
    assert_eq!(
        reason,
        DeclineReason::NotAccountOwner { account: a.clone() }
    );
    // An account without an owner (opened before owners existed) refuses every principal.
    assert!(
        owner_mismatch(&a, Some(&Item::new()), Some(&alice))
            .unwrap()
            .is_some()
    );
}

#[test]
fn created_accounts_record_their_owner() {
    let a = acct("1234567890");
    let usd = Currency::from_code("USD").unwrap();
    let plan = build_create_account(
        TABLES,
        &a,
        usd,
        "CHECKING",
        Decimal::ZERO,
        &owner(),
        Uuid::nil(),
        NOW,
    )
    .unwrap();
    assert_eq!(sv(&put_item(&plan.items[0])[OWNER]), "alice");
}

#[test]
fn sort_timestamps_outside_utc_years_are_errors_not_panics() {
    for t in [
        datetime!(9999-12-31 23:59:59 -23:59),
        datetime!(0001-01-01 00:00:00 +23:59),
    ] {
        let err = model::sort_timestamp(t).unwrap_err();
        assert!(err.to_string().contains("0001-9999"), "{err}");
        assert!(history_bounds(datetime!(0001-01-01 00:00:00 UTC), t).is_err());
    }
    assert_eq!(
        model::sort_timestamp(datetime!(2024-01-15 12:30:00 +02:00)).unwrap(),
        "2024-01-15T10:30:00.000000000Z"
    );
}

#[test]
fn a_stale_velocity_is_read_again_never_a_duplicate_nor_a_decline() {
    let plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let mut roles = plan.roles.clone();
    roles.extend([ItemRole::Velocity, ItemRole::Analysis]);
    let velocity = roles.len() - 2;
    // The velocity alone, or with a debit that failed beside it: read again, score again.
    let mut reasons = vec![reason("None"); roles.len()];
    reasons[velocity] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Stale
    );
    reasons[2] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Stale
    );
    // A settled transaction stays a duplicate whatever its velocity says.
    reasons[0] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Duplicate
    );
    // A conflict is transient before it is stale.
    let mut reasons = vec![reason("None"); roles.len()];
    reasons[velocity] = reason("TransactionConflict");
    assert!(matches!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Transient { .. }
    ));
    // An analysis that exists without its result is not explained: fatal.
    let mut reasons = vec![reason("None"); roles.len()];
    reasons[velocity + 1] = reason("ConditionalCheckFailed");
    assert!(matches!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Fatal { .. }
    ));
}

#[test]
fn a_decided_review_is_a_duplicate_decision() {
    let roles = [
        ItemRole::Debit(acct("1234567890")),
        ItemRole::Review,
        ItemRole::Result,
        ItemRole::Audit,
    ];
    let mut reasons = vec![reason("None"); roles.len()];
    reasons[1] = reason("ConditionalCheckFailed");
    assert_eq!(
        interpret_cancellation(&roles, &reasons),
        CancellationVerdict::Duplicate
    );
}

#[test]
fn a_plan_keeps_only_the_roles_asked_and_knows_the_item_limit() {
    let mut plan = build_effect(TABLES, &transfer(), NOW).unwrap();
    let all = plan.items.len();
    plan.retain(|role| !matches!(role, ItemRole::Idempotency | ItemRole::Result));
    assert_eq!(plan.items.len(), all - 2);
    assert_eq!(plan.roles.len(), plan.items.len());
    assert!(matches!(plan.roles[0], ItemRole::Debit(_)));
    plan.check_size().unwrap();
    let item = plan.items[0].clone();
    plan.attach((0..MAX_TRANSACT_ITEMS).map(|_| (ItemRole::Entry, item.clone())));
    assert!(plan.check_size().is_err());
}

#[test]
fn a_hold_checks_its_accounts_as_the_movement_would_and_a_failed_check_declines() {
    let mut held = transfer();
    held.principal = Some(Subject::parse("alice").unwrap());
    let checks = hold_checks(TABLES, &held).unwrap();
    let roles: Vec<ItemRole> = checks.iter().map(|(role, _)| role.clone()).collect();
    assert_eq!(
        roles,
        [
            ItemRole::AccountCheck {
                account: acct("1234567890"),
                direction: Direction::Debit,
            },
            ItemRole::AccountCheck {
                account: acct("0987654321"),
                direction: Direction::Credit,
            },
        ]
    );
    // The debit's own condition (ownership included), with only the names it uses: DynamoDB
    // refuses unused ones.
    let debit = checks[0].1.condition_check().unwrap();
    assert_eq!(debit.condition_expression(), DEBIT_OWNED_CONDITION);
    assert_eq!(
        debit.expression_attribute_values().unwrap()[":amount"]
            .as_n()
            .unwrap(),
        "1000.00"
    );
    let mut names: Vec<&String> = debit.expression_attribute_names().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["#balance", "#currency", "#owner", "#status"]);
    assert_eq!(
        debit.return_values_on_condition_check_failure(),
        Some(&ReturnValuesOnConditionCheckFailure::AllOld)
    );
    let credit = checks[1].1.condition_check().unwrap();
    assert_eq!(credit.condition_expression(), CREDIT_CONDITION);
    assert_eq!(credit.expression_attribute_names().unwrap().len(), 2);
    assert_eq!(credit.expression_attribute_values().unwrap().len(), 2);
    // A DEPOSIT checks only its credited account.
    let deposit = tx("DEPOSIT", None, Some("0987654321"), Some("5.00"));
    assert_eq!(hold_checks(TABLES, &deposit).unwrap().len(), 1);
    // A failed check is an account's failure, classified like the debit's: a decline, never a
    // duplicate nor fatal.
    let mut plan = build_result(
        TABLES,
        &ResultRecord::for_transaction(&held, ResultStatus::Held),
        NOW,
    )
    .unwrap();
    plan.attach(checks);
    let mut reasons = vec![reason("None"); plan.roles.len()];
    reasons[2] = reason("ConditionalCheckFailed");
    let CancellationVerdict::Accounts(failed) = interpret_cancellation(&plan.roles, &reasons)
    else {
        panic!("not an account failure");
    };
    assert_eq!(failed[0].account, acct("1234567890"));
    assert_eq!(failed[0].direction, Direction::Debit);
}
