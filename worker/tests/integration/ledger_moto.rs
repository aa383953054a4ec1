//! The ledger against moto: exactly-once transfers, declines and idempotency.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common::{dec, ledger, usd};

use ballast_worker::ledger::{Ledger, LedgerError, Outcome, ResultStatus};
use ballast_worker::transaction::{AccountNumber, Currency, Transaction, parse_transaction};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

fn acct(s: &str) -> AccountNumber {
    AccountNumber::parse(s).unwrap()
}

fn message(
    kind: &str,
    source: Option<&str>,
    target: Option<&str>,
    amount: Option<&str>,
    ccy: &str,
    key: &str,
) -> Transaction {
    let mut fields = vec![
        format!(r#""transaction_id":"{}""#, Uuid::new_v4()),
        format!(r#""type":"{kind}""#),
        format!(r#""currency":"{ccy}""#),
        r#""timestamp":"2024-01-15T10:30:00Z""#.to_owned(),
        format!(r#""idempotency_key":"{key}""#),
    ];
    if let Some(s) = source {
        fields.push(format!(r#""source_account":"{s}""#));
    }
    if let Some(t) = target {
        fields.push(format!(r#""target_account":"{t}""#));
    }
    if let Some(a) = amount {
        fields.push(format!(r#""amount":{a}"#));
    }
    parse_transaction(format!("{{{}}}", fields.join(",")).as_bytes()).unwrap()
}

fn transfer(source: &str, target: &str, amount: &str, key: &str) -> Transaction {
    message(
        "TRANSFER",
        Some(source),
        Some(target),
        Some(amount),
        "USD",
        key,
    )
}

async fn balance(ledger: &Ledger, account: &str) -> Decimal {
    ledger
        .get_account(&acct(account))
        .await
        .unwrap()
        .unwrap()
        .balance
}

async fn entry_sum(ledger: &Ledger, account: &str) -> Decimal {
    let page = ledger
        .history(
            &acct(account),
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc() + time::Duration::hours(1),
            1000,
            None,
        )
        .await
        .unwrap();
    page.entries
        .iter()
        .map(|e| match e.direction {
            ballast_worker::ledger::Direction::Credit => e.amount,
            ballast_worker::ledger::Direction::Debit => -e.amount,
        })
        .sum()
}

#[tokio::test]
async fn transfer_moves_money_and_reconciles() {
    let l = ledger().await;
    l.create_account(
        &acct("1111111111"),
        usd(),
        "CHECKING",
        dec("100.00"),
        &alice(),
    )
    .await
    .unwrap();
    l.create_account(&acct("2222222222"), usd(), "CHECKING", dec("0"), &alice())
        .await
        .unwrap();

    let tx = transfer("1111111111", "2222222222", "0.10", "k-transfer-1");
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Completed);
    let tx2 = transfer("1111111111", "2222222222", "0.20", "k-transfer-2");
    assert_eq!(l.apply(&tx2).await.unwrap(), Outcome::Completed);

    assert_eq!(balance(&l, "1111111111").await, dec("99.70"));
    assert_eq!(balance(&l, "2222222222").await, dec("0.30"));
    assert_eq!(entry_sum(&l, "1111111111").await, dec("99.70"));
    assert_eq!(entry_sum(&l, "2222222222").await, dec("0.30"));

    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Completed);
    assert_eq!(result.amount, Some(dec("0.10")));
    assert_eq!(result.accounts, vec!["1111111111", "2222222222"]);
    let account = l.get_account(&acct("1111111111")).await.unwrap().unwrap();
    assert_eq!(account.version, 3);
}

#[tokio::test]
async fn insufficient_funds_is_declined_and_recorded() {
    let l = ledger().await;
    l.create_account(
        &acct("1111111111"),
        usd(),
        "CHECKING",
        dec("50.00"),
        &alice(),
    )
    .await
    .unwrap();
    l.create_account(&acct("2222222222"), usd(), "CHECKING", dec("0"), &alice())
        .await
        .unwrap();

    let tx = transfer("1111111111", "2222222222", "50.01", "k-nsf");
    match l.apply(&tx).await.unwrap() {
        Outcome::Declined(reason) => assert_eq!(reason.code(), "INSUFFICIENT_FUNDS"),
        other => panic!("{other:?}"),
    }
    assert_eq!(balance(&l, "1111111111").await, dec("50.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("0"));
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Declined);
    assert_eq!(result.reason_code.as_deref(), Some("INSUFFICIENT_FUNDS"));
    // Redelivery of the declined message changes nothing.
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Duplicate);
    // Exactly the balance is fine.
    let ok = transfer("1111111111", "2222222222", "50.00", "k-exact");
    assert_eq!(l.apply(&ok).await.unwrap(), Outcome::Completed);
    assert_eq!(balance(&l, "1111111111").await, dec("0"));
}

#[tokio::test]
async fn duplicate_idempotency_key_changes_nothing() {
    let l = ledger().await;
    l.create_account(
        &acct("1111111111"),
        usd(),
        "CHECKING",
        dec("100.00"),
        &alice(),
    )
    .await
    .unwrap();
    l.create_account(&acct("2222222222"), usd(), "CHECKING", dec("0"), &alice())
        .await
        .unwrap();

    let tx = transfer("1111111111", "2222222222", "10.00", "same-key");
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Completed);
    // Same message redelivered.
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Duplicate);
    // Different transaction id, same idempotency key: no money moves, but that id gets a
    // terminal result of its own (its producer would otherwise poll PENDING forever).
    let again = transfer("1111111111", "2222222222", "10.00", "same-key");
    assert_ne!(again.transaction_id, tx.transaction_id);
    assert!(matches!(
        l.apply(&again).await.unwrap(),
        Outcome::Rejected(_)
    ));
    let rejected = l.get_result(again.transaction_id).await.unwrap().unwrap();
    assert_eq!(rejected.status, ResultStatus::Rejected);
    assert_eq!(
        rejected.reason_code.as_deref(),
        Some("idempotency_key_reused")
    );
    assert_eq!(l.apply(&again).await.unwrap(), Outcome::Duplicate);
    assert_eq!(balance(&l, "1111111111").await, dec("90.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("10.00"));
    assert_eq!(entry_sum(&l, "2222222222").await, dec("10.00"));
}

#[tokio::test]
async fn currency_mismatch_closed_and_missing_accounts_are_declined() {
    let l = ledger().await;
    let eur = Currency::from_code("EUR").unwrap();
    l.create_account(
        &acct("1111111111"),
        usd(),
        "CHECKING",
        dec("100.00"),
        &alice(),
    )
    .await
    .unwrap();
    l.create_account(&acct("3333333333"), eur, "CHECKING", dec("0"), &alice())
        .await
        .unwrap();
    l.create_account(&acct("4444444444"), usd(), "CHECKING", dec("0"), &alice())
        .await
        .unwrap();
    l.close_account(&acct("4444444444")).await.unwrap();

    let code = |o: Outcome| match o {
        Outcome::Declined(r) => r.code(),
        other => panic!("{other:?}"),
    };
    let to_eur = transfer("1111111111", "3333333333", "1.00", "k-ccy");
    assert_eq!(code(l.apply(&to_eur).await.unwrap()), "CURRENCY_MISMATCH");
    let to_closed = transfer("1111111111", "4444444444", "1.00", "k-closed");
    assert_eq!(code(l.apply(&to_closed).await.unwrap()), "ACCOUNT_CLOSED");
    let to_missing = transfer("1111111111", "5555555555", "1.00", "k-missing");
    assert_eq!(
        code(l.apply(&to_missing).await.unwrap()),
        "ACCOUNT_NOT_FOUND"
    );
    let from_missing = transfer("5555555555", "1111111111", "1.00", "k-missing-src");
    assert_eq!(
        code(l.apply(&from_missing).await.unwrap()),
        "ACCOUNT_NOT_FOUND"
    );
    let eur_withdrawal = message(
        "WITHDRAWAL",
        Some("1111111111"),
        None,
        Some("1.00"),
        "EUR",
        "k-eur-w",
    );
    assert_eq!(
        code(l.apply(&eur_withdrawal).await.unwrap()),
        "CURRENCY_MISMATCH"
    );
    assert_eq!(balance(&l, "1111111111").await, dec("100.00"));
    assert_eq!(balance(&l, "3333333333").await, dec("0"));
}

#[tokio::test]
async fn deposit_withdrawal_balance_check_and_rejection() {
    let l = ledger().await;
    l.create_account(&acct("1111111111"), usd(), "SAVINGS", dec("0"), &alice())
        .await
        .unwrap();
    let dep = message(
        "DEPOSIT",
        None,
        Some("1111111111"),
        Some("1e2"),
        "USD",
        "k-dep",
    );
    assert_eq!(l.apply(&dep).await.unwrap(), Outcome::Completed);
    let wd = message(
        "WITHDRAWAL",
        Some("1111111111"),
        None,
        Some("33.33"),
        "USD",
        "k-wd",
    );
    assert_eq!(l.apply(&wd).await.unwrap(), Outcome::Completed);
    assert_eq!(balance(&l, "1111111111").await, dec("66.67"));
    assert_eq!(entry_sum(&l, "1111111111").await, dec("66.67"));

    let check = message(
        "BALANCE_CHECK",
        Some("1111111111"),
        None,
        None,
        "USD",
        "k-check",
    );
    assert_eq!(l.apply(&check).await.unwrap(), Outcome::Completed);
    let result = l.get_result(check.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.balance, Some(dec("66.67")));
    assert_eq!(l.apply(&check).await.unwrap(), Outcome::Duplicate);
    let missing = message(
        "BALANCE_CHECK",
        None,
        Some("9999999999"),
        None,
        "USD",
        "k-check-2",
    );
    assert!(matches!(
        l.apply(&missing).await.unwrap(),
        Outcome::Declined(_)
    ));

    let raw = format!(
        r#"{{"transaction_id":"{}","type":"DEPOSIT","target_account":"1111111111","amount":-5,"currency":"USD","timestamp":"2024-01-15T10:30:00Z","idempotency_key":"k-bad"}}"#,
        Uuid::new_v4()
    );
    let (id, key, error) = match parse_transaction(raw.as_bytes()) {
        Err(ballast_worker::transaction::ParseError::Invalid {
            transaction_id,
            idempotency_key,
            error,
        }) => (transaction_id, idempotency_key, error),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        l.record_rejection(id, key.as_ref(), &error).await.unwrap(),
        Outcome::Rejected(_)
    ));
    assert_eq!(
        l.record_rejection(id, key.as_ref(), &error).await.unwrap(),
        Outcome::Duplicate
    );
    let result = l.get_result(id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(result.reason_code.as_deref(), Some("amount_not_positive"));
}

#[tokio::test]
async fn accounts_create_close_and_history_pages() {
    let l = ledger().await;
    let a = acct("1111111111");
    l.create_account(&a, usd(), "CHECKING", dec("10.00"), &alice())
        .await
        .unwrap();
    assert!(matches!(
        l.create_account(&a, usd(), "CHECKING", dec("0"), &alice())
            .await,
        Err(LedgerError::Conflict { .. })
    ));
    for i in 0..5 {
        let w = message(
            "WITHDRAWAL",
            Some("1111111111"),
            None,
            Some("1.00"),
            "USD",
            &format!("k-page-{i}"),
        );
        assert_eq!(l.apply(&w).await.unwrap(), Outcome::Completed);
    }
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = l
            .history(
                &a,
                OffsetDateTime::UNIX_EPOCH,
                OffsetDateTime::now_utc(),
                2,
                cursor.as_deref(),
            )
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.windows(2).all(|w| w[0].sk < w[1].sk));
    assert!(matches!(
        l.close_account(&a).await,
        Err(LedgerError::Conflict { .. })
    ));
    let rest = message(
        "WITHDRAWAL",
        Some("1111111111"),
        None,
        Some("5"),
        "USD",
        "k-rest",
    );
    assert_eq!(l.apply(&rest).await.unwrap(), Outcome::Completed);
    l.close_account(&a).await.unwrap();
    assert!(matches!(
        l.close_account(&a).await,
        Err(LedgerError::Conflict { .. })
    ));
    assert!(matches!(
        l.close_account(&acct("9999999999")).await,
        Err(LedgerError::Conflict { .. })
    ));
}

/// Documents what moto supports: per-item cancellation reasons, in request order, with the
/// `ALL_OLD` item for a failed update of an existing item (none for a missing item).
#[tokio::test]
async fn moto_returns_cancellation_reasons_with_all_old_items() {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use ballast_worker::ledger::{CancellationVerdict, build_effect, interpret_cancellation};

    let l = ledger().await;
    l.create_account(
        &acct("1111111111"),
        usd(),
        "CHECKING",
        dec("1.00"),
        &alice(),
    )
    .await
    .unwrap();
    let tx = transfer("1111111111", "2222222222", "2.00", "k-moto");
    let plan = build_effect(l.tables(), &tx, OffsetDateTime::now_utc()).unwrap();
    let err = l
        .client()
        .transact_write_items()
        .set_transact_items(Some(plan.items))
        .send()
        .await
        .unwrap_err();
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
    else {
        panic!("{err:?}");
    };
    let codes: Vec<_> = e.cancellation_reasons().iter().map(|r| r.code()).collect();
    assert_eq!(
        codes,
        vec![
            Some("None"),
            Some("None"),
            Some("ConditionalCheckFailed"),
            Some("ConditionalCheckFailed"),
            Some("None"),
            Some("None"),
        ]
    );
    let old = e.cancellation_reasons()[2]
        .item()
        .expect("ALL_OLD item for the debit");
    assert_eq!(old["balance"].as_n().unwrap(), "1.00");
    assert!(e.cancellation_reasons()[3].item().is_none());
    match interpret_cancellation(&plan.roles, e.cancellation_reasons()) {
        CancellationVerdict::Accounts(f) => assert_eq!(f.len(), 2),
        other => panic!("{other:?}"),
    }
}

fn alice() -> ballast_worker::transaction::Subject {
    ballast_worker::transaction::Subject::parse("alice").unwrap()
}
