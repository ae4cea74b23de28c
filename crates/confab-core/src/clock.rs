//! Timestamps are kept as Unix milliseconds everywhere below the faces.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// ISO 8601 / RFC 3339 in UTC with a `Z`, the format ConnectyCube uses for `created_at`.
pub fn to_iso(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_is_utc_with_z() {
        assert_eq!(to_iso(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
