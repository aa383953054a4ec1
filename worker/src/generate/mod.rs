//! Load generation: `seed-accounts` creates accounts, `send` enqueues a mix of transactions
//! (some duplicated, some invalid) among them at a fixed rate, and with a second set of
//! accounts in another currency, conversions between the two ([`generate_conversions`]), and
//! scheduled bill payments as the bill runner enqueues them ([`generate_bill_payments`]).

use std::io::BufRead;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use ballast_aws::{AwsError, SdkResultExt};
use rand::Rng;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::ConfigError;
use crate::ledger::{Ledger, LedgerError};
use crate::transaction::{
    AccountNumber, AccountNumberError, Currency, CurrencyError, IdempotencyKey,
    IdempotencyKeyError, Subject, Transaction, TransactionType,
};

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No usable AWS configuration.
    #[error(transparent)]
    AwsConfig(#[from] ballast_aws::ConfigError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The ledger refused.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Unknown currency.
    #[error(transparent)]
    Currency(#[from] CurrencyError),
    /// A line of the accounts input is not an account number.
    #[error("line {line} of the accounts input: {source}")]
    Account {
        /// 1-based line.
        line: usize,
        /// Why.
        #[source]
        source: AccountNumberError,
    },
    /// The generator built an account number the model refuses (a generator bug).
    #[error("a generated account number is invalid: {0}")]
    GeneratedAccount(#[source] AccountNumberError),
    /// The generator built an idempotency key the model refuses (a generator bug).
    #[error("a generated idempotency key is invalid: {0}")]
    GeneratedKey(#[source] IdempotencyKeyError),
    /// Fewer than two accounts to generate among.
    #[error("at least two accounts are needed; hint: run `ballast-worker seed-accounts` first")]
    TooFewAccounts,
    /// A sum of money left `Decimal`'s range.
    #[error("{what} overflows; hint: the ledger holds amounts beyond what one total can express")]
    Overflow {
        /// Which sum.
        what: &'static str,
    },
    /// Reading input or writing output failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A fraction or rate is out of range.
    #[error("{0}")]
    Argument(&'static str),
    /// Serializing a message failed.
    #[error("cannot serialize a transaction: {0}")]
    Json(#[from] serde_json::Error),
}

/// A random 10–12 digit account number (no leading zero).
pub fn random_account_number<R: Rng + ?Sized>(rng: &mut R) -> Result<AccountNumber, GenerateError> {
    let len = rng.random_range(AccountNumber::MIN_LEN..=AccountNumber::MAX_LEN);
    let mut s = String::with_capacity(len);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..len {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    AccountNumber::parse(&s).map_err(GenerateError::GeneratedAccount)
}

/// Creates `count` accounts with the opening `balance`, owned by `owner`; a number that already
/// exists is replaced by another random one.
#[tracing::instrument(skip(ledger))]
pub async fn seed_accounts(
    ledger: &Ledger,
    count: usize,
    balance: Decimal,
    currency: Currency,
    owner: &Subject,
) -> Result<Vec<AccountNumber>, GenerateError> {
    let mut created = Vec::with_capacity(count);
    while created.len() < count {
        let number = random_account_number(&mut rand::rng())?;
        match ledger
            .create_account(&number, currency, "CHECKING", balance, owner)
            .await
        {
            Ok(_) => created.push(number),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(created)
}

/// The mix of generated messages (fractions of the count; the rest are ordinary valid
/// transactions).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    /// Fraction of messages that resend an earlier message verbatim.
    pub duplicates: f64,
    /// Fraction of messages that are invalid (a bad account number).
    pub invalid: f64,
    /// Fraction of messages that are large transfers ([`LARGE_AMOUNTS`]): the risk rules'
    /// amount thresholds.
    pub large: f64,
    /// Fraction of messages that start a burst of [`BURST_LEN`] small transfers from one
    /// account: the risk rules' velocity limits.
    pub bursts: f64,
}

/// Amounts of a large transfer, in cents: 1000.00 to 20000.00.
pub const LARGE_AMOUNTS: std::ops::RangeInclusive<i64> = 100_000..=2_000_000;
/// Transfers in one burst.
pub const BURST_LEN: usize = 6;

/// Generates `count` message bodies among `accounts`.
pub fn generate_messages<R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &[AccountNumber],
    count: usize,
    mix: Mix,
    currency: Currency,
) -> Result<Vec<String>, GenerateError> {
    if accounts.len() < 2 {
        return Err(GenerateError::TooFewAccounts);
    }
    let fractions = [mix.duplicates, mix.invalid, mix.large, mix.bursts];
    if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) || fractions.iter().sum::<f64>() > 1.0 {
        return Err(GenerateError::Argument(
            "--duplicates, --invalid, --large and --bursts must be between 0 and 1, \
             and add up to at most 1",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(count);
    while out.len() < count {
        let roll: f64 = rng.random();
        if roll < mix.duplicates && !out.is_empty() {
            if let Some(again) = out.get(rng.random_range(0..out.len())).cloned() {
                out.push(again);
            }
        } else if roll < mix.duplicates + mix.invalid {
            out.push(invalid_message(rng, accounts, currency)?);
        } else if roll < mix.duplicates + mix.invalid + mix.large {
            let mut tx = random_transfer(rng, accounts, currency)?;
            tx.amount = Some(cents(rng.random_range(LARGE_AMOUNTS), currency));
            out.push(tx.to_json()?);
        } else if roll < mix.duplicates + mix.invalid + mix.large + mix.bursts {
            let first = random_transfer(rng, accounts, currency)?;
            for _ in 0..BURST_LEN {
                if out.len() >= count {
                    break;
                }
                let mut tx = random_transfer(rng, accounts, currency)?;
                if tx.target_account == first.source_account {
                    tx.target_account = first.target_account.clone();
                }
                tx.source_account = first.source_account.clone();
                tx.amount = Some(cents(rng.random_range(100..=2_000), currency));
                out.push(tx.to_json()?);
            }
        } else {
            out.push(random_transaction(rng, accounts, currency)?.to_json()?);
        }
    }
    Ok(out)
}

/// `cents` hundredths as an amount of `currency` (rescaled to its minor units).
fn cents(cents: i64, currency: Currency) -> Decimal {
    let units = currency.minor_units();
    let mut amount = Decimal::new(cents, 2)
        .round_dp(units)
        .max(Decimal::new(1, units));
    amount.rescale(units);
    amount
}

/// A TRANSFER between two different accounts (a new id and key).
fn random_transfer<R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &[AccountNumber],
    currency: Currency,
) -> Result<Transaction, GenerateError> {
    let mut tx = random_transaction(rng, accounts, currency)?;
    let (source, target) = pick_two(rng, accounts)?;
    tx.kind = TransactionType::Transfer;
    tx.source_account = Some(source.clone());
    tx.target_account = Some(target.clone());
    tx.amount = Some(cents(rng.random_range(1..=10_000), currency));
    Ok(tx)
}

/// Two different accounts; `TooFewAccounts` when there are not two to pick from.
fn pick_two<'a, R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &'a [AccountNumber],
) -> Result<(&'a AccountNumber, &'a AccountNumber), GenerateError> {
    let others = accounts
        .len()
        .checked_sub(1)
        .filter(|n| *n > 0)
        .ok_or(GenerateError::TooFewAccounts)?;
    let a = rng.random_range(0..accounts.len());
    let mut b = rng.random_range(0..others);
    if b >= a {
        // `b < others = len - 1`, so `b + 1 < len`.
        b = b.saturating_add(1);
    }
    match (accounts.get(a), accounts.get(b)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(GenerateError::TooFewAccounts),
    }
}

/// A valid transaction among `accounts`: 40% TRANSFER, 20% PAYMENT, 15% DEPOSIT,
/// 15% WITHDRAWAL, 10% BALANCE_CHECK; amounts 0.01–100.00 (in minor units, exact).
pub fn random_transaction<R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &[AccountNumber],
    currency: Currency,
) -> Result<Transaction, GenerateError> {
    let (source, target) = pick_two(rng, accounts)?;
    let amount = random_amount(rng, currency);
    let kind = match rng.random_range(0..20) {
        0..8 => TransactionType::Transfer,
        8..12 => TransactionType::Payment,
        12..15 => TransactionType::Deposit,
        15..18 => TransactionType::Withdrawal,
        _ => TransactionType::BalanceCheck,
    };
    let (source_account, target_account, amount) = match kind {
        TransactionType::Transfer | TransactionType::Payment => {
            (Some(source.clone()), Some(target.clone()), Some(amount))
        }
        TransactionType::Deposit => (None, Some(target.clone()), Some(amount)),
        TransactionType::Withdrawal => (Some(source.clone()), None, Some(amount)),
        TransactionType::BalanceCheck => (Some(source.clone()), None, None),
    };
    let transaction_id = Uuid::new_v4();
    Ok(Transaction {
        target_currency: None,
        transaction_id,
        kind,
        source_account,
        target_account,
        amount,
        currency,
        timestamp: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        idempotency_key: IdempotencyKey::parse(&format!("gen-{transaction_id}"))
            .map_err(GenerateError::GeneratedKey)?,
        // The generator is a trusted producer: its messages carry no principal.
        principal: None,
    })
}

/// Accounts of one currency, for conversions.
#[derive(Debug, Clone, Copy)]
pub struct Holdings<'a> {
    /// The accounts.
    pub accounts: &'a [AccountNumber],
    /// Their currency.
    pub currency: Currency,
}

/// `count` conversions between `home` and `foreign` accounts, each way at random: TRANSFERs
/// (and one in four PAYMENTs) in the source account's currency with the other as
/// `target_currency`; amounts 0.01–100.00 in the source currency's minor units.
pub fn generate_conversions<R: Rng + ?Sized>(
    rng: &mut R,
    home: Holdings<'_>,
    foreign: Holdings<'_>,
    count: usize,
) -> Result<Vec<String>, GenerateError> {
    if home.accounts.is_empty() || foreign.accounts.is_empty() {
        return Err(GenerateError::TooFewAccounts);
    }
    if home.currency == foreign.currency {
        return Err(GenerateError::Argument(
            "conversions need accounts in two different currencies",
        ));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (from, to) = if rng.random_bool(0.5) {
            (home, foreign)
        } else {
            (foreign, home)
        };
        let pick = |rng: &mut R, accounts: &[AccountNumber]| {
            accounts
                .get(rng.random_range(0..accounts.len()))
                .cloned()
                .ok_or(GenerateError::TooFewAccounts)
        };
        let source = pick(rng, from.accounts)?;
        let target = pick(rng, to.accounts)?;
        let kind = if rng.random_range(0..4) == 0 {
            TransactionType::Payment
        } else {
            TransactionType::Transfer
        };
        let transaction_id = Uuid::new_v4();
        let tx = Transaction {
            transaction_id,
            kind,
            source_account: Some(source),
            target_account: Some(target),
            amount: Some(random_amount(rng, from.currency)),
            currency: from.currency,
            target_currency: Some(to.currency),
            timestamp: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            idempotency_key: IdempotencyKey::parse(&format!("gen-fx-{transaction_id}"))
                .map_err(GenerateError::GeneratedKey)?,
            principal: None,
        };
        out.push(tx.to_json()?);
    }
    Ok(out)
}

/// `count` bill PAYMENTs as the bill runner ([`crate::bills::runner`]) enqueues them: schedules
/// of 1-12 monthly occurrences (a random payer and biller each, a fixed amount), one message
/// per occurrence keyed `bill:<schedule id>:<date>`, and one occurrence in eight sent twice
/// verbatim (as the sweeper re-sends a message whose first send it could not confirm), which
/// the ledger must apply once.
pub fn generate_bill_payments<R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &[AccountNumber],
    currency: Currency,
    count: usize,
) -> Result<Vec<String>, GenerateError> {
    let mut out = Vec::with_capacity(count);
    let today = OffsetDateTime::now_utc().date();
    while out.len() < count {
        let (source, target) = pick_two(rng, accounts)?;
        let amount = random_amount(rng, currency);
        let schedule_id = Uuid::now_v7();
        let occurrences: u32 = rng.random_range(1..=12);
        for n in 0..occurrences {
            if out.len() >= count {
                break;
            }
            let date = crate::bills::occurrence(today, crate::bills::Recurrence::Monthly, n)
                .ok_or(GenerateError::Argument("a bill date past the calendar"))?;
            let transaction_id = Uuid::now_v7();
            let tx = Transaction {
                transaction_id,
                kind: TransactionType::Payment,
                source_account: Some(source.clone()),
                target_account: Some(target.clone()),
                amount: Some(amount),
                currency,
                target_currency: None,
                timestamp: OffsetDateTime::now_utc()
                    .replace_nanosecond(0)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                idempotency_key: IdempotencyKey::parse(&crate::bills::occurrence_key(
                    schedule_id,
                    date,
                ))
                .map_err(GenerateError::GeneratedKey)?,
                principal: None,
            };
            let body = tx.to_json()?;
            if rng.random_range(0..8) == 0 && out.len().saturating_add(1) < count {
                out.push(body.clone());
            }
            out.push(body);
        }
    }
    Ok(out)
}

/// 0.01–100.00 in `currency`'s minor units (at least one minor unit).
fn random_amount<R: Rng + ?Sized>(rng: &mut R, currency: Currency) -> Decimal {
    let units = currency.minor_units();
    let mut amount = Decimal::new(rng.random_range(1..=10_000), 2)
        .round_dp(units)
        .max(Decimal::new(1, units));
    amount.rescale(units);
    amount
}

/// An invalid transfer (its target account number has letters in it): it has a transaction id,
/// so the worker records a REJECTED result.
fn invalid_message<R: Rng + ?Sized>(
    rng: &mut R,
    accounts: &[AccountNumber],
    currency: Currency,
) -> Result<String, GenerateError> {
    // `random_range` panics on an empty range: check before drawing.
    if accounts.is_empty() {
        return Err(GenerateError::TooFewAccounts);
    }
    let source = accounts
        .get(rng.random_range(0..accounts.len()))
        .ok_or(GenerateError::TooFewAccounts)?;
    let id = Uuid::new_v4();
    Ok(serde_json::json!({
        "transaction_id": id.to_string(),
        "type": "TRANSFER",
        "source_account": source.as_str(),
        "target_account": "12AB567890",
        "amount": "1.00",
        "currency": currency.code(),
        "timestamp": "2024-01-15T10:30:00Z",
        "idempotency_key": format!("gen-invalid-{id}"),
    })
    .to_string())
}

/// Reads account numbers, one per line (blank lines ignored).
pub fn read_accounts(input: impl BufRead) -> Result<Vec<AccountNumber>, GenerateError> {
    let mut accounts = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        accounts.push(
            AccountNumber::parse(line).map_err(|source| GenerateError::Account {
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(accounts)
}

/// Sends `bodies` with SendMessageBatch (ten per call), at most `rate` messages per second.
/// Returns the number of messages SQS accepted.
#[tracing::instrument(skip(sqs, bodies), fields(count = bodies.len()))]
pub async fn send_messages(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
    rate: f64,
) -> Result<usize, GenerateError> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(GenerateError::Argument("--rate must be positive"));
    }
    let period = Duration::from_secs_f64((10.0 / rate).max(0.000_1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0;
    for chunk in bodies.chunks(10) {
        ticker.tick().await;
        let mut entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .ok()
            })
            .collect();
        // 50 ms, 100 ms … between the attempts at the entries SQS failed (not the sender's).
        const RESEND_BACKOFF: ballast_runtime::Backoff = ballast_runtime::Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(800),
        };
        for attempt in 0..5u32 {
            let out = sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .classify("sqs:SendMessageBatch")?;
            sent += out.successful().len();
            let failed: Vec<&str> = out
                .failed()
                .iter()
                .filter(|f| !f.sender_fault())
                .map(|f| f.id())
                .collect();
            if failed.is_empty() {
                break;
            }
            entries.retain(|e| failed.contains(&e.id()));
            tokio::time::sleep(RESEND_BACKOFF.delay(attempt.saturating_add(1))).await;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::{ParseError, parse_transaction};

    #[test]
    fn account_numbers_have_10_to_12_digits() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let n = random_account_number(&mut rng).unwrap();
            assert!((10..=12).contains(&n.as_str().len()));
            assert!(!n.as_str().starts_with('0'));
        }
    }

    #[test]
    fn generated_messages_parse_and_follow_the_mix() {
        let mut rng = rand::rng();
        let accounts: Vec<AccountNumber> = (0..5)
            .map(|_| random_account_number(&mut rng).unwrap())
            .collect();
        let usd = Currency::from_code("USD").unwrap();
        let mix = Mix {
            duplicates: 0.1,
            invalid: 0.05,
            ..Mix::default()
        };
        let bodies = generate_messages(&mut rng, &accounts, 2000, mix, usd).unwrap();
        assert_eq!(bodies.len(), 2000);
        let mut invalid = 0;
        let mut ids = std::collections::HashSet::new();
        for body in &bodies {
            match parse_transaction(body.as_bytes()) {
                Ok(tx) => {
                    ids.insert(tx.transaction_id);
                    assert!(tx.accounts().all(|a| accounts.contains(a)));
                    if let Some(amount) = tx.amount {
                        assert_eq!(amount.scale(), 2);
                        assert!(amount > Decimal::ZERO);
                    }
                }
                Err(ParseError::Invalid { .. }) => invalid += 1,
                Err(e) => panic!("malformed generated message: {e}"),
            }
        }
        assert!((40..=200).contains(&invalid), "invalid {invalid}");
        let duplicates = 2000 - invalid - ids.len();
        assert!((100..=320).contains(&duplicates), "duplicates {duplicates}");
    }

    #[test]
    fn large_transfers_and_bursts_feed_the_risk_rules() {
        let mut rng = rand::rng();
        let accounts: Vec<AccountNumber> = (0..5)
            .map(|_| random_account_number(&mut rng).unwrap())
            .collect();
        let usd = Currency::from_code("USD").unwrap();
        let only = |large, bursts| Mix {
            large,
            bursts,
            ..Mix::default()
        };
        let bodies = generate_messages(&mut rng, &accounts, 60, only(1.0, 0.0), usd).unwrap();
        for body in &bodies {
            let tx = parse_transaction(body.as_bytes()).unwrap();
            assert_eq!(tx.kind, TransactionType::Transfer);
            let amount = tx.amount.unwrap();
            assert!(amount >= Decimal::new(1000, 0) && amount <= Decimal::new(20000, 0));
        }
        let bodies =
            generate_messages(&mut rng, &accounts, BURST_LEN * 3, only(0.0, 1.0), usd).unwrap();
        let txs: Vec<Transaction> = bodies
            .iter()
            .map(|b| parse_transaction(b.as_bytes()).unwrap())
            .collect();
        for burst in txs.chunks(BURST_LEN) {
            let source = &burst[0].source_account;
            assert!(burst.iter().all(|t| &t.source_account == source));
            assert!(burst.iter().all(|t| t.target_account != t.source_account));
            let ids: std::collections::HashSet<_> =
                burst.iter().map(|t| t.transaction_id).collect();
            assert_eq!(ids.len(), BURST_LEN);
        }
        assert!(generate_messages(&mut rng, &accounts, 1, only(0.7, 0.7), usd).is_err());
    }

    #[test]
    fn generated_conversions_parse_and_go_both_ways() {
        let mut rng = rand::rng();
        let usd: Vec<AccountNumber> = (0..3)
            .map(|_| random_account_number(&mut rng).unwrap())
            .collect();
        let jpy: Vec<AccountNumber> = (0..3)
            .map(|_| random_account_number(&mut rng).unwrap())
            .collect();
        let home = Holdings {
            accounts: &usd,
            currency: Currency::from_code("USD").unwrap(),
        };
        let foreign = Holdings {
            accounts: &jpy,
            currency: Currency::from_code("JPY").unwrap(),
        };
        let bodies = generate_conversions(&mut rng, home, foreign, 400).unwrap();
        let mut ways = std::collections::HashSet::new();
        for body in &bodies {
            let tx = parse_transaction(body.as_bytes()).unwrap();
            let to = tx.conversion().expect("a conversion");
            ways.insert((tx.currency.code(), to.code()));
            let (source, target) = (tx.source_account.unwrap(), tx.target_account.unwrap());
            match tx.currency.code() {
                "USD" => assert!(usd.contains(&source) && jpy.contains(&target)),
                _ => assert!(jpy.contains(&source) && usd.contains(&target)),
            }
            assert_eq!(tx.amount.unwrap().scale(), tx.currency.minor_units());
        }
        assert_eq!(ways.len(), 2, "{ways:?}");
        assert!(generate_conversions(&mut rng, home, home, 1).is_err());
    }

    #[test]
    fn generated_bill_payments_are_the_runners_messages() {
        let mut rng = rand::rng();
        let usd = Currency::from_code("USD").unwrap();
        let accounts: Vec<AccountNumber> = (0..4)
            .map(|_| random_account_number(&mut rng).unwrap())
            .collect();
        let bodies = generate_bill_payments(&mut rng, &accounts, usd, 300).unwrap();
        assert_eq!(bodies.len(), 300);
        let mut per_schedule: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for body in &bodies {
            let tx = parse_transaction(body.as_bytes()).unwrap();
            assert_eq!(tx.kind, TransactionType::Payment);
            ids.insert(tx.transaction_id);
            let key = tx.idempotency_key.as_str();
            let mut parts = key.splitn(3, ':');
            assert_eq!(parts.next(), Some("bill"), "{key}");
            let schedule = parts.next().unwrap().to_owned();
            let date = parts.next().unwrap().to_owned();
            assert!(crate::bills::parse_date(&date).is_some(), "{key}");
            per_schedule.entry(schedule).or_default().push(date);
        }
        // Re-sends repeat a message verbatim (same id and key); dates only move forward.
        assert!(ids.len() < bodies.len(), "some occurrences are sent twice");
        for dates in per_schedule.values() {
            assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
        }
    }

    #[test]
    fn accounts_are_read_line_by_line() {
        let input = b"1234567890\n\n123456789012\n" as &[u8];
        assert_eq!(read_accounts(input).unwrap().len(), 2);
        let err = read_accounts(b"12\n" as &[u8]).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn too_few_accounts_is_an_error() {
        let usd = Currency::from_code("USD").unwrap();
        let mix = Mix {
            duplicates: 0.0,
            invalid: 0.0,
            ..Mix::default()
        };
        let one = vec![random_account_number(&mut rand::rng()).unwrap()];
        assert!(matches!(
            generate_messages(&mut rand::rng(), &one, 1, mix, usd),
            Err(GenerateError::TooFewAccounts)
        ));
    }
}
