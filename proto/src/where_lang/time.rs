//! Timestamps of the `where` language: `2026-11-30`,
//! `2026-11-30T12:00:00Z`, `2026-11-30T12:00:00.5+02:00` (UTC when no
//! offset is given), as microseconds since the Unix epoch.

/// Microseconds since the Unix epoch of `text`, or the rule it breaks.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let bad =
        || format!("expected a timestamp such as '2026-11-30' or '2026-11-30T12:00:00Z', found {text:?}");
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(bad());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    let mut micros = days_from_civil(year, month, day) * 86_400_000_000;
    if bytes.len() == 10 {
        return Ok(micros);
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes.len() < 19 || bytes[13] != b':' || bytes[16] != b':'
    {
        return Err(bad());
    }
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    micros += ((hour * 60 + minute) * 60 + second) * 1_000_000;
    let mut rest = text.get(19..).ok_or_else(bad)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits: String = fraction.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(bad());
        }
        let padded: String = digits.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros += padded.parse::<i64>().map_err(|_| bad())?;
        rest = &fraction[digits.len()..];
    }
    match rest {
        "" | "Z" | "z" => Ok(micros),
        offset
            if offset.len() == 6
                && (offset.starts_with('+') || offset.starts_with('-'))
                && offset.get(3..4) == Some(":") =>
        {
            let hours = number(text.len() - 5..text.len() - 3)?;
            let minutes = number(text.len() - 2..text.len())?;
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let shift = (hours * 60 + minutes) * 60_000_000;
            Ok(if offset.starts_with('+') {
                micros - shift
            } else {
                micros + shift
            })
        }
        _ => Err(bad()),
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_timestamp("1970-01-01"), Ok(0));
        assert_eq!(parse_timestamp("2000-03-01"), Ok(951_868_800_000_000));
        assert_eq!(parse_timestamp("2026-11-30T12:00:00Z"), Ok(1_796_040_000_000_000));
        assert_eq!(
            parse_timestamp("2026-11-30T14:00:00+02:00"),
            Ok(1_796_040_000_000_000)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.25Z"), Ok(250_000));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-11-30T25:00:00Z",
            "yesterday",
            "2026-11-30T12:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }
}
