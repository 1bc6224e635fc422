//! The two ways API Gateway writes a time: ISO 8601 in the management API
//! (`createdDate`) and the common log format in events (`requestContext.time`).

use floe_lambda::time::Utc;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

pub use floe_lambda::time::now_millis as now_ms;

/// `2026-12-03T10:22:29Z`.
pub fn iso8601(ms: u64) -> String {
    let c = Utc::from_millis(ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `03/Dec/2026:10:22:29 +0000`.
pub fn clf_time(ms: u64) -> String {
    let c = Utc::from_millis(ms);
    let month = MONTHS[(c.month - 1) as usize];
    format!("{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000", c.day, c.year, c.hour, c.minute, c.second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso8601(1_796_293_349_999), "2026-12-03T10:22:29Z");
        assert_eq!(clf_time(1_796_293_349_000), "03/Dec/2026:10:22:29 +0000");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(clf_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    }
}
