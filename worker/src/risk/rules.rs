//! The risk rules file: its YAML form, read through the blueprint's positioned reader
//! ([`ballast_blueprint::parse_format`]), and the checks the schema cannot express, each
//! reported at `file:line:column` with a hint. Nothing is used until every check passes.
//!
//! ```yaml
//! apiVersion: ballast.dev/v1
//! kind: RiskRules
//! thresholds: { hold: 50, decline: 100 }
//! velocityBucket: 60s
//! amount:
//!   - { name: large-usd, currency: USD, above: 10000, score: 60 }
//! velocity:
//!   - { name: burst, window: 10m, maxCount: 5, score: 60 }
//! newAccount:
//!   - { name: first-payments, firstTransactions: 3, currency: USD, maxAmount: 500, score: 50 }
//! denyList:
//!   - { name: sanctioned, accounts: ["9999999999"], score: 100 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use ballast_blueprint::{Decimal, Diagnostic, Diagnostics, Duration, LoadError, Positions};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::transaction::{AccountNumber, Currency, check_amount};

/// The one version of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `ballast.dev/v1`.
    #[serde(rename = "ballast.dev/v1")]
    V1,
}

/// The document kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum RulesKind {
    /// `RiskRules`.
    RiskRules,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RulesFile {
    /// `ballast.dev/v1`.
    pub api_version: ApiVersion,
    /// `RiskRules`.
    pub kind: RulesKind,
    /// The scores at which a transaction is held for review or declined.
    pub thresholds: ThresholdsSpec,
    /// Width of one velocity bucket (default 60s): windows are whole numbers of buckets.
    #[serde(default)]
    pub velocity_bucket: Option<Duration>,
    /// Amount thresholds, per currency.
    #[serde(default)]
    pub amount: Vec<AmountSpec>,
    /// Count and amount per debited account per sliding window.
    #[serde(default)]
    pub velocity: Vec<VelocitySpec>,
    /// Limits on the first transactions of a new account.
    #[serde(default)]
    pub new_account: Vec<NewAccountSpec>,
    /// Accounts whose transactions (either side) score.
    #[serde(default)]
    pub deny_list: Vec<DenyListSpec>,
}

/// `thresholds:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdsSpec {
    /// A score at or above this holds the transaction for review.
    pub hold: u32,
    /// A score at or above this declines it.
    pub decline: u32,
}

/// One amount rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountSpec {
    /// Rule name (reported in analysis records).
    pub name: String,
    /// The currency it applies to.
    pub currency: String,
    /// Fires when the amount is strictly above this.
    pub above: Decimal,
    /// Points added when it fires.
    pub score: u32,
}

/// One velocity rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VelocitySpec {
    /// Rule name.
    pub name: String,
    /// The sliding window (a whole number of buckets, at most 1d).
    pub window: Duration,
    /// Fires when this transaction would make more debits than this in the window.
    #[serde(default)]
    pub max_count: Option<u32>,
    /// Fires when this transaction would make the debited amount in `currency` in the window
    /// exceed this.
    #[serde(default)]
    pub max_amount: Option<Decimal>,
    /// The currency of `maxAmount`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Points added when it fires.
    pub score: u32,
}

/// One new-account rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccountSpec {
    /// Rule name.
    pub name: String,
    /// The account is new while it has made fewer debits than this.
    #[serde(default)]
    pub first_transactions: Option<u32>,
    /// The account is new while it is younger than this.
    #[serde(default)]
    pub younger_than: Option<Duration>,
    /// Fires on a new account's debit above this (in `currency`); without it, on any debit.
    #[serde(default)]
    pub max_amount: Option<Decimal>,
    /// The currency of `maxAmount`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Points added when it fires.
    pub score: u32,
}

/// One deny list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyListSpec {
    /// Rule name.
    pub name: String,
    /// The accounts.
    pub accounts: Vec<String>,
    /// Points added when a transaction debits or credits one of them.
    pub score: u32,
}

/// Default velocity bucket width.
pub const DEFAULT_BUCKET_SECS: u64 = 60;
/// Longest velocity window: the velocity item keeps at most this much history.
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// Most buckets in a window, so that a velocity item stays far below DynamoDB's 400 KB.
pub const MAX_BUCKETS_PER_WINDOW: u64 = 1_440;
/// Largest score of one rule and largest threshold.
pub const MAX_SCORE: u32 = 1_000_000;

/// What kind of rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// An amount threshold.
    Amount,
    /// A velocity limit.
    Velocity,
    /// A new-account limit.
    NewAccount,
    /// A deny list.
    DenyList,
}

impl RuleKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Amount => "amount",
            RuleKind::Velocity => "velocity",
            RuleKind::NewAccount => "newAccount",
            RuleKind::DenyList => "denyList",
        }
    }
}

/// An amount rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRule {
    /// Name.
    pub name: String,
    /// Currency.
    pub currency: Currency,
    /// Threshold (exclusive).
    pub above: rust_decimal::Decimal,
    /// Points.
    pub score: u32,
}

/// A velocity rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VelocityRule {
    /// Name.
    pub name: String,
    /// Window length in seconds (a multiple of the bucket width).
    pub window_secs: u64,
    /// Most debits in the window.
    pub max_count: Option<u32>,
    /// Most money debited in the window, in a currency.
    pub max_amount: Option<(Currency, rust_decimal::Decimal)>,
    /// Points.
    pub score: u32,
}

/// A new-account rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountRule {
    /// Name.
    pub name: String,
    /// New while fewer debits than this.
    pub first_transactions: Option<u32>,
    /// New while younger than this many seconds.
    pub younger_than_secs: Option<u64>,
    /// Fires above this amount (in a currency); `None`: on any debit.
    pub max_amount: Option<(Currency, rust_decimal::Decimal)>,
    /// Points.
    pub score: u32,
}

/// A deny list, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyListRule {
    /// Name.
    pub name: String,
    /// The accounts.
    pub accounts: Vec<AccountNumber>,
    /// Points.
    pub score: u32,
}

/// The rules the worker scores with: every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRules {
    /// Hold at or above this score.
    pub hold_at: u32,
    /// Decline at or above this score.
    pub decline_at: u32,
    /// Velocity bucket width in seconds.
    pub bucket_secs: u64,
    /// Amount rules.
    pub amount: Vec<AmountRule>,
    /// Velocity rules.
    pub velocity: Vec<VelocityRule>,
    /// New-account rules.
    pub new_account: Vec<NewAccountRule>,
    /// Deny lists.
    pub deny_list: Vec<DenyListRule>,
}

impl RiskRules {
    /// The longest velocity window (what the velocity item keeps), at least one bucket.
    pub fn retention_secs(&self) -> u64 {
        self.velocity
            .iter()
            .map(|r| r.window_secs)
            .max()
            .unwrap_or(0)
            .max(self.bucket_secs)
    }

    /// Whether any rule needs the debited account's velocity item (velocity and new-account
    /// rules; the item's lifetime count feeds `firstTransactions`).
    pub fn needs_velocity(&self) -> bool {
        !self.velocity.is_empty() || !self.new_account.is_empty()
    }
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file cannot be read (or is too large, or not UTF-8).
    #[error(transparent)]
    Read(#[from] LoadError),
    /// The file is not valid: every problem, positioned.
    #[error("{0}")]
    Invalid(Diagnostics),
}

fn schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(RulesFile).to_value())
}

/// Reads and checks a rules file (the blueprint's size, UTF-8 and expansion limits apply).
pub fn load(path: &Path) -> Result<RiskRules, RulesError> {
    let source = ballast_blueprint::read(path)?;
    parse(&path.display().to_string(), &source).map_err(RulesError::Invalid)
}

/// Checks rules text; `file` only labels the diagnostics.
pub fn parse(file: &str, source: &str) -> Result<RiskRules, Diagnostics> {
    let (spec, positions) =
        ballast_blueprint::parse_format::<RulesFile>(file, source, schema(), "a RiskRules file")?;
    let mut check = Checker {
        positions: &positions,
        problems: Vec::new(),
        names: BTreeMap::new(),
    };
    let rules = check.rules(&spec);
    check.problems.sort_by_key(|d| d.position);
    if check.problems.is_empty() {
        Ok(rules)
    } else {
        Err(Diagnostics {
            file: file.to_owned(),
            items: check.problems,
        })
    }
}

struct Checker<'a> {
    positions: &'a Positions,
    problems: Vec<Diagnostic>,
    /// Rule names seen, with where.
    names: BTreeMap<String, String>,
}

impl Checker<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.problems
            .push(Diagnostic::error(self.positions.at(path), path, message).with_hint(hint.into()));
    }

    fn rules(&mut self, spec: &RulesFile) -> RiskRules {
        let ThresholdsSpec { hold, decline } = spec.thresholds;
        if hold == 0 || hold > MAX_SCORE {
            self.error(
                "thresholds.hold",
                format!("`hold` must be 1 to {MAX_SCORE}, not {hold}"),
                "a score of 0 would hold every transaction",
            );
        }
        if decline <= hold || decline > MAX_SCORE {
            self.error(
                "thresholds.decline",
                format!("`decline` ({decline}) must be above `hold` ({hold}) and at most {MAX_SCORE}"),
                "scores from `hold` up to `decline` hold a transaction; at `decline` and above it is declined",
            );
        }
        let bucket_secs = match spec.velocity_bucket {
            None => DEFAULT_BUCKET_SECS,
            Some(d) => {
                let secs = d.as_secs();
                if d.std().subsec_nanos() != 0 || !(1..=3600).contains(&secs) {
                    self.error(
                        "velocityBucket",
                        format!("`velocityBucket` must be whole seconds from 1s to 1h, not {d}"),
                        "60s suits windows of minutes to a day",
                    );
                }
                secs.max(1)
            }
        };
        let amount = spec
            .amount
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.amount_rule(&format!("amount[{i}]"), r))
            .collect();
        let velocity = spec
            .velocity
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.velocity_rule(&format!("velocity[{i}]"), r, bucket_secs))
            .collect();
        let new_account = spec
            .new_account
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.new_account_rule(&format!("newAccount[{i}]"), r))
            .collect();
        let deny_list = spec
            .deny_list
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.deny_list_rule(&format!("denyList[{i}]"), r))
            .collect();
        RiskRules {
            hold_at: hold,
            decline_at: decline,
            bucket_secs,
            amount,
            velocity,
            new_account,
            deny_list,
        }
    }

    fn name(&mut self, path: &str, name: &str) {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            self.error(
                &format!("{path}.name"),
                format!("rule name `{name}` is not 1-64 lowercase letters, digits and hyphens"),
                "the name is stored in analysis records; e.g. `large-usd`",
            );
        }
        if let Some(first) = self.names.get(name).cloned() {
            self.error(
                &format!("{path}.name"),
                format!("rule name `{name}` is already used at {first}"),
                "give every rule its own name, so that an analysis record says which one fired",
            );
        } else {
            self.names.insert(name.to_owned(), path.to_owned());
        }
    }

    fn score(&mut self, path: &str, score: u32) {
        if score == 0 || score > MAX_SCORE {
            self.error(
                &format!("{path}.score"),
                format!("`score` must be 1 to {MAX_SCORE}, not {score}"),
                "a rule that adds nothing would still be reported as fired; remove it instead",
            );
        }
    }

    fn currency(&mut self, path: &str, code: &str) -> Option<Currency> {
        match Currency::from_code(code) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(
                    path,
                    format!("{e}"),
                    "write an ISO 4217 code such as USD or EUR",
                );
                None
            }
        }
    }

    fn money(
        &mut self,
        path: &str,
        amount: Decimal,
        currency: Currency,
    ) -> Option<rust_decimal::Decimal> {
        match check_amount(amount.0, currency) {
            Ok(a) => Some(a),
            Err(e) => {
                self.error(
                    path,
                    format!("`{amount}` is not an amount of {}: {e}", currency.code()),
                    format!(
                        "a positive amount with at most {} decimal places",
                        currency.minor_units()
                    ),
                );
                None
            }
        }
    }

    /// `maxAmount` with its `currency`: both or neither.
    fn limit(
        &mut self,
        path: &str,
        max_amount: Option<Decimal>,
        currency: Option<&str>,
    ) -> Result<Option<(Currency, rust_decimal::Decimal)>, ()> {
        match (max_amount, currency) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                self.error(
                    &format!("{path}.maxAmount"),
                    "`maxAmount` needs a `currency`",
                    "add e.g. `currency: USD`; transactions in other currencies are not counted by this limit",
                );
                Err(())
            }
            (None, Some(_)) => {
                self.error(
                    &format!("{path}.currency"),
                    "`currency` is only used with `maxAmount`",
                    "add `maxAmount`, or remove `currency`",
                );
                Err(())
            }
            (Some(amount), Some(code)) => {
                let currency = self.currency(&format!("{path}.currency"), code).ok_or(())?;
                let amount = self
                    .money(&format!("{path}.maxAmount"), amount, currency)
                    .ok_or(())?;
                Ok(Some((currency, amount)))
            }
        }
    }

    fn amount_rule(&mut self, path: &str, r: &AmountSpec) -> Option<AmountRule> {
        self.name(path, &r.name);
        self.score(path, r.score);
        let currency = self.currency(&format!("{path}.currency"), &r.currency)?;
        let above = self.money(&format!("{path}.above"), r.above, currency)?;
        Some(AmountRule {
            name: r.name.clone(),
            currency,
            above,
            score: r.score,
        })
    }

    fn velocity_rule(&mut self, path: &str, r: &VelocitySpec, bucket: u64) -> Option<VelocityRule> {
        self.name(path, &r.name);
        self.score(path, r.score);
        let window = r.window.as_secs();
        let whole = r.window.std().subsec_nanos() == 0 && window.is_multiple_of(bucket);
        if !whole || window == 0 || window > MAX_WINDOW_SECS {
            self.error(
                &format!("{path}.window"),
                format!(
                    "`window` {} must be a whole number of velocity buckets ({bucket}s) up to 1d",
                    r.window
                ),
                "e.g. 10m with the default 60s buckets; set `velocityBucket` for finer windows",
            );
            return None;
        }
        if window / bucket > MAX_BUCKETS_PER_WINDOW {
            self.error(
                &format!("{path}.window"),
                format!(
                    "`window` {} spans {} buckets of {bucket}s; at most {MAX_BUCKETS_PER_WINDOW}",
                    r.window,
                    window / bucket
                ),
                "raise `velocityBucket`",
            );
            return None;
        }
        if r.max_count.is_none() && r.max_amount.is_none() {
            self.error(
                path,
                "a velocity rule needs `maxCount`, `maxAmount` or both",
                "e.g. `maxCount: 5` fires on the 6th debit in the window",
            );
            return None;
        }
        if r.max_count == Some(0) {
            self.error(
                &format!("{path}.maxCount"),
                "`maxCount` must be at least 1",
                "0 would fire on every debit; use a deny list or an amount rule for that",
            );
            return None;
        }
        let max_amount = self.limit(path, r.max_amount, r.currency.as_deref()).ok()?;
        Some(VelocityRule {
            name: r.name.clone(),
            window_secs: window,
            max_count: r.max_count,
            max_amount,
            score: r.score,
        })
    }

    fn new_account_rule(&mut self, path: &str, r: &NewAccountSpec) -> Option<NewAccountRule> {
        self.name(path, &r.name);
        self.score(path, r.score);
        if r.first_transactions.is_none() && r.younger_than.is_none() {
            self.error(
                path,
                "a new-account rule needs `firstTransactions`, `youngerThan` or both",
                "e.g. `firstTransactions: 3` covers an account's first three debits",
            );
            return None;
        }
        if r.first_transactions == Some(0) {
            self.error(
                &format!("{path}.firstTransactions"),
                "`firstTransactions` must be at least 1",
                "an account with no debits yet is new while `firstTransactions` is 1 or more",
            );
            return None;
        }
        let max_amount = self.limit(path, r.max_amount, r.currency.as_deref()).ok()?;
        Some(NewAccountRule {
            name: r.name.clone(),
            first_transactions: r.first_transactions,
            younger_than_secs: r.younger_than.map(|d| d.as_secs()),
            max_amount,
            score: r.score,
        })
    }

    fn deny_list_rule(&mut self, path: &str, r: &DenyListSpec) -> Option<DenyListRule> {
        self.name(path, &r.name);
        self.score(path, r.score);
        if r.accounts.is_empty() {
            self.error(
                &format!("{path}.accounts"),
                "a deny list needs at least one account",
                "remove the rule, or list the account numbers",
            );
            return None;
        }
        let mut accounts = Vec::new();
        for (i, text) in r.accounts.iter().enumerate() {
            let at = format!("{path}.accounts[{i}]");
            match AccountNumber::parse(text) {
                Ok(a) if accounts.contains(&a) => {
                    self.error(&at, format!("account {a} is listed twice"), "list it once");
                }
                Ok(a) => accounts.push(a),
                Err(e) => self.error(
                    &at,
                    format!("`{text}` is not an account number: {e}"),
                    "quote account numbers (\"0012345678\") so YAML keeps leading zeros",
                ),
            }
        }
        Some(DenyListRule {
            name: r.name.clone(),
            accounts,
            score: r.score,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
apiVersion: ballast.dev/v1
kind: RiskRules
thresholds: { hold: 50, decline: 100 }
amount:
  - { name: large-usd, currency: USD, above: 10000, score: 60 }
velocity:
  - { name: burst, window: 10m, maxCount: 5, score: 60 }
  - { name: drain, window: 1h, maxAmount: 5000, currency: USD, score: 40 }
newAccount:
  - { name: first-payments, firstTransactions: 3, currency: USD, maxAmount: 500, score: 50 }
denyList:
  - { name: sanctioned, accounts: [\"9999999999\"], score: 100 }
";

    #[test]
    fn a_good_file_is_read_exactly() {
        let rules = parse("rules.yaml", GOOD).unwrap();
        assert_eq!(
            (rules.hold_at, rules.decline_at, rules.bucket_secs),
            (50, 100, 60)
        );
        assert_eq!(
            rules.amount[0].above,
            rust_decimal::Decimal::new(1_000_000, 2)
        );
        assert_eq!(rules.velocity[0].window_secs, 600);
        assert_eq!(rules.velocity[0].max_count, Some(5));
        assert_eq!(rules.velocity[1].max_amount.unwrap().0.code(), "USD");
        assert_eq!(rules.new_account[0].first_transactions, Some(3));
        assert_eq!(rules.deny_list[0].accounts[0].as_str(), "9999999999");
        assert_eq!(rules.retention_secs(), 3600);
    }

    fn errors(text: &str) -> String {
        parse("rules.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn schema_problems_are_positioned() {
        let text = GOOD.replace("maxCount: 5", "maxCont: 5");
        let out = errors(&text);
        assert!(out.starts_with("rules.yaml:7:"), "{out}");
        assert!(out.contains("maxCont"), "{out}");
        let out = errors(&GOOD.replace("above: 10000", "above: lots"));
        assert!(out.starts_with("rules.yaml:5:"), "{out}");
        let out = errors(&GOOD.replace("kind: RiskRules", "kind: Blueprint"));
        assert!(out.starts_with("rules.yaml:2:7"), "{out}");
    }

    #[test]
    fn semantic_problems_name_line_column_and_a_hint() {
        let out = errors(&GOOD.replace("decline: 100", "decline: 40"));
        assert!(out.starts_with("rules.yaml:3:"), "{out}");
        assert!(out.contains("must be above `hold`"), "{out}");
        assert!(out.contains("hint:"), "{out}");

        let out = errors(&GOOD.replace("currency: USD, above", "currency: USX, above"));
        assert!(out.starts_with("rules.yaml:5:"), "{out}");

        let out = errors(&GOOD.replace("above: 10000", "above: 10000.001"));
        assert!(out.contains("decimal places"), "{out}");

        let out = errors(&GOOD.replace("window: 10m", "window: 90s"));
        assert!(out.starts_with("rules.yaml:7:"), "{out}");
        assert!(out.contains("whole number of velocity buckets"), "{out}");

        let out = errors(&GOOD.replace("name: drain", "name: burst"));
        assert!(out.contains("already used at velocity[0]"), "{out}");

        let out = errors(&GOOD.replace(", currency: USD, score: 40", ", score: 40"));
        assert!(out.contains("`maxAmount` needs a `currency`"), "{out}");

        let out = errors(&GOOD.replace("\"9999999999\"", "\"12\""));
        assert!(out.starts_with("rules.yaml:12:"), "{out}");
        assert!(out.contains("not an account number"), "{out}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../../packaging/risk-rules.yaml");
        let rules = parse("packaging/risk-rules.yaml", text).unwrap();
        assert_eq!((rules.hold_at, rules.decline_at), (50, 100));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace("decline: 100", "decline: 10")
            .replace("window: 10m", "window: 2d");
        let d = parse("rules.yaml", &text).unwrap_err();
        assert_eq!(d.items.len(), 2, "{d}");
    }

    #[test]
    fn an_empty_or_foreign_document_is_refused() {
        assert!(parse("r.yaml", "").is_err());
        assert!(parse("r.yaml", "- 1\n- 2\n").is_err());
        assert!(parse("r.yaml", "apiVersion: ballast.dev/v1\nkind: RiskRules\n").is_err());
    }
}
