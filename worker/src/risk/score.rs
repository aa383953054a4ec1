//! Scoring: a pure function of the rules, the transaction, the debited account's velocity
//! snapshot and its age. No I/O and no clock: `now` is an argument.
#![deny(clippy::arithmetic_side_effects)]

use time::OffsetDateTime;

use super::rules::{RiskRules, RuleKind};
use super::velocity::VelocitySnapshot;
use crate::transaction::Transaction;

/// What the score decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Below the hold threshold: the movement is applied now.
    Approve,
    /// At or above `hold`, below `decline`: no money moves until an operator decides.
    Hold,
    /// At or above `decline`: refused.
    Decline,
}

impl Decision {
    /// The stored and metric name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Hold => "hold",
            Decision::Decline => "decline",
        }
    }
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredRule {
    /// The rule's name.
    pub name: String,
    /// Its kind.
    pub kind: RuleKind,
    /// Points it added.
    pub score: u32,
    /// What it saw, for the analyst.
    pub detail: String,
}

/// The verdict of the rules on one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Sum of the fired rules' scores (saturating).
    pub score: u32,
    /// What the thresholds make of it.
    pub decision: Decision,
    /// The rules that fired, in file order by kind (amount, velocity, new account, deny list).
    pub fired: Vec<FiredRule>,
}

/// What is known about the debited account besides its velocity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountFacts {
    /// When it was opened, if the account exists and says so.
    pub created_at: Option<OffsetDateTime>,
}

/// Scores `tx` (a money movement; a transaction without an amount scores 0 and is approved).
pub fn assess(
    rules: &RiskRules,
    tx: &Transaction,
    velocity: &VelocitySnapshot,
    account: AccountFacts,
    now: OffsetDateTime,
) -> Assessment {
    let mut fired = Vec::new();
    let Some(amount) = tx.amount else {
        return Assessment {
            score: 0,
            decision: Decision::Approve,
            fired,
        };
    };
    let currency = tx.currency;
    let mut fire = |name: &str, kind, score, detail: String| {
        fired.push(FiredRule {
            name: name.to_owned(),
            kind,
            score,
            detail,
        });
    };
    for r in &rules.amount {
        if r.currency == currency && amount > r.above {
            fire(
                &r.name,
                RuleKind::Amount,
                r.score,
                format!("{amount} {} is above {}", currency.code(), r.above),
            );
        }
    }
    if tx.debit_account().is_some() {
        for r in &rules.velocity {
            let window = velocity.window(now, r.window_secs, rules.bucket_secs, currency);
            let count = window.count.saturating_add(1);
            if let Some(max) = r.max_count
                && count > u64::from(max)
            {
                fire(
                    &r.name,
                    RuleKind::Velocity,
                    r.score,
                    format!("debit {count} in {}s (at most {max})", r.window_secs),
                );
                continue;
            }
            if let Some((ccy, max)) = r.max_amount
                && ccy == currency
            {
                let total = window.amount.and_then(|a| a.checked_add(amount));
                if total.is_none_or(|t| t > max) {
                    let total = total.map_or_else(|| "beyond range".to_owned(), |t| t.to_string());
                    fire(
                        &r.name,
                        RuleKind::Velocity,
                        r.score,
                        format!(
                            "{total} {} debited in {}s (at most {max})",
                            ccy.code(),
                            r.window_secs
                        ),
                    );
                }
            }
        }
        for r in &rules.new_account {
            let by_count = r
                .first_transactions
                .is_some_and(|n| velocity.lifetime_count < u64::from(n));
            // Seconds since the account was opened; a creation time in the future (clock skew)
            // counts as young.
            let age = account
                .created_at
                .and_then(|c| now.unix_timestamp().checked_sub(c.unix_timestamp()));
            let by_age = match (r.younger_than_secs, age) {
                (Some(limit), Some(age)) => u64::try_from(age).map_or(true, |age| age < limit),
                _ => false,
            };
            if !(by_count || by_age) {
                continue;
            }
            let over = match r.max_amount {
                None => true,
                Some((ccy, max)) => ccy == currency && amount > max,
            };
            if over {
                let why = if by_count {
                    format!(
                        "debit {} of a new account",
                        velocity.lifetime_count.saturating_add(1)
                    )
                } else {
                    "debit of an account opened recently".to_owned()
                };
                let limit = r
                    .max_amount
                    .map(|(c, m)| format!(", above {m} {}", c.code()))
                    .unwrap_or_default();
                fire(
                    &r.name,
                    RuleKind::NewAccount,
                    r.score,
                    format!("{why}{limit}"),
                );
            }
        }
    }
    for r in &rules.deny_list {
        if let Some(listed) = tx.accounts().find(|a| r.accounts.contains(a)) {
            fire(
                &r.name,
                RuleKind::DenyList,
                r.score,
                format!("account {listed} is on the deny list"),
            );
        }
    }
    let score = fired
        .iter()
        .fold(0u32, |sum, f| sum.saturating_add(f.score));
    let decision = if score >= rules.decline_at {
        Decision::Decline
    } else if score >= rules.hold_at {
        Decision::Hold
    } else {
        Decision::Approve
    };
    Assessment {
        score,
        decision,
        fired,
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, reason = "test code")]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use super::*;
    use crate::risk::rules::parse;
    use crate::transaction::{AccountNumber, Currency, IdempotencyKey, TransactionType};

    const RULES: &str = "\
apiVersion: ballast.dev/v1
kind: RiskRules
thresholds: { hold: 50, decline: 100 }
amount:
  - { name: large-usd, currency: USD, above: 10000, score: 60 }
velocity:
  - { name: burst, window: 10m, maxCount: 3, score: 50 }
  - { name: drain, window: 1h, maxAmount: 5000, currency: USD, score: 40 }
newAccount:
  - { name: first-payments, firstTransactions: 2, currency: USD, maxAmount: 500, score: 30 }
  - { name: young, youngerThan: 1d, currency: USD, maxAmount: 2000, score: 20 }
denyList:
  - { name: sanctioned, accounts: [\"9999999999\"], score: 100 }
";

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn rules() -> RiskRules {
        parse("rules.yaml", RULES).unwrap()
    }

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn transfer(amount: &str, source: &str, target: &str) -> Transaction {
        Transaction {
            transaction_id: Uuid::now_v7(),
            kind: TransactionType::Transfer,
            source_account: Some(AccountNumber::parse(source).unwrap()),
            target_account: Some(AccountNumber::parse(target).unwrap()),
            amount: Some(dec(amount)),
            currency: usd(),
            timestamp: now(),
            idempotency_key: IdempotencyKey::parse("k-1").unwrap(),
            principal: None,
            target_currency: None,
        }
    }

    /// An account that is neither young nor new.
    fn seasoned() -> (VelocitySnapshot, AccountFacts) {
        let velocity = VelocitySnapshot {
            version: 7,
            lifetime_count: 10,
            buckets: Vec::new(),
        };
        let created = now() - time::Duration::days(30);
        (
            velocity,
            AccountFacts {
                created_at: Some(created),
            },
        )
    }

    fn names(a: &Assessment) -> Vec<&str> {
        a.fired.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn a_quiet_transaction_is_approved_with_nothing_fired() {
        let (v, facts) = seasoned();
        let a = assess(
            &rules(),
            &transfer("100.00", "1111111111", "2222222222"),
            &v,
            facts,
            now(),
        );
        assert_eq!((a.score, a.decision), (0, Decision::Approve));
        assert!(a.fired.is_empty());
    }

    #[test]
    fn the_amount_threshold_is_exclusive_and_per_currency() {
        let (v, facts) = seasoned();
        let r = rules();
        let at = assess(
            &r,
            &transfer("10000.00", "1111111111", "2222222222"),
            &v,
            facts,
            now(),
        );
        assert!(!names(&at).contains(&"large-usd"), "{at:?}");
        let above = assess(
            &r,
            &transfer("10000.01", "1111111111", "2222222222"),
            &v,
            facts,
            now(),
        );
        // The hourly amount limit (5000) fires too: 60 + 40 reaches the decline threshold.
        assert_eq!(names(&above), ["large-usd", "drain"]);
        assert_eq!((above.score, above.decision), (100, Decision::Decline));
        let mut eur = transfer("20000.00", "1111111111", "2222222222");
        eur.currency = Currency::from_code("EUR").unwrap();
        assert_eq!(assess(&r, &eur, &v, facts, now()).score, 0);
    }

    #[test]
    fn velocity_counts_this_debit_and_fires_past_the_limit() {
        let (mut v, facts) = seasoned();
        let r = rules();
        let tx = transfer("10.00", "1111111111", "2222222222");
        for n in 1..=3 {
            let a = assess(&r, &tx, &v, facts, now());
            assert_eq!(a.decision, Decision::Approve, "debit {n}");
            v = v.record(now(), dec("10.00"), usd(), 60, 3600).unwrap();
        }
        let a = assess(&r, &tx, &v, facts, now());
        assert_eq!(names(&a), ["burst"]);
        assert_eq!(a.decision, Decision::Hold);
        // Ten minutes later the burst is out of the window.
        let later = now() + time::Duration::minutes(10);
        assert!(assess(&r, &tx, &v, facts, later).fired.is_empty());
    }

    #[test]
    fn velocity_amount_sums_the_window_in_its_currency() {
        let (mut v, facts) = seasoned();
        v = v.record(now(), dec("4000.00"), usd(), 60, 3600).unwrap();
        let r = rules();
        let ok = assess(
            &r,
            &transfer("1000.00", "1111111111", "2222222222"),
            &v,
            facts,
            now(),
        );
        assert!(ok.fired.is_empty(), "{ok:?}");
        let over = assess(
            &r,
            &transfer("1000.01", "1111111111", "2222222222"),
            &v,
            facts,
            now(),
        );
        assert_eq!(names(&over), ["drain"]);
        assert_eq!(
            over.decision,
            Decision::Approve,
            "40 is below the hold threshold"
        );
    }

    #[test]
    fn a_new_account_is_limited_by_count_and_by_age() {
        let r = rules();
        let fresh = AccountFacts {
            created_at: Some(now() - time::Duration::hours(1)),
        };
        let empty = VelocitySnapshot::default();
        let a = assess(
            &r,
            &transfer("600.00", "1111111111", "2222222222"),
            &empty,
            fresh,
            now(),
        );
        assert_eq!(names(&a), ["first-payments"]);
        let a = assess(
            &r,
            &transfer("2500.00", "1111111111", "2222222222"),
            &empty,
            fresh,
            now(),
        );
        assert_eq!(names(&a), ["first-payments", "young"]);
        assert_eq!(a.decision, Decision::Hold);
        // Two debits later it is no longer new by count, still young by age.
        let v = VelocitySnapshot {
            lifetime_count: 2,
            ..VelocitySnapshot::default()
        };
        let a = assess(
            &r,
            &transfer("2500.00", "1111111111", "2222222222"),
            &v,
            fresh,
            now(),
        );
        assert_eq!(names(&a), ["young"]);
        // Deposits debit nothing: no velocity, no new-account rule.
        let mut deposit = transfer("2500.00", "1111111111", "2222222222");
        deposit.kind = TransactionType::Deposit;
        deposit.source_account = None;
        assert!(assess(&r, &deposit, &empty, fresh, now()).fired.is_empty());
    }

    #[test]
    fn a_denied_account_on_either_side_declines() {
        let (v, facts) = seasoned();
        let r = rules();
        for (s, t) in [("9999999999", "2222222222"), ("1111111111", "9999999999")] {
            let a = assess(&r, &transfer("1.00", s, t), &v, facts, now());
            assert_eq!((a.score, a.decision), (100, Decision::Decline));
            assert_eq!(names(&a), ["sanctioned"]);
        }
    }

    #[test]
    fn scores_add_up_across_kinds() {
        let r = rules();
        let fresh = AccountFacts {
            created_at: Some(now()),
        };
        let a = assess(
            &r,
            &transfer("20000.00", "1111111111", "9999999999"),
            &VelocitySnapshot::default(),
            fresh,
            now(),
        );
        assert_eq!(
            names(&a),
            [
                "large-usd",
                "drain",
                "first-payments",
                "young",
                "sanctioned"
            ]
        );
        assert_eq!(a.score, 60 + 40 + 30 + 20 + 100);
        assert_eq!(a.decision, Decision::Decline);
    }

    proptest! {
        /// The score is the sum of the fired rules, the decision follows the thresholds, and a
        /// larger amount never lowers the score (every amount limit is monotone).
        #[test]
        fn score_is_consistent_and_monotone_in_the_amount(
            cents in 1i64..500_000_000,
            extra in 0i64..100_000_000,
            count in 0u64..8,
            lifetime in 0u64..5,
            age_hours in 0i64..100,
        ) {
            let r = rules();
            let mut v = VelocitySnapshot { lifetime_count: lifetime, ..VelocitySnapshot::default() };
            for _ in 0..count {
                v = v.record(now(), dec("100.00"), usd(), 60, 3600).unwrap();
            }
            let facts = AccountFacts { created_at: Some(now() - time::Duration::hours(age_hours)) };
            let small = transfer(&Decimal::new(cents, 2).to_string(), "1111111111", "2222222222");
            let large = transfer(&Decimal::new(cents + extra, 2).to_string(), "1111111111", "2222222222");
            let a = assess(&r, &small, &v, facts, now());
            let b = assess(&r, &large, &v, facts, now());
            prop_assert_eq!(a.score, a.fired.iter().map(|f| f.score).sum::<u32>());
            let expected = if a.score >= 100 { Decision::Decline } else if a.score >= 50 { Decision::Hold } else { Decision::Approve };
            prop_assert_eq!(a.decision, expected);
            prop_assert!(b.score >= a.score, "{a:?} {b:?}");
        }
    }
}
