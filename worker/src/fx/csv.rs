//! The CSV form of the rates file (`ballast-worker rates load rates.csv`): the same rates as the
//! YAML form ([`super::file`]), one per row under a header naming the same six fields, in any
//! order:
//!
//! ```csv
//! base,quote,rate,source,valid_from,valid_until
//! USD,EUR,0.9215,"ECB reference rate, 2026-12-04",2026-12-04T00:00:00Z,2026-12-05T00:00:00Z
//! ```
//!
//! RFC 4180 quoting: a field holding a comma or a quote is quoted, an inner quote doubled.
//! Spaces around an unquoted field are ignored; blank lines are skipped; a UTF-8 byte-order mark
//! (spreadsheets write one) is ignored. Every value is read as text and checked exactly as the
//! YAML form's ([`super::file::check_rate_texts`]: the rate an exact decimal, never a float), and
//! every problem is reported at its `file:line:column` with a hint, all at once; nothing is
//! written unless the whole file is valid.
#![deny(clippy::arithmetic_side_effects)]

use ballast_blueprint::diagnostic::closest;
use ballast_blueprint::{Diagnostic, Diagnostics, Position};

use super::file::{
    FIELDS, FileRate, MAX_RATES_PER_FILE, RateTexts, check_overlaps, check_rate_texts,
};

/// One field of a row and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    text: String,
    position: Position,
}

const HEADER_HINT: &str =
    "the first row names the columns: base,quote,rate,source,valid_from,valid_until";

/// Validates rates CSV text; `file` only labels the diagnostics. All problems are reported.
pub fn parse(file: &str, source: &str) -> Result<Vec<FileRate>, Diagnostics> {
    let mut problems = Vec::new();
    let rows = records(source, &mut problems);
    let rates = read_rows(&rows, &mut problems);
    problems.sort_by_key(|d| d.position);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics {
            file: file.to_owned(),
            items: problems,
        });
    }
    Ok(rates)
}

fn read_rows(rows: &[Vec<Field>], problems: &mut Vec<Diagnostic>) -> Vec<FileRate> {
    let Some((header, rows)) = rows.split_first() else {
        problems.push(
            Diagnostic::error(Position::new(1, 1), "", "the rates file is empty")
                .with_hint(HEADER_HINT),
        );
        return Vec::new();
    };
    let Some(columns) = read_header(header, problems) else {
        return Vec::new();
    };
    let header_at = header.first().map_or(Position::new(1, 1), |f| f.position);
    if rows.is_empty() {
        problems.push(
            Diagnostic::error(header_at, "", "the file has a header but no rates")
                .with_hint("a load with nothing to write is probably the wrong file"),
        );
    }
    if rows.len() > MAX_RATES_PER_FILE {
        problems.push(
            Diagnostic::error(
                header_at,
                "",
                format!(
                    "{} rates, at most {MAX_RATES_PER_FILE} are allowed in one file",
                    rows.len()
                ),
            )
            .with_hint("a load is one DynamoDB transaction; split the file and load each part"),
        );
    }
    let rates: Vec<FileRate> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| read_row(i, row, &columns, problems))
        .collect();
    check_overlaps(&rates, problems);
    rates
}

/// The field name of each column, when the header names each of the six exactly once.
fn read_header(header: &[Field], problems: &mut Vec<Diagnostic>) -> Option<Vec<&'static str>> {
    let before = problems.len();
    // A misspelt column is most likely one of those the header does not name.
    let unnamed: Vec<&str> = FIELDS
        .into_iter()
        .filter(|name| !header.iter().any(|f| f.text == *name))
        .collect();
    let mut columns = Vec::with_capacity(header.len());
    for field in header {
        match FIELDS.iter().find(|f| **f == field.text) {
            Some(name) if columns.contains(name) => problems.push(
                Diagnostic::error(
                    field.position,
                    "",
                    format!("column `{name}` is named twice"),
                )
                .with_hint(HEADER_HINT),
            ),
            Some(name) => columns.push(*name),
            None => problems.push(
                Diagnostic::error(
                    field.position,
                    "",
                    format!("unknown column `{}`", field.text),
                )
                .with_hint(match closest(&field.text, unnamed.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => HEADER_HINT.to_owned(),
                }),
            ),
        }
    }
    let at = header.first().map_or(Position::new(1, 1), |f| f.position);
    for name in FIELDS {
        // A misspelt column is reported once, as unknown with its correction.
        let misspelt = header
            .iter()
            .filter(|f| !FIELDS.contains(&f.text.as_str()))
            .any(|f| closest(&f.text, unnamed.iter().copied()) == Some(name));
        if !columns.contains(&name) && !misspelt {
            problems.push(
                Diagnostic::error(at, "", format!("missing column `{name}`"))
                    .with_hint(HEADER_HINT),
            );
        }
    }
    (problems.len() == before).then_some(columns)
}

fn read_row(
    index: usize,
    row: &[Field],
    columns: &[&'static str],
    problems: &mut Vec<Diagnostic>,
) -> Option<FileRate> {
    let path = format!("rates[{index}]");
    let at = row.first().map_or(Position::new(1, 1), |f| f.position);
    if row.len() != columns.len() {
        problems.push(
            Diagnostic::error(
                at,
                &path,
                format!(
                    "the row has {} fields, the header {}",
                    row.len(),
                    columns.len()
                ),
            )
            .with_hint("quote a field that holds a comma, e.g. \"ECB, 2026-12-04\""),
        );
        return None;
    }
    let before = problems.len();
    let mut texts = RateTexts::default();
    for (name, field) in columns.iter().zip(row) {
        let value = Some((field.text.as_str(), field.position));
        match *name {
            "base" => texts.base = value,
            "quote" => texts.quote = value,
            "rate" => texts.rate = value,
            "source" => texts.source = value,
            "valid_from" => texts.valid_from = value,
            _ => texts.valid_until = value,
        }
    }
    check_rate_texts(&path, at, texts, before, problems)
}

/// Splits `source` into rows of positioned fields (RFC 4180), skipping blank lines. A quoting
/// error is reported at its position and ends the row it is in.
fn records(source: &str, problems: &mut Vec<Diagnostic>) -> Vec<Vec<Field>> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut rows = Vec::new();
    let mut chars = source.chars().peekable();
    let (mut line, mut column) = (1_usize, 1_usize);
    // Advances past one character, keeping the position of the next.
    let step = |c: char, line: &mut usize, column: &mut usize| {
        if c == '\n' {
            *line = line.saturating_add(1);
            *column = 1;
        } else {
            *column = column.saturating_add(1);
        }
    };
    let mut row: Vec<Field> = Vec::new();
    let mut broken = false;
    loop {
        // At the start of a field.
        while matches!(chars.peek(), Some(' ' | '\t')) {
            if let Some(c) = chars.next() {
                step(c, &mut line, &mut column);
            }
        }
        let position = Position::new(line, column);
        let mut text = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            step('"', &mut line, &mut column);
            let mut closed = false;
            while let Some(c) = chars.next() {
                step(c, &mut line, &mut column);
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        step('"', &mut line, &mut column);
                        text.push('"');
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    text.push(c);
                }
            }
            if !closed {
                problems.push(
                    Diagnostic::error(position, "", "this quoted field is never closed").with_hint(
                        "end a quoted field with `\"`; write a quote inside it as `\"\"`",
                    ),
                );
                broken = true;
            }
            while matches!(chars.peek(), Some(' ' | '\t')) {
                if let Some(c) = chars.next() {
                    step(c, &mut line, &mut column);
                }
            }
            if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) && !broken {
                problems.push(
                    Diagnostic::error(
                        Position::new(line, column),
                        "",
                        "text after the closing quote of a field",
                    )
                    .with_hint("quote the whole field, and write a quote inside it as `\"\"`"),
                );
                broken = true;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if matches!(c, ',' | '\r' | '\n') {
                    break;
                }
                if c == '"' && !broken {
                    problems.push(
                        Diagnostic::error(
                            Position::new(line, column),
                            "",
                            "a quote inside an unquoted field",
                        )
                        .with_hint("quote the whole field, and write the quote inside as `\"\"`"),
                    );
                    broken = true;
                }
                text.push(c);
                chars.next();
                step(c, &mut line, &mut column);
            }
            text.truncate(text.trim_end_matches([' ', '\t']).len());
        }
        row.push(Field { text, position });
        // After a field: a comma, the end of the row, or the end of the text.
        match chars.next() {
            Some(',') => step(',', &mut line, &mut column),
            next => {
                if next == Some('\r') && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if next.is_some() {
                    step('\n', &mut line, &mut column);
                }
                let blank = row.len() == 1 && row.first().is_some_and(|f| f.text.is_empty());
                if !blank && !broken {
                    rows.push(std::mem::take(&mut row));
                }
                row.clear();
                broken = false;
                if next.is_none() {
                    return rows;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
base,quote,rate,source,valid_from,valid_until
USD,EUR,0.9215,\"ECB reference rate, 2026-12-04\",2026-12-04T00:00:00Z,2026-12-05T00:00:00Z
USD,EUR,0.92200,ECB,2026-12-05T00:00:00Z,2026-12-06T00:00:00Z

EUR,JPY,162.5,\"the \"\"desk\"\" rate\",2026-12-04T00:00:00Z,2026-12-05T00:00:00Z
";

    fn errors(text: &str) -> String {
        parse("rates.csv", text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_reads_exactly_like_the_yaml_form() {
        let rates = parse("rates.csv", GOOD).unwrap();
        assert_eq!(rates.len(), 3);
        assert_eq!(rates[0].rate.source, "ECB reference rate, 2026-12-04");
        // Exact decimals, trailing zeros kept: never a float.
        assert_eq!(rates[1].rate.rate.to_string(), "0.92200");
        assert_eq!(rates[2].rate.source, "the \"desk\" rate");
        assert_eq!(rates[2].position, Position::new(5, 1), "blank line skipped");
        let yaml = super::super::file::parse(
            "rates.yaml",
            "rates:\n  - {base: USD, quote: EUR, rate: \"0.9215\", \
             source: \"ECB reference rate, 2026-12-04\", \
             valid_from: 2026-12-04T00:00:00Z, valid_until: 2026-12-05T00:00:00Z}\n",
        )
        .unwrap();
        assert_eq!(yaml[0].rate, rates[0].rate);
        // Columns in another order, CRLF line ends, a byte-order mark, spaces around fields.
        let shuffled = "\u{feff}quote, base ,rate,valid_from,valid_until,source\r\n\
                        EUR , USD,0.9215,2026-12-04T00:00:00Z,2026-12-05T00:00:00Z,ECB\r\n";
        let rates = parse("rates.csv", shuffled).unwrap();
        assert_eq!(rates[0].rate.pair(), "USD/EUR");
        assert_eq!(rates[0].rate.rate.to_string(), "0.9215");
    }

    #[test]
    fn every_problem_is_positioned_at_its_row_and_column_with_a_hint() {
        let text = GOOD
            .replace("USD,EUR,0.9215,", "USD,EUR,-1,")
            .replace("EUR,JPY,162.5", "EUR,XYZ,1e2")
            .replace("0.92200", "0.92201234567");
        let out = errors(&text);
        assert!(
            out.contains("rates.csv:2:9: error: -1: the rate must be positive (at rates[0].rate)"),
            "{out}"
        );
        assert!(
            out.contains("rates.csv:3:9: error: 0.92201234567: the rate has 11 decimal places"),
            "{out}"
        );
        assert!(
            out.contains("rates.csv:5:5: error: \"XYZ\" is not an ISO 4217"),
            "{out}"
        );
        assert!(
            out.contains("rates.csv:5:9: error: \"1e2\" is not a decimal number"),
            "{out}"
        );
        assert_eq!(out.matches("hint: ").count(), 4, "{out}");
    }

    #[test]
    fn the_header_and_the_shape_of_rows_are_checked() {
        let out = errors(&GOOD.replace("valid_until\n", "valid_to\n"));
        assert!(
            out.contains("1:35: error: unknown column `valid_to`"),
            "{out}"
        );
        assert!(out.contains("did you mean `valid_until`?"), "{out}");
        let out = errors(&GOOD.replace("base,quote,rate,", "base,rate,rate,"));
        assert!(
            out.contains("1:11: error: column `rate` is named twice"),
            "{out}"
        );
        assert!(out.contains("missing column `quote`"), "{out}");
        let out = errors(&GOOD.replace("\"ECB reference rate, 2026-12-04\"", "ECB, 2026-12-04"));
        assert!(
            out.contains("2:1: error: the row has 7 fields, the header 6"),
            "{out}"
        );
        assert!(out.contains("quote a field that holds a comma"), "{out}");
        assert!(errors("").contains("1:1: error: the rates file is empty"));
        assert!(errors("base,quote,rate,source,valid_from,valid_until\n").contains("no rates"));
    }

    #[test]
    fn quoting_mistakes_are_positioned() {
        let out = errors(&GOOD.replace(
            "\"ECB reference rate, 2026-12-04\"",
            "\"ECB reference rate, 2026-12-04\"x",
        ));
        assert!(
            out.contains("2:48: error: text after the closing quote of a field"),
            "{out}"
        );
        let out = errors(&GOOD.replace("0.92200,ECB", "0.92200,E\"CB"));
        assert!(
            out.contains("3:18: error: a quote inside an unquoted field"),
            "{out}"
        );
        let out = errors("base,quote,rate,source,valid_from,valid_until\nUSD,EUR,1,\"open");
        assert!(
            out.contains("2:11: error: this quoted field is never closed"),
            "{out}"
        );
    }

    #[test]
    fn overlaps_and_the_size_limit_are_the_yaml_forms() {
        let out = errors(&GOOD.replace("ECB,2026-12-05T00:00:00Z", "ECB,2026-12-04T12:00:00Z"));
        assert!(
            out.contains("3:1: error: this USD/EUR rate overlaps the one at line 2"),
            "{out}"
        );
        let mut text = String::from("base,quote,rate,source,valid_from,valid_until\n");
        for day in 0..=MAX_RATES_PER_FILE {
            let from = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day as i64);
            let until = from + time::Duration::days(1);
            let fmt = &time::format_description::well_known::Rfc3339;
            text.push_str(&format!(
                "USD,EUR,1,x,{},{}\n",
                from.format(fmt).unwrap(),
                until.format(fmt).unwrap()
            ));
        }
        assert!(errors(&text).contains("51 rates, at most 50"));
    }
}
