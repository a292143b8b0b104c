//! Timestamps: seconds and nanoseconds since the Unix epoch, written as
//! RFC 3339 (`2026-11-25T01:20:17Z`) in manifests and as two integers on the
//! wire.

use core::fmt;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A point in time, UTC, with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    secs: i64,
    nanos: u32,
}

/// A timestamp string that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected RFC 3339 such as 2026-01-02T15:04:05Z")]
pub struct TimeError {
    input: alloc::string::String,
}

const NANOS_PER_SEC: u32 = 1_000_000_000;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range RFC 3339 can write.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

impl Time {
    /// The epoch itself.
    pub const UNIX_EPOCH: Time = Time { secs: 0, nanos: 0 };

    /// A time from seconds and nanoseconds since the epoch. Nanoseconds past
    /// one second carry into the seconds.
    pub const fn from_unix(secs: i64, nanos: u32) -> Time {
        Time {
            secs: secs + (nanos / NANOS_PER_SEC) as i64,
            nanos: nanos % NANOS_PER_SEC,
        }
    }

    /// A time from milliseconds since the epoch.
    pub const fn from_unix_millis(millis: i64) -> Time {
        Time {
            secs: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) as u32) * 1_000_000,
        }
    }

    /// Whole seconds since the epoch.
    pub const fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// The nanoseconds past [`Time::unix_secs`].
    pub const fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since the epoch.
    pub const fn unix_millis(&self) -> i64 {
        self.secs * 1000 + (self.nanos / 1_000_000) as i64
    }

    /// This time plus whole seconds (saturating).
    pub const fn add_secs(&self, secs: i64) -> Time {
        Time {
            secs: self.secs.saturating_add(secs),
            nanos: self.nanos,
        }
    }

    /// Whole seconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn secs_since(&self, earlier: &Time) -> i64 {
        let mut d = self.secs - earlier.secs;
        if self.nanos < earlier.nanos {
            d -= 1;
        }
        d
    }

    /// Parse an RFC 3339 timestamp with `Z` or a `±hh:mm` offset.
    pub fn parse_rfc3339(input: &str) -> Result<Time, TimeError> {
        parse_rfc3339(input.as_bytes()).ok_or_else(|| TimeError {
            input: input.into(),
        })
    }

    #[cfg(feature = "std")]
    /// The current wall-clock time.
    pub fn now() -> Time {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time::from_unix(d.as_secs() as i64, d.subsec_nanos())
    }
}

fn parse_rfc3339(b: &[u8]) -> Option<Time> {
    fn num(b: &[u8]) -> Option<i64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, min, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (i, d) in rest[1..=digits].iter().enumerate() {
            if i < 9 {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = num(&[*h1, *h2])?;
            let m = num(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(Time { secs, nanos })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-calendar arithmetic, shifted so that years start in March).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl fmt::Display for Time {
    /// RFC 3339 in UTC; fractional seconds only when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs.clamp(MIN_SECS, MAX_SECS);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let mut frac = self.nanos;
            let mut width = 9;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            write!(f, ".{frac:0width$}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.secs, self.nanos).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        if d.is_human_readable() {
            let s = alloc::string::String::deserialize(d)?;
            Time::parse_rfc3339(&s).map_err(de::Error::custom)
        } else {
            let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
            if nanos >= NANOS_PER_SEC {
                return Err(de::Error::custom("timestamp nanoseconds out of range"));
            }
            Ok(Time { secs, nanos })
        }
    }
}

#[cfg(any(test, feature = "arbitrary"))]
impl<'a> arbitrary::Arbitrary<'a> for Time {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Time {
            secs: u.int_in_range(MIN_SECS..=MAX_SECS)?,
            nanos: u.int_in_range(0..=NANOS_PER_SEC - 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn formats_and_parses_known_instants() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, 0, "2023-11-14T22:13:20Z"),
            (951_782_400, 0, "2000-02-29T00:00:00Z"),
            (-1, 500_000_000, "1969-12-31T23:59:59.5Z"),
            (1_764_033_617, 123_456_789, "2025-11-25T01:20:17.123456789Z"),
        ];
        for (secs, nanos, text) in cases {
            let t = Time::from_unix(secs, nanos);
            assert_eq!(t.to_string(), text);
            assert_eq!(Time::parse_rfc3339(text).unwrap(), t, "{text}");
        }
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let t = Time::parse_rfc3339("2023-11-15T00:13:20+02:00").unwrap();
        assert_eq!(t.unix_secs(), 1_700_000_000);
        for bad in [
            "",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20+2:00",
            "２023-11-14T22:13:20Z",
        ] {
            assert!(Time::parse_rfc3339(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn serde_is_text_in_json_and_integers_in_postcard() {
        let t = Time::from_unix(1_700_000_000, 0);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2023-11-14T22:13:20Z\""
        );
        let bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Time>(&bytes).unwrap(), t);
    }

    proptest::proptest! {
        #[test]
        fn text_round_trip(secs in MIN_SECS..=MAX_SECS, nanos in 0u32..NANOS_PER_SEC) {
            let t = Time::from_unix(secs, nanos);
            proptest::prop_assert_eq!(Time::parse_rfc3339(&t.to_string()).unwrap(), t);
        }
    }
}
