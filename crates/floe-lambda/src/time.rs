//! Wall-clock formatting for logs and API fields, in UTC: the one calendar
//! conversion floe has (the API's SigV4 dates and the triggers' event times use it).

use std::time::{SystemTime, UNIX_EPOCH};

/// Calendar fields of a Unix time in milliseconds.
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

pub fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Utc {
    pub fn from_millis(ms: u64) -> Utc {
        let secs = (ms / 1000) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's method).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            millis: (ms % 1000) as u32,
        }
    }

    /// `2026-11-23T14:05:09.123Z`, as log lines carry it.
    pub fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `2026-11-23T14:05:09.123+0000`, Lambda's `LastModified`.
    pub fn lambda(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `2026/11/23`, the date part of a log stream name.
    pub fn date_path(&self) -> String {
        format!("{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Utc::from_millis(0).iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Utc::from_millis(951_782_400_000).iso(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Utc::from_millis(1_795_446_309_123).lambda(), "2026-11-23T15:05:09.123+0000");
        assert_eq!(Utc::from_millis(1_795_446_309_123).date_path(), "2026/11/23");
    }
}
