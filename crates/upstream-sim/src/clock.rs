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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn dates_are_formatted_like_whatsgate() {
        assert_eq!(super::format_date(datetime!(2022-10-11 19:30:14 UTC)), "2022-10-11 19:30:14");
    }
}
