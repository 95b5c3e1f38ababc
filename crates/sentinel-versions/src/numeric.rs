//! Helpers shared by the ecosystems: numbers of any length and splitting runs.
//!
//! Version numbers such as snapshot dates or git timestamps can exceed any machine
//! integer, and the reference tools either compare them as strings of digits
//! (dpkg, rpm) or silently wrap around. Comparing digit strings directly is exact
//! for every length and cannot overflow.

use std::cmp::Ordering;

/// Strips leading zeros, so that `"007"` and `"7"` (and `""` and `"0"`) become the same.
pub(crate) fn trim_zeros(digits: &str) -> &str {
    digits.trim_start_matches('0')
}

/// Compares two runs of ASCII digits by numeric value; an empty run counts as zero.
pub(crate) fn cmp_decimal(a: &str, b: &str) -> Ordering {
    let (a, b) = (trim_zeros(a), trim_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Splits `s` after its longest prefix whose characters all satisfy `pred`.
pub(crate) fn split_run(s: &str, pred: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !pred(c)).unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_comparison_ignores_leading_zeros_and_length_limits() {
        assert_eq!(cmp_decimal("10", "9"), Ordering::Greater);
        assert_eq!(cmp_decimal("0010", "10"), Ordering::Equal);
        assert_eq!(cmp_decimal("", "000"), Ordering::Equal);
        assert_eq!(cmp_decimal("", "1"), Ordering::Less);
        let big = "123456789012345678901234567890";
        let bigger = "123456789012345678901234567891";
        assert_eq!(cmp_decimal(big, bigger), Ordering::Less);
        assert_eq!(
            cmp_decimal(bigger, "99999999999999999999"),
            Ordering::Greater
        );
    }

    #[test]
    fn split_run_stops_at_the_first_non_matching_character() {
        assert_eq!(split_run("123abc", |c| c.is_ascii_digit()), ("123", "abc"));
        assert_eq!(split_run("abc", |c| c.is_ascii_digit()), ("", "abc"));
        assert_eq!(split_run("123", |c| c.is_ascii_digit()), ("123", ""));
        assert_eq!(split_run("", |c| c.is_ascii_digit()), ("", ""));
        assert_eq!(split_run("é1", |c| !c.is_ascii_digit()), ("é", "1"));
    }
}
