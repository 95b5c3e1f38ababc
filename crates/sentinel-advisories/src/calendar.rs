//! Gregorian calendar arithmetic shared by OSV timestamps and KEV dates.
//!
//! Both formats are read without a date-time dependency: the arithmetic needed
//! is validating a day of the month and counting days since 1970-01-01.

/// Whether `year` has a 29th of February.
pub(crate) fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days in `month` (1–12) of `year`, 0 for an invalid month.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given (valid) date in the proleptic Gregorian
/// calendar, negative before it (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Reads exactly `count` ASCII digits at `start` as a number.
pub(crate) fn read_digits(bytes: &[u8], start: usize, count: usize) -> Option<u32> {
    let digits = bytes.get(start..start.checked_add(count)?)?;
    digits.iter().try_fold(0u32, |value, &byte| {
        if !byte.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u32::from(byte - b'0'))
    })
}

/// Reads `YYYY-MM-DD` at the start of `bytes`, checking that the day exists.
pub(crate) fn read_date(bytes: &[u8]) -> Option<(i64, u32, u32)> {
    let year = i64::from(read_digits(bytes, 0, 4)?);
    let month = read_digits(bytes, 5, 2)?;
    let day = read_digits(bytes, 8, 2)?;
    let separators_ok = bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-');
    (separators_ok && day >= 1 && day <= days_in_month(year, month)).then_some((year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(2023));
        assert!(!is_leap_year(1900));
        assert!(is_leap_year(2000));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    #[test]
    fn days_are_counted_from_the_unix_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 2), 1);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(read_date(b"2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(read_date(b"2023-02-29"), None);
        assert_eq!(read_date(b"2023-00-10"), None);
        assert_eq!(read_date(b"2023-01-00"), None);
        assert_eq!(read_date(b"2023/01/10"), None);
        assert_eq!(read_date(b"2023-1-10"), None);
        assert_eq!(read_date(b"202"), None);
    }
}
