//! The Go types with their own JSON form, written as upstream writes them: times, durations, quantities,
//! int-or-string, embedded JSON; and read back for encoding.

/// Seconds since the epoch as RFC 3339 in UTC, optionally with exactly `micros` fractional digits
/// (Go's `time.RFC3339` and `metav1.RFC3339Micro` layouts). `None` outside years 0..=9999, which
/// Go's `Time.MarshalJSON` refuses too.
pub(crate) fn format_rfc3339(secs: i64, micros: Option<u32>) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let frac = micros.map(|us| format!(".{us:06}")).unwrap_or_default();
    Some(format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z"))
}

/// Go's `time.Unix(sec, nsec)` normalisation: nanoseconds outside 0..1e9 carry into seconds.
pub(crate) fn normalize(secs: i64, nanos: i64) -> (i64, u32) {
    let secs = secs.saturating_add(nanos.div_euclid(1_000_000_000));
    (secs, nanos.rem_euclid(1_000_000_000) as u32)
}

/// Parses RFC 3339 (`2024-05-01T10:00:00Z`, `...00.123456+02:00`) into (seconds, nanoseconds) since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let nine: String = digits.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = nine.parse().ok()?;
    }
    // Bytes, not str slices: a stray multi-byte character must be a parse error, not a panic.
    let offset = match s.get(i..)?.as_bytes() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let mins = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' { -mins } else { mins }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset * 60;
    Some((secs, nanos))
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1.5s`, `100ms`, `1µs`, `0s`.
pub(crate) fn format_go_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let body = if u == 0 {
        return "0s".to_string();
    } else if u < 1_000_000_000 {
        // Under a second Go switches to the largest unit that keeps an integer part.
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_frac(u, prec);
        format!("{int}{frac}{unit}")
    } else {
        let (secs, frac) = split_frac(u, 9);
        let (mins, hours) = (secs / 60, secs / 3600);
        match (hours, mins) {
            (0, 0) => format!("{secs}{frac}s"),
            (0, _) => format!("{mins}m{}{frac}s", secs % 60),
            _ => format!("{hours}h{}m{}{frac}s", mins % 60, secs % 60),
        }
    };
    if neg { format!("-{body}") } else { body }
}

/// Parses what [`format_go_duration`] writes (and Go's `time.ParseDuration` reads) into nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut any = false;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * scale;
        any = true;
    }
    if !any || total > i64::MAX as f64 {
        return None;
    }
    let n = total.round() as i64;
    Some(if neg { -n } else { n })
}

/// (v / 10^prec, ".fraction" without trailing zeros, or "" when it is zero).
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let f = v % p;
    if f == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{f:0width$}", width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_go_writes_it() {
        assert_eq!(format_rfc3339(0, None).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(format_rfc3339(1_714_557_600, None).as_deref(), Some("2024-05-01T10:00:00Z"));
        assert_eq!(format_rfc3339(951_782_400, None).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(format_rfc3339(-1, None).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(format_rfc3339(1_714_557_600, Some(5)).as_deref(), Some("2024-05-01T10:00:00.000005Z"));
        assert_eq!(format_rfc3339(253_402_300_800, None), None, "year 10000");
        assert_eq!(format_rfc3339(-62_167_219_201, None), None, "year -1");
        assert_eq!(format_rfc3339(-62_167_219_200, None).as_deref(), Some("0000-01-01T00:00:00Z"));
    }

    #[test]
    fn rfc3339_parses_back() {
        for secs in [0, 1_714_557_600, 951_782_400, -1, 253_402_300_799] {
            let s = format_rfc3339(secs, None).unwrap_or_default();
            assert_eq!(parse_rfc3339(&s), Some((secs, 0)), "{s}");
        }
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00.5+02:00"), Some((1_714_557_600, 500_000_000)));
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00.123456Z"), Some((1_714_557_600, 123_456_000)));
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 10:00:00Z",
            "2024-13-01T10:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn nanos_normalise_like_go() {
        assert_eq!(normalize(10, 1_500_000_000), (11, 500_000_000));
        assert_eq!(normalize(10, -1), (9, 999_999_999));
    }

    #[test]
    fn durations_as_go_writes_them() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_go_duration(nanos), want);
            if nanos != i64::MIN {
                assert_eq!(parse_go_duration(want), Some(nanos), "{want}");
            }
        }
        assert_eq!(parse_go_duration("1h0m0s"), Some(3_600_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("bogus"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
