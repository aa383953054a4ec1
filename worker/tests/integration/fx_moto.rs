//! Currency conversion against moto: rates loaded from a file, a cross-currency transfer applied
//! exactly once through the FX positions, declines without a valid rate, a rate replaced between
//! read and write, and the all-or-nothing load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use ballast_worker::fx::admin::{self, LoadSummary, RatesError};
use ballast_worker::fx::convert;
use ballast_worker::fx::file::{self, RatesFileError};
use ballast_worker::ledger::{
    CancellationVerdict, DeclineReason, Ledger, Outcome, ResultStatus, build_conversion,
    interpret_cancellation,
};
use ballast_worker::transaction::{
    AccountNumber, Currency, Subject, Transaction, parse_transaction,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::common::{dec, ledger};

fn acct(s: &str) -> AccountNumber {
    AccountNumber::parse(s).unwrap()
}

fn ccy(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn owner() -> Subject {
    Subject::parse("fx-test").unwrap()
}

fn at(offset_hours: i64) -> String {
    (OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + time::Duration::hours(offset_hours))
        .format(&Rfc3339)
        .unwrap()
}

/// A rates file with one rate per `(base, quote, rate, from, until)`.
fn rates_yaml(rates: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut text = String::from("rates:\n");
    for (base, quote, rate, from, until) in rates {
        text.push_str(&format!(
            "  - base: {base}\n    quote: {quote}\n    rate: \"{rate}\"\n    source: test desk\n    \
             valid_from: {from}\n    valid_until: {until}\n"
        ));
    }
    text
}

async fn load(l: &Ledger, yaml: &str) -> Result<LoadSummary, RatesError> {
    let rates = file::parse("rates.yaml", yaml).unwrap();
    admin::load(l, "rates.yaml", &rates, OffsetDateTime::now_utc()).await
}

fn conversion(source: &str, target: &str, amount: &str, from: &str, to: &str) -> Transaction {
    let id = Uuid::new_v4();
    parse_transaction(
        format!(
            r#"{{"transaction_id":"{id}","type":"TRANSFER","source_account":"{source}",
            "target_account":"{target}","amount":"{amount}","currency":"{from}",
            "target_currency":"{to}","timestamp":"2026-12-04T10:00:00Z",
            "idempotency_key":"fx-{id}"}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

async fn balance(l: &Ledger, account: &str) -> Decimal {
    l.get_account(&acct(account))
        .await
        .unwrap()
        .unwrap()
        .balance
}

async fn open(l: &Ledger, account: &str, currency: &str, balance: &str) {
    l.create_account(
        &acct(account),
        ccy(currency),
        "CHECKING",
        dec(balance),
        &owner(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_cross_currency_transfer_applies_both_legs_exactly_once() {
    let l = ledger().await;
    let (from, until) = (at(-1), at(1));
    load(&l, &rates_yaml(&[("USD", "EUR", "0.9215", &from, &until)]))
        .await
        .unwrap();
    open(&l, "1111111111", "USD", "100.00").await;
    open(&l, "2222222222", "EUR", "0").await;

    let tx = conversion("1111111111", "2222222222", "10.00", "USD", "EUR");
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Completed);
    // 10.00 × 0.9215 = 9.215: half to even gives 9.22 (the residue is −0.005).
    assert_eq!(balance(&l, "1111111111").await, dec("90.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("9.22"));

    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Completed);
    assert_eq!(result.amount, Some(dec("10.00")));
    assert_eq!(result.currency.as_deref(), Some("USD"));
    let fx = result.conversion.expect("the conversion is recorded");
    assert_eq!(fx.target_currency, "EUR");
    assert_eq!(fx.target_amount, dec("9.22"));
    assert_eq!(fx.rate, "0.9215");
    assert!(
        fx.rate_id.starts_with("USD/EUR@") && fx.rate_id.ends_with("#v1"),
        "{}",
        fx.rate_id
    );
    assert_eq!(fx.rate_source, "test desk");
    assert_eq!(fx.rounding, "HALF_EVEN");
    assert_eq!(fx.residue, dec("-0.005"));

    // Each account's entries, in its own currency, explain its balance.
    let history = l
        .history(
            &acct("2222222222"),
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc() + time::Duration::hours(1),
            100,
            None,
        )
        .await
        .unwrap();
    let credit = history.entries.last().unwrap();
    assert_eq!(
        (credit.amount, credit.currency.as_str()),
        (dec("9.22"), "EUR")
    );

    // A redelivery changes nothing, even with a different rate loaded meanwhile.
    load(&l, &rates_yaml(&[("USD", "EUR", "0.5", &from, &until)]))
        .await
        .unwrap();
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Duplicate);
    assert_eq!(balance(&l, "1111111111").await, dec("90.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("9.22"));
}

#[tokio::test]
async fn without_a_valid_rate_the_conversion_is_declined_and_nothing_moves() {
    let l = ledger().await;
    // USD/GBP only in the past and in the future; nothing for USD/JPY at all.
    load(
        &l,
        &rates_yaml(&[
            ("USD", "GBP", "0.79", &at(-48), &at(-24)),
            ("USD", "GBP", "0.80", &at(24), &at(48)),
        ]),
    )
    .await
    .unwrap();
    open(&l, "1111111111", "USD", "100.00").await;
    open(&l, "2222222222", "GBP", "0").await;
    open(&l, "3333333333", "JPY", "0").await;

    for (target, quote) in [("2222222222", "GBP"), ("3333333333", "JPY")] {
        let tx = conversion("1111111111", target, "10.00", "USD", quote);
        let Outcome::Declined(reason) = l.apply(&tx).await.unwrap() else {
            panic!("not declined");
        };
        assert!(matches!(reason, DeclineReason::NoRate { .. }), "{reason:?}");
        let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
        assert_eq!(result.reason_code.as_deref(), Some("NO_RATE"));
        let text = result.reason.unwrap();
        assert!(
            text.contains(&format!("no USD/{quote} exchange rate is valid at ")),
            "{text}"
        );
        assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Duplicate);
    }
    // A target that does not hold the target currency is declined as before.
    load(&l, &rates_yaml(&[("USD", "EUR", "0.9", &at(-1), &at(1))]))
        .await
        .unwrap();
    let tx = conversion("1111111111", "2222222222", "10.00", "USD", "EUR");
    let Outcome::Declined(reason) = l.apply(&tx).await.unwrap() else {
        panic!("not declined");
    };
    assert_eq!(reason.code(), "CURRENCY_MISMATCH", "{reason}");
    // And the source must hold the message's currency.
    let tx = conversion("3333333333", "2222222222", "10", "JPY", "GBP");
    assert!(matches!(l.apply(&tx).await.unwrap(), Outcome::Declined(_)));

    assert_eq!(balance(&l, "1111111111").await, dec("100.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("0.00"));
    assert_eq!(balance(&l, "3333333333").await, dec("0"));
}

#[tokio::test]
async fn a_rate_replaced_between_read_and_write_is_never_used_stale() {
    let l = ledger().await;
    let from = at(-1);
    let until = at(1);
    load(&l, &rates_yaml(&[("USD", "EUR", "0.9", &from, &until)]))
        .await
        .unwrap();
    open(&l, "1111111111", "USD", "100.00").await;
    open(&l, "2222222222", "EUR", "0").await;
    let tx = conversion("1111111111", "2222222222", "10.00", "USD", "EUR");

    // A worker reads the rate and plans the movement...
    let now = OffsetDateTime::now_utc();
    let stale = l
        .rate_at(ccy("USD"), ccy("EUR"), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.version, 1);
    let converted = convert(dec("10.00"), stale.rate, ccy("EUR")).unwrap();
    let plan = build_conversion(l.tables(), &tx, &stale, &converted, now).unwrap();
    // ...the operator corrects the rate meanwhile (same window: a replacement)...
    let summary = load(&l, &rates_yaml(&[("USD", "EUR", "0.8", &from, &until)]))
        .await
        .unwrap();
    assert_eq!(summary.replaced, 1);
    // ...so the stale write is cancelled by the rate's condition check, and moves nothing.
    let err = l
        .client()
        .transact_write_items()
        .set_transact_items(Some(plan.items))
        .send()
        .await
        .unwrap_err();
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
    else {
        panic!("not a cancellation: {err:?}");
    };
    assert_eq!(
        interpret_cancellation(&plan.roles, e.cancellation_reasons()),
        CancellationVerdict::RateChanged
    );
    assert_eq!(balance(&l, "1111111111").await, dec("100.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("0.00"));
    assert!(l.get_result(tx.transaction_id).await.unwrap().is_none());

    // Applying reads the rate again: the new one.
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Completed);
    assert_eq!(balance(&l, "2222222222").await, dec("8.00"));
    let fx = l
        .get_result(tx.transaction_id)
        .await
        .unwrap()
        .unwrap()
        .conversion
        .unwrap();
    assert_eq!(fx.rate, "0.8");
    assert!(fx.rate_id.ends_with("#v2"), "{}", fx.rate_id);
}

#[tokio::test]
async fn rates_load_rejects_a_bad_file_with_a_position_and_writes_nothing() {
    let l = ledger().await;
    let dir = std::env::temp_dir().join(format!("ballast-rates-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rates.yaml");
    // One good rate, then a rate with too many decimals and an unknown currency.
    let good = rates_yaml(&[("USD", "EUR", "0.9215", &at(-1), &at(1))]);
    let bad = rates_yaml(&[("EUR", "ZZZ", "1.123456789012", &at(-1), &at(1))]);
    std::fs::write(
        &path,
        format!("{good}{}", bad.trim_start_matches("rates:\n")),
    )
    .unwrap();
    let err = file::load(&path).unwrap_err();
    let RatesFileError::Invalid(diagnostics) = &err else {
        panic!("{err}");
    };
    let text = err.to_string();
    let name = path.display().to_string();
    assert!(text.contains(&format!("{name}:9:12: error: ")), "{text}");
    assert!(
        text.contains(&format!(
            "{name}:10:11: error: 1.123456789012: the rate has 12"
        )),
        "{text}"
    );
    assert_eq!(diagnostics.items.len(), 2, "{text}");
    assert!(admin::list(&l).await.unwrap().is_empty(), "nothing written");

    // A file that overlaps a stored rate is refused whole, its good rates included.
    load(&l, &good).await.unwrap();
    let overlapping = rates_yaml(&[
        ("USD", "GBP", "0.79", &at(-1), &at(1)),
        ("USD", "EUR", "0.93", &at(0), &at(2)),
    ]);
    let err = load(&l, &overlapping).await.unwrap_err();
    assert!(matches!(err, RatesError::Conflicts(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("rates.yaml:8:5: error: this USD/EUR rate overlaps the stored one"),
        "{text}"
    );
    let stored = admin::list(&l).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].rate, dec("0.9215"));

    // Loading the same file again changes nothing (no new version).
    let summary = load(&l, &good).await.unwrap();
    assert_eq!(
        summary,
        LoadSummary {
            added: 0,
            replaced: 0,
            unchanged: 1
        }
    );
    assert_eq!(admin::list(&l).await.unwrap()[0].version, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn two_loads_of_one_pair_at_once_cannot_both_pass_the_overlap_check() {
    let l = ledger().await;
    let first = rates_yaml(&[("USD", "EUR", "0.9", &at(-1), &at(1))]);
    let second = rates_yaml(&[("USD", "EUR", "0.95", &at(0), &at(2))]);
    let (a, b) = tokio::join!(load(&l, &first), load(&l, &second));
    // Both read an empty pair; the guard lets exactly one of them write.
    let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "{a:?} {b:?}");
    let failed = if a.is_err() { a } else { b };
    assert!(
        matches!(
            failed,
            Err(RatesError::Concurrent { .. } | RatesError::Conflicts(_))
        ),
        "{failed:?}"
    );
    assert_eq!(admin::list(&l).await.unwrap().len(), 1);
}

#[tokio::test]
async fn money_is_conserved_per_currency_after_a_mixed_load() {
    let l = ledger().await;
    let (from, until) = (at(-1), at(1));
    load(
        &l,
        &rates_yaml(&[
            ("USD", "EUR", "0.9215", &from, &until),
            ("EUR", "USD", "1.0851", &from, &until),
            ("USD", "JPY", "149.3371", &from, &until),
            ("JPY", "EUR", "0.006171", &from, &until),
        ]),
    )
    .await
    .unwrap();
    let accounts = [
        ("1000000001", "USD"),
        ("1000000002", "USD"),
        ("2000000001", "EUR"),
        ("2000000002", "EUR"),
        ("3000000001", "JPY"),
    ];
    for (number, currency) in accounts {
        let opening = if currency == "JPY" {
            "100000"
        } else {
            "500.00"
        };
        open(&l, number, currency, opening).await;
    }
    let mut applied = Vec::new();
    for i in 0..40usize {
        let (source, from_ccy) = accounts[i % accounts.len()];
        let (target, to_ccy) = accounts[(i * 3 + 1) % accounts.len()];
        if source == target {
            continue;
        }
        let amount = if from_ccy == "JPY" {
            format!("{}", 1 + i * 37)
        } else {
            format!("{}.{:02}", 1 + i % 50, (i * 7) % 100)
        };
        // Same currency: a plain transfer; otherwise a conversion at the pair's rate.
        let tx = conversion(source, target, &amount, from_ccy, to_ccy);
        let outcome = l.apply(&tx).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Completed | Outcome::Declined(_)),
            "{outcome:?}"
        );
        applied.push(tx);
    }
    // No EUR/JPY rate, and more than the account holds: declined, nothing moves.
    for (amount, to) in [("1.00", "3000000001"), ("100000.00", "1000000001")] {
        let to_ccy = if to.starts_with('3') { "JPY" } else { "USD" };
        let tx = conversion("2000000001", to, amount, "EUR", to_ccy);
        assert!(matches!(l.apply(&tx).await.unwrap(), Outcome::Declined(_)));
        applied.push(tx);
    }
    // Redeliveries of everything change nothing.
    for tx in &applied {
        assert_eq!(l.apply(tx).await.unwrap(), Outcome::Duplicate);
    }
    let tables = l.tables();
    let report = ballast_worker::report::report(l.client(), tables.accounts, tables.transactions)
        .await
        .unwrap();
    assert!(report.money_conserved(), "{report:#?}");
    assert!(report.conversions >= 10, "{report:#?}");
    assert_eq!(report.reasons.get("NO_RATE"), Some(&1), "{report:#?}");
    assert_eq!(
        report.reasons.get("INSUFFICIENT_FUNDS"),
        Some(&1),
        "{report:#?}"
    );
    // The positions are what moved the per-currency totals: USD received, EUR paid, and so on.
    for ccy in ["USD", "EUR", "JPY"] {
        let position = report.fx_positions.get(ccy).copied().unwrap_or_default();
        let balances = report.balances[ccy];
        assert_eq!(
            balances + position,
            report.opening[ccy],
            "{ccy}: {report:#?}"
        );
    }
    assert!(report.fx_positions.values().any(|p| *p != Decimal::ZERO));
}

#[tokio::test]
async fn a_conversion_debits_only_the_principals_account_and_refuses_unrepresentable_results() {
    let l = ledger().await;
    let (from, until) = (at(-1), at(1));
    load(
        &l,
        &rates_yaml(&[
            ("USD", "EUR", "0.9215", &from, &until),
            ("JPY", "USD", "0.0049", &from, &until),
        ]),
    )
    .await
    .unwrap();
    open(&l, "1111111111", "USD", "100.00").await;
    open(&l, "2222222222", "EUR", "0").await;
    open(&l, "3333333333", "JPY", "1000").await;

    // A message acting for someone else does not move the owner's money.
    let mut stranger = conversion("1111111111", "2222222222", "10.00", "USD", "EUR");
    stranger.principal = Some(Subject::parse("mallory").unwrap());
    let Outcome::Declined(reason) = l.apply(&stranger).await.unwrap() else {
        panic!("not declined");
    };
    assert_eq!(reason.code(), "NOT_ACCOUNT_OWNER");
    let mut owner_tx = conversion("1111111111", "2222222222", "10.00", "USD", "EUR");
    owner_tx.principal = Some(owner());
    assert_eq!(l.apply(&owner_tx).await.unwrap(), Outcome::Completed);

    // 1 JPY × 0.0049 = 0.0049 USD rounds to 0.00: refused, not credited as zero.
    let tiny = conversion("3333333333", "1111111111", "1", "JPY", "USD");
    let Outcome::Declined(reason) = l.apply(&tiny).await.unwrap() else {
        panic!("not declined");
    };
    assert_eq!(reason.code(), "CONVERSION_OUT_OF_RANGE");
    assert!(
        reason.to_string().contains("rounds to zero USD"),
        "{reason}"
    );
    assert_eq!(balance(&l, "3333333333").await, dec("1000"));
    assert_eq!(balance(&l, "1111111111").await, dec("90.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("9.22"));
}
