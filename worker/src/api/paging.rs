//! The `limit` and `cursor` of the API's listings (reviews, payees, schedules, audit): one
//! range check and one refusal of a cursor the listing did not hand out.

use super::problem::ApiError;

/// A `cursor` this listing did not return (or one the store refuses): 400 naming the field.
pub fn bad_cursor() -> ApiError {
    ApiError::invalid(
        "cursor",
        "invalid_cursor",
        "`cursor` is not a cursor of this listing; hint: pass `next_cursor` unchanged",
    )
}

/// The page size (`limit`, default `default`, at most `max`) and the sort key to continue
/// after: the cursor is the hex of a sort key the listing returned (the store checks its
/// shape).
pub fn key_page(
    limit: Option<i32>,
    cursor: Option<&str>,
    default: i32,
    max: i32,
) -> Result<(i32, Option<String>), ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit_out_of_range",
            format!("`limit` must be 1..={max}"),
        ));
    }
    let after = cursor
        .map(|c| {
            hex::decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad_cursor)
        })
        .transpose()?;
    Ok((limit, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(key_page(None, None, 100, 500).unwrap(), (100, None));
        let cursor = hex::encode("PAYEE#x");
        assert_eq!(
            key_page(Some(2), Some(&cursor), 100, 500).unwrap(),
            (2, Some("PAYEE#x".to_string()))
        );
        for (limit, cursor) in [(Some(0), None), (Some(501), None), (None, Some("zz"))] {
            assert!(
                key_page(limit, cursor, 100, 500).is_err(),
                "{limit:?} {cursor:?}"
            );
        }
    }
}
