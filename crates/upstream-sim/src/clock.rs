//! Wall-clock text in WhatsGate's format, `YYYY-MM-DD HH:MM:SS` (UTC).

use std::fmt;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// Unix seconds shown as `YYYY-MM-DD HH:MM:SS` (UTC), serialized without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub i64);

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

pub fn now_text() -> String {
    format_date(OffsetDateTime::now_utc())
}

pub fn format_date(t: OffsetDateTime) -> String {
    Date(t.unix_timestamp()).to_string()
}

pub fn unix_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// An `events-get` `date`: `YYYY-MM-DD` is that whole day (UTC), `YYYY-MM-DD HH:MM:SS` is that moment on.
/// Returns the unix-seconds range `[from, to)`.
pub fn parse_day_or_moment(text: &str) -> Option<(i64, i64)> {
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let separators_ok = |positions: &[(usize, u8)]| positions.iter().all(|(i, c)| text.as_bytes().get(*i) == Some(c));
    if !separators_ok(&[(4, b'-'), (7, b'-')]) {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(number(0..4)?).ok()?, month, u8::try_from(number(8..10)?).ok()?)
            .ok()?;
    let day_start = date.midnight().assume_utc().unix_timestamp();
    match text.len() {
        10 => Some((day_start, day_start + 86_400)),
        19 if separators_ok(&[(10, b' '), (13, b':'), (16, b':')]) => {
            let t = time::Time::from_hms(
                u8::try_from(number(11..13)?).ok()?,
                u8::try_from(number(14..16)?).ok()?,
                u8::try_from(number(17..19)?).ok()?,
            )
            .ok()?;
            Some((date.with_time(t).assume_utc().unix_timestamp(), i64::MAX))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn an_events_date_is_a_day_or_a_moment() {
        let day = datetime!(2022-10-11 00:00:00 UTC).unix_timestamp();
        assert_eq!(super::parse_day_or_moment("2022-10-11"), Some((day, day + 86_400)));
        assert_eq!(super::parse_day_or_moment("2022-10-11 19:30:14"), Some((day + 70_214, i64::MAX)));
        for bad in ["2022-13-01", "2022-10-11T19:30:14", "11.10.2022", "2022-10-11 25:00:00", ""] {
            assert_eq!(super::parse_day_or_moment(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_formatted_like_whatsgate() {
        assert_eq!(super::format_date(datetime!(2022-10-11 19:30:14 UTC)), "2022-10-11 19:30:14");
    }
}
