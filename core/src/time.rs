//! Time as a value. Core never reads a clock; callers pass `now` in.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is in the future
    /// (clock skew between hosts must not make a fresh heartbeat look stale).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    /// The UTC calendar date, `YYYY-MM-DD` (Howard Hinnant's `civil_from_days`).
    pub fn utc_date(self) -> String {
        let z = (self.0 / 86_400_000) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{year:04}-{month:02}-{day:02}")
    }

    /// RFC 3339 in UTC with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn rfc3339(self) -> String {
        let ms_of_day = self.0 % 86_400_000;
        let (h, m, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
        format!("{}T{h:02}:{m:02}:{s:02}.{ms:03}Z", self.utc_date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_on_skew() {
        assert_eq!(Timestamp(1_000).since(Timestamp(5_000)), Duration::ZERO);
        assert_eq!(Timestamp(5_000).since(Timestamp(1_000)), Duration::from_secs(4));
        assert_eq!(Timestamp(1).plus(Duration::from_secs(1)), Timestamp(1_001));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(Timestamp(0).utc_date(), "1970-01-01");
        assert_eq!(Timestamp(951_782_400_000).utc_date(), "2000-02-29");
        assert_eq!(Timestamp(1_796_215_994_581).utc_date(), "2026-12-02");
        assert_eq!(Timestamp(1_796_169_599_999).utc_date(), "2026-12-01", "the last millisecond of a day");
        assert_eq!(Timestamp(1_796_169_599_999).rfc3339(), "2026-12-01T23:59:59.999Z");
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00.000Z");
    }
}
