//! When a failed delivery is tried again: after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (about
//! three days in all), each with up to 20% added at random so that retries of one outage spread out; an endpoint's
//! longer `Retry-After` wins. `WGATE_WEBHOOK_RETRY_SCHEDULE` replaces the list (tests use short ones).

use std::time::Duration;

/// The default delays, in seconds.
pub const DEFAULT_SCHEDULE: [u64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// A `Retry-After` longer than this is not honoured beyond it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(DEFAULT_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect())
    }
}

impl RetrySchedule {
    /// A comma-separated list of delays with units: `5s,5m,30m,2h`, `200ms,1s` (`ms`, `s`, `m`, `h`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut delays = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let split = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
            let (n, unit) = part.split_at(split);
            let n: u64 = n.parse().map_err(|_| format!("{part:?} is not a delay such as 5s, 200ms, 30m or 2h"))?;
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                _ => return Err(format!("{part:?} is not a delay such as 5s, 200ms, 30m or 2h")),
            };
            delays.push(d);
        }
        if delays.len() > 50 {
            return Err("at most 50 retries".into());
        }
        Ok(Self(delays))
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The wait after failed attempt `attempt` (1 = the first), jittered, or `None` when none is left.
    pub fn after(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.0.get(usize::try_from(attempt.checked_sub(1)?).ok()?)?;
        let jitter = base.mul_f64(rand::random::<f64>() * 0.2);
        let wait = base + jitter;
        Some(match retry_after {
            Some(r) if r.min(MAX_RETRY_AFTER) > wait => r.min(MAX_RETRY_AFTER),
            _ => wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days_with_at_most_a_fifth_added() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 10);
        let total: Duration = (1..=9).map(|a| s.after(a, None).unwrap()).sum();
        // 272,105 s (3.15 days) without jitter, at most a fifth more with it.
        assert!(total >= Duration::from_secs(272_105) && total <= Duration::from_secs(326_526), "{total:?}");
        assert_eq!(s.after(10, None), None);
        assert_eq!(s.after(0, None), None);
    }

    #[test]
    fn a_longer_retry_after_wins_and_a_shorter_one_does_not() {
        let s = RetrySchedule::parse("1s,2s").unwrap();
        assert_eq!(s.after(1, Some(Duration::from_secs(30))), Some(Duration::from_secs(30)));
        assert!(s.after(2, Some(Duration::from_millis(1))).unwrap() >= Duration::from_secs(2));
        assert_eq!(s.after(1, Some(Duration::from_secs(1_000_000))), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn schedules_parse_with_units_and_bad_ones_are_named() {
        let s = RetrySchedule::parse("200ms, 1s,2m,1h").unwrap();
        assert_eq!(s.attempts(), 5);
        assert!(RetrySchedule::parse("5 s").unwrap_err().contains("5 s"));
        assert!(RetrySchedule::parse("5d").is_err());
        assert_eq!(RetrySchedule::parse("").unwrap().attempts(), 1, "no retries at all");
    }
}
