//! Bill payments: payees, payment schedules and the due-payment runner.
//!
//! A **payee** is a biller (its id at the bank and its account) saved by a principal. A
//! **schedule** pays a payee a fixed amount from one of the principal's accounts on its due
//! dates: once, weekly or monthly, optionally up to a count or an end date. The **runner**
//! ([`runner`]) enqueues each due occurrence as a PAYMENT through the API's ingest path
//! ([`crate::api::ingest::enqueue`]) with the idempotency key `bill:<schedule id>:<date>`, then
//! advances the schedule conditionally on the occurrence it enqueued; docs/bill-payments.md
//! explains why this pays every occurrence exactly once across crashes and concurrent runners.
//!
//! Dates are calendar dates in UTC (`YYYY-MM-DD`): an occurrence is due from 00:00 UTC of its
//! date. Monthly schedules keep the day of the first due date and clamp it to the month's
//! length: a schedule starting on Jan 31 is due Feb 28 (29 in a leap year), Mar 31, Apr 30, …
//! (each occurrence is computed from the first date, so a clamp never drifts).
//!
//! The items and their DynamoDB calls live in [`crate::store::bills`].
#![deny(clippy::arithmetic_side_effects)]

pub mod runner;

use rust_decimal::Decimal;
use time::{Date, Month};
use uuid::Uuid;

use crate::transaction::{AccountNumber, Currency};

/// The idempotency-key prefix reserved for the runner's payments (the API refuses it).
pub const KEY_PREFIX: &str = "bill:";
/// Most occurrences a schedule may declare with `count`.
pub const MAX_COUNT: u32 = 1200;

/// How a schedule repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    /// One payment on the first due date.
    Once,
    /// Every 7 days from the first due date.
    Weekly,
    /// Every month on the first due date's day, clamped to the month's last day.
    Monthly,
}

impl Recurrence {
    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Recurrence::Once => "ONCE",
            Recurrence::Weekly => "WEEKLY",
            Recurrence::Monthly => "MONTHLY",
        }
    }

    /// Parses [`Recurrence::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ONCE" => Some(Recurrence::Once),
            "WEEKLY" => Some(Recurrence::Weekly),
            "MONTHLY" => Some(Recurrence::Monthly),
            _ => None,
        }
    }
}

/// The state of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleStatus {
    /// Occurrences are still due.
    Active,
    /// Cancelled by its owner: no further occurrence is enqueued.
    Cancelled,
    /// Every occurrence (up to `count` or `until`) was handled.
    Completed,
}

impl ScheduleStatus {
    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Active => "ACTIVE",
            ScheduleStatus::Cancelled => "CANCELLED",
            ScheduleStatus::Completed => "COMPLETED",
        }
    }

    /// Parses [`ScheduleStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(ScheduleStatus::Active),
            "CANCELLED" => Some(ScheduleStatus::Cancelled),
            "COMPLETED" => Some(ScheduleStatus::Completed),
            _ => None,
        }
    }
}

/// A saved biller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    /// Server-assigned id.
    pub payee_id: Uuid,
    /// The biller's id (e.g. `UTILITYCO`).
    pub biller_id: String,
    /// The account payments are credited to.
    pub account: AccountNumber,
    /// The principal's name for it.
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// What happened to one occurrence of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Its due date.
    pub date: Date,
    /// The PAYMENT enqueued for it; `None` when the ingest path refused it.
    pub transaction_id: Option<Uuid>,
    /// Why it was refused (the API's problem code), when it was.
    pub refused: Option<String>,
}

/// A payment schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Server-assigned id.
    pub schedule_id: Uuid,
    /// The payee paid.
    pub payee_id: Uuid,
    /// The debited account (the owner's).
    pub source_account: AccountNumber,
    /// The credited account (the payee's, copied when the schedule was created).
    pub target_account: AccountNumber,
    /// Amount of each payment.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// How it repeats.
    pub recurrence: Recurrence,
    /// The first due date (the anchor of every occurrence).
    pub first_due: Date,
    /// At most this many occurrences.
    pub count: Option<u32>,
    /// No occurrence after this date.
    pub until: Option<Date>,
    /// Index of the next occurrence (0 = `first_due`).
    pub next_index: u32,
    /// The next due date; `None` once no occurrence is left.
    pub next_due: Option<Date>,
    /// Its state.
    pub status: ScheduleStatus,
    /// Occurrences handled so far, oldest first.
    pub past: Vec<Occurrence>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl Schedule {
    /// The idempotency key of the occurrence due on `date`.
    pub fn key_for(&self, date: Date) -> String {
        occurrence_key(self.schedule_id, date)
    }

    /// The date of occurrence `n` if the schedule has one (count and end date applied).
    pub fn occurrence(&self, n: u32) -> Option<Date> {
        if self.count.is_some_and(|c| n >= c) {
            return None;
        }
        let date = occurrence(self.first_due, self.recurrence, n)?;
        match self.until {
            Some(until) if date > until => None,
            _ => Some(date),
        }
    }
}

/// `bill:<schedule id>:<YYYY-MM-DD>`.
pub fn occurrence_key(schedule_id: Uuid, date: Date) -> String {
    format!(
        "{KEY_PREFIX}{}:{}",
        schedule_id.hyphenated(),
        format_date(date)
    )
}

/// The `n`-th date (0-based) of a recurrence anchored at `first`; `None` past the calendar.
pub fn occurrence(first: Date, recurrence: Recurrence, n: u32) -> Option<Date> {
    match recurrence {
        Recurrence::Once => (n == 0).then_some(first),
        Recurrence::Weekly => {
            let weeks = i64::from(n);
            first.checked_add(time::Duration::weeks(weeks))
        }
        Recurrence::Monthly => {
            let months = i64::from(u8::from(first.month()))
                .checked_sub(1)?
                .checked_add(i64::from(n))?;
            let year = i64::from(first.year()).checked_add(months.checked_div(12)?)?;
            let year = i32::try_from(year).ok()?;
            let month =
                Month::try_from(u8::try_from(months.checked_rem(12)?.checked_add(1)?).ok()?)
                    .ok()?;
            let day = first.day().min(month.length(year));
            Date::from_calendar_date(year, month, day).ok()
        }
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses exactly `YYYY-MM-DD` (a real calendar date, years 0001-9999).
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i32 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    if year < 1 {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        parse_date(text).unwrap()
    }

    #[test]
    fn monthly_keeps_the_anchor_day_and_clamps_to_the_month() {
        let first = d("2027-01-31");
        let dates: Vec<String> = (0..5)
            .map(|n| format_date(occurrence(first, Recurrence::Monthly, n).unwrap()))
            .collect();
        assert_eq!(
            dates,
            [
                "2027-01-31",
                "2027-02-28",
                "2027-03-31",
                "2027-04-30",
                "2027-05-31"
            ]
        );
        // A leap year, and across a year end.
        assert_eq!(
            occurrence(d("2027-12-31"), Recurrence::Monthly, 2),
            Some(d("2028-02-29"))
        );
        assert_eq!(
            occurrence(d("2026-11-15"), Recurrence::Monthly, 14),
            Some(d("2028-01-15"))
        );
        // Past the calendar: no date, no panic.
        assert_eq!(
            occurrence(d("9999-12-01"), Recurrence::Monthly, u32::MAX),
            None
        );
    }

    #[test]
    fn weekly_and_once() {
        assert_eq!(
            occurrence(d("2026-12-30"), Recurrence::Weekly, 1),
            Some(d("2027-01-06"))
        );
        assert_eq!(
            occurrence(d("2026-12-30"), Recurrence::Once, 0),
            Some(d("2026-12-30"))
        );
        assert_eq!(occurrence(d("2026-12-30"), Recurrence::Once, 1), None);
        assert_eq!(occurrence(d("9999-12-30"), Recurrence::Weekly, 1), None);
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(format_date(d("2026-02-03")), "2026-02-03");
        for bad in [
            "2026-2-03",
            "2026-02-30",
            "0000-01-01",
            "2026/02/03",
            "+2026-02-0",
            "2026-02-03T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_key_is_derived_from_the_schedule_and_the_date() {
        let id = Uuid::parse_str("0190a6f2-7b1c-7def-8abc-0123456789ab").unwrap();
        assert_eq!(
            occurrence_key(id, d("2027-02-28")),
            "bill:0190a6f2-7b1c-7def-8abc-0123456789ab:2027-02-28"
        );
    }
}
