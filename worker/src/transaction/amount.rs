//! Exact decimal parsing: JSON number text (or a decimal string) to [`Decimal`] without ever
//! going through binary floating point.
//!
//! Money arithmetic: every operation that could overflow is checked (the module denies
//! `clippy::arithmetic_side_effects`).
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;

/// Largest number of integer digits accepted in a transaction amount (`< 10^18`).
pub const MAX_AMOUNT_INTEGER_DIGITS: u32 = 18;

/// Largest scale a [`Decimal`] can carry.
const MAX_SCALE: i64 = 28;

/// Why a text is not an exact decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `-?digits(.digits)?([eE][+-]?digits)?`.
    #[error("not a decimal number")]
    Syntax,
    /// Too large to represent exactly.
    #[error("too large to represent exactly")]
    OutOfRange,
    /// Has more significant fractional digits than can be represented exactly.
    #[error("too many significant fractional digits to represent exactly")]
    NotExact,
}

/// How strictly [`parse_decimal`] reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grammar {
    /// JSON number grammar: no leading `+`, no superfluous leading zeros, digits on both sides
    /// of a decimal point.
    Json,
    /// Numbers as DynamoDB (and moto) render them: additionally a leading `+` and leading zeros.
    Lenient,
}

/// Parses `text` exactly. The scale of the result is the number of decimal places as written,
/// after applying any exponent (`"1.50e1"` → `15.0`, `"1e2"` → `100`, `"1e-2"` → `0.01`).
/// Returns the value and whether a minus sign was present (so that `-0` can be told apart).
pub(crate) fn parse_decimal(text: &str, grammar: Grammar) -> Result<(Decimal, bool), DecimalError> {
    let (negative, rest) = if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if grammar == Grammar::Lenient
        && let Some(rest) = text.strip_prefix('+')
    {
        (false, rest)
    } else {
        (false, text)
    };
    let (int_digits, rest) = split_digits(rest);
    if int_digits.is_empty() {
        return Err(DecimalError::Syntax);
    }
    if grammar == Grammar::Json && int_digits.len() > 1 && int_digits.starts_with('0') {
        return Err(DecimalError::Syntax);
    }
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_point) => {
            let (frac_digits, rest) = split_digits(after_point);
            if frac_digits.is_empty() {
                return Err(DecimalError::Syntax);
            }
            (frac_digits, rest)
        }
        None => ("", rest),
    };
    let mut exponent: i64 = 0;
    let rest = match rest.strip_prefix(['e', 'E']) {
        Some(after_e) => {
            let (exp_negative, after_sign) = match after_e.strip_prefix('-') {
                Some(after_sign) => (true, after_sign),
                None => (false, after_e.strip_prefix('+').unwrap_or(after_e)),
            };
            let (exp_digits, rest) = split_digits(after_sign);
            if exp_digits.is_empty() {
                return Err(DecimalError::Syntax);
            }
            // Anything beyond a few digits is out of range either way (or zero, handled below).
            let trimmed = exp_digits.trim_start_matches('0');
            let magnitude: i64 = if trimmed.len() > 6 {
                1_000_000
            } else {
                trimmed.parse::<i64>().unwrap_or(0)
            };
            // `magnitude` is at most 1_000_000: negating it cannot overflow.
            exponent = if exp_negative {
                magnitude.saturating_neg()
            } else {
                magnitude
            };
            rest
        }
        None => rest,
    };
    if !rest.is_empty() {
        return Err(DecimalError::Syntax);
    }

    let frac_len = i64::try_from(frac_digits.len()).map_err(|_| DecimalError::OutOfRange)?;
    let mut scale = frac_len
        .checked_sub(exponent)
        .ok_or(DecimalError::OutOfRange)?;
    let mut digits: String = int_digits
        .chars()
        .chain(frac_digits.chars())
        .skip_while(|c| *c == '0')
        .collect();
    if digits.is_empty() {
        // Zero: keep the written scale where representable.
        let scale = u32::try_from(scale.clamp(0, MAX_SCALE)).unwrap_or(0);
        return Ok((Decimal::new(0, scale), negative));
    }
    if scale < 0 {
        // Positive exponent beyond the written fraction: append zeros.
        let zeros = usize::try_from(scale.unsigned_abs()).map_err(|_| DecimalError::OutOfRange)?;
        if zeros > 40 {
            return Err(DecimalError::OutOfRange);
        }
        digits.extend(std::iter::repeat_n('0', zeros));
        scale = 0;
    }
    // Trailing zeros may be dropped to bring the scale within what Decimal can carry.
    while scale > MAX_SCALE && digits.ends_with('0') {
        digits.pop();
        // `scale > MAX_SCALE > 0`: one less cannot overflow.
        scale = scale.saturating_sub(1);
    }
    if scale > MAX_SCALE {
        return Err(DecimalError::NotExact);
    }
    if digits.len() > 38 {
        return Err(DecimalError::OutOfRange);
    }
    let mantissa: i128 = digits.parse().map_err(|_| DecimalError::OutOfRange)?;
    let mantissa = if negative {
        mantissa.checked_neg().ok_or(DecimalError::OutOfRange)?
    } else {
        mantissa
    };
    let scale = u32::try_from(scale).map_err(|_| DecimalError::OutOfRange)?;
    let value =
        Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| DecimalError::OutOfRange)?;
    Ok((value, negative))
}

/// Splits `text` after its leading ASCII digits: `("123", ".5")` for `"123.5"`.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    // ASCII digits are one byte each, so `end` is a character boundary.
    text.split_at_checked(end).unwrap_or((text, ""))
}

/// Parses a number as DynamoDB returns it (attribute type `N`).
pub(crate) fn parse_dynamo_number(text: &str) -> Result<Decimal, DecimalError> {
    parse_decimal(text, Grammar::Lenient).map(|(d, _)| d)
}

/// Number of integer digits of `d` (0 for values below 1).
pub(crate) fn integer_digits(d: Decimal) -> u32 {
    // `ilog10` is at most 28 for a Decimal mantissa, so adding one cannot overflow.
    d.trunc()
        .abs()
        .mantissa()
        .checked_ilog10()
        .map_or(0, |log| log.saturating_add(1))
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests: the checks apply to the parser, the tests compute expected values"
)]
mod tests {
    use super::*;

    fn json(s: &str) -> Result<Decimal, DecimalError> {
        parse_decimal(s, Grammar::Json).map(|(d, _)| d)
    }

    #[test]
    fn plain_decimals_keep_their_scale() {
        assert_eq!(json("1000.00").unwrap().to_string(), "1000.00");
        assert_eq!(json("0.10").unwrap().scale(), 2);
        assert_eq!(json("7").unwrap().to_string(), "7");
    }

    #[test]
    fn exponents_are_applied_exactly() {
        assert_eq!(json("1e2").unwrap().to_string(), "100");
        assert_eq!(json("1E+2").unwrap().to_string(), "100");
        assert_eq!(json("1.50e1").unwrap().to_string(), "15.0");
        assert_eq!(json("1e-2").unwrap().to_string(), "0.01");
        assert_eq!(json("12345e-2").unwrap().to_string(), "123.45");
        assert_eq!(json("0e999999999").unwrap(), Decimal::ZERO);
        assert_eq!(json("1e-40"), Err(DecimalError::NotExact));
        assert_eq!(json("1e400"), Err(DecimalError::OutOfRange));
        assert_eq!(
            json("1e99999999999999999999"),
            Err(DecimalError::OutOfRange)
        );
        // Trailing zeros can absorb an extreme negative exponent.
        assert_eq!(json("1000000000000000e-40"), Ok(Decimal::new(1, 25)));
    }

    #[test]
    fn syntax_is_json_strict() {
        for bad in [
            "",
            "-",
            "+1",
            "01",
            ".5",
            "5.",
            "1e",
            "1e+",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "1,5",
            " 1",
            "1 ",
            "0x10",
            "1_000",
            "١",
        ] {
            assert_eq!(json(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn lenient_grammar_reads_dynamo_numbers() {
        assert_eq!(
            parse_dynamo_number("+0012.50").unwrap().to_string(),
            "12.50"
        );
        assert_eq!(parse_dynamo_number("-3").unwrap().to_string(), "-3");
        assert_eq!(parse_dynamo_number("1E+3").unwrap().to_string(), "1000");
    }

    #[test]
    fn sums_are_exact() {
        let a = json("0.1").unwrap();
        let b = json("0.2").unwrap();
        assert_eq!(a + b, json("0.3").unwrap());
        // Many small amounts add up exactly.
        let cent = json("0.01").unwrap();
        let total: Decimal = (0..10_000).map(|_| cent).sum();
        assert_eq!(total, Decimal::from(100));
    }

    #[test]
    fn round_trips_random_decimals() {
        // Deterministic pseudo-random property test: text -> Decimal -> text is the identity.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let int = state % 1_000_000_000_000;
            let scale = (state >> 40) % 5;
            let frac = (state >> 20) % 10u64.pow(scale as u32);
            let text = if scale == 0 {
                int.to_string()
            } else {
                format!("{int}.{frac:0width$}", width = scale as usize)
            };
            let d = json(&text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(Decimal::from_str_exact(&text).unwrap(), d);
        }
    }

    #[test]
    fn huge_values() {
        assert!(json("79228162514264337593543950335").is_ok());
        assert_eq!(
            json("79228162514264337593543950336"),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(json(&"9".repeat(60)), Err(DecimalError::OutOfRange));
        assert_eq!(integer_digits(json("123456.78").unwrap()), 6);
        assert_eq!(integer_digits(json("0.5").unwrap()), 0);
    }
}
