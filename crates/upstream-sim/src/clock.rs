//! Wall-clock text in WhatsGate's format, `YYYY-MM-DD HH:MM:SS` (UTC).

use time::OffsetDateTime;

pub fn now_text() -> String {
    format_date(OffsetDateTime::now_utc())
}

pub fn format_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
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
