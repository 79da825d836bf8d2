//! CronJob schedules as upstream reads them: robfig/cron v3's standard parser (five fields, `@hourly`-style
//! descriptors, `@every <duration>`, an optional `TZ=`/`CRON_TZ=` prefix) and its `Next`, including how it
//! steps over daylight-saving gaps and its "day of month OR day of week unless one is `*`" rule.
//!
//! Written here rather than taken from a crate: `cron` wants a seconds field, `croner` has other
//! day-matching defaults and no `@every`, and upstream's exact `Next` decides which Jobs exist.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// Set in a field's bits when the field was `*` or `?` (robfig's `starBit`): it switches day matching to AND.
const STAR: u64 = 1 << 63;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Calendar fields, evaluated in `tz`.
    Spec(Spec),
    /// `@every <duration>`: a fixed delay (whole seconds, at least one) from the previous time.
    Every(i64),
}

/// The bit sets of a five-field schedule (bit n set: value n matches).
#[derive(Debug, Clone)]
pub struct Spec {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    tz: TimeZone,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)],
};

/// Loads a time zone the way Go's `time.LoadLocation` names them (`""` and `UTC` are UTC).
pub fn load_location(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    if name == "Local" {
        return Ok(TimeZone::system());
    }
    jiff::tz::db().get(name).map_err(|_| format!("unknown time zone {name}"))
}

/// robfig's `ParseStandard`. `local` is the zone used when the spec names none (upstream: the controller
/// process's local zone).
pub fn parse_standard(spec: &str, local: &TimeZone) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut tz = local.clone();
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(space) = spec.find(' ') else {
            return Err(format!("provided bad location {}: missing schedule", &spec[eq + 1..]));
        };
        let name = &spec[eq + 1..space];
        tz = load_location(name).map_err(|e| format!("provided bad location {name}: {e}"))?;
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec, tz);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    Ok(Schedule::Spec(Spec {
        minute: field(fields[0], &MINUTES)?,
        hour: field(fields[1], &HOURS)?,
        dom: field(fields[2], &DOM)?,
        month: field(fields[3], &MONTHS)?,
        dow: field(fields[4], &DOW)?,
        tz,
    }))
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn parse_descriptor(spec: &str, tz: TimeZone) -> Result<Schedule, String> {
    let (minute, hour, dom, month, dow) = match spec {
        "@yearly" | "@annually" => (1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "@monthly" => (1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
        "@weekly" => (1, 1, all(&DOM), all(&MONTHS), 1),
        "@daily" | "@midnight" => (1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => (1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            if let Some(d) = spec.strip_prefix("@every ") {
                let nanos = parse_go_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                let secs = (nanos / 1_000_000_000).max(1);
                return Ok(Schedule::Every(i64::try_from(secs).unwrap_or(i64::MAX)));
            }
            return Err(format!("unrecognized descriptor: {spec}"));
        }
    };
    Ok(Schedule::Spec(Spec { minute, hour, dom, month, dow, tz }))
}

/// Go's `time.ParseDuration` for the non-negative durations `@every` takes, in nanoseconds.
fn parse_go_duration(s: &str) -> Result<u128, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += value * scale;
        rest = tail;
    }
    // Durations beyond Go's int64 range are refused there too.
    if total > 9.2e18 {
        return Err(bad());
    }
    Ok(total as u128)
}

fn field(expr: &str, b: &Bounds) -> Result<u64, String> {
    let mut out = 0;
    for part in expr.split(',') {
        out |= range(part, b)?;
    }
    Ok(out)
}

fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr
        .parse()
        .map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {expr}: value out of range"))
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    match b.names.iter().find(|(n, _)| *n == lower) {
        Some((_, v)) => Ok(*v),
        None => must_parse_int(expr),
    }
}

/// robfig's `getRange`: `*`, `a`, `a-b`, each optionally `/step` (`a/step` means `a-max/step`).
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, STAR)
    } else {
        let start = int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    (min..=max).step_by(step as usize).fold(0, |acc, i| acc | (1u64 << i))
}

fn has(set: u64, v: i64) -> bool {
    (0..63).contains(&v) && set & (1u64 << v) != 0
}

impl Schedule {
    /// The first activation strictly after `t` (robfig's `Next`); `None` when the fields never match in
    /// the next five years (e.g. `0 0 30 2 *`), where robfig returns the zero time.
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Every(secs) => {
                let whole = Timestamp::from_second(t.as_second()).ok()?;
                whole.checked_add(SignedDuration::from_secs(*secs)).ok()
            }
            Schedule::Spec(s) => s.next(t),
        }
    }
}

impl Spec {
    fn day_matches(&self, t: &Zoned) -> bool {
        let dom = has(self.dom, i64::from(t.day()));
        let dow = has(self.dow, i64::from(t.weekday().to_sunday_zero_offset()));
        if self.dom & STAR != 0 || self.dow & STAR != 0 { dom && dow } else { dom || dow }
    }

    fn at(&self, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Option<Zoned> {
        DateTime::new(y, mo, d, h, mi, 0, 0).ok()?.to_zoned(self.tz.clone()).ok()
    }

    fn plus(&self, t: &Zoned, d: SignedDuration) -> Option<Zoned> {
        Some(t.timestamp().checked_add(d).ok()?.to_zoned(self.tz.clone()))
    }

    fn next(&self, t: Timestamp) -> Option<Timestamp> {
        // Start at the upcoming whole second.
        let mut t = Timestamp::from_second(t.as_second().checked_add(1)?).ok()?.to_zoned(self.tz.clone());
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !has(self.month, i64::from(t.month())) {
                if !added {
                    added = true;
                    t = self.at(t.year(), t.month(), 1, 0, 0)?;
                }
                let dt = t.datetime().checked_add(jiff::Span::new().months(1)).ok()?;
                t = dt.to_zoned(self.tz.clone()).ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = self.at(t.year(), t.month(), t.day(), 0, 0)?;
                }
                let dt = t.datetime().checked_add(jiff::Span::new().days(1)).ok()?;
                t = dt.to_zoned(self.tz.clone()).ok()?;
                // Midnight may not exist (DST); robfig pulls the time back to it.
                let h = i64::from(t.hour());
                if h != 0 {
                    let shift = if h > 12 { 24 - h } else { -h };
                    t = self.plus(&t, SignedDuration::from_hours(shift))?;
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(self.hour, i64::from(t.hour())) {
                if !added {
                    added = true;
                    t = self.at(t.year(), t.month(), t.day(), t.hour(), 0)?;
                }
                t = self.plus(&t, SignedDuration::from_hours(1))?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(self.minute, i64::from(t.minute())) {
                if !added {
                    added = true;
                    t = truncate(&t, 60, &self.tz)?;
                }
                t = self.plus(&t, SignedDuration::from_mins(1))?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // The seconds field of a standard spec is always 0.
            while t.second() != 0 {
                if !added {
                    added = true;
                    t = truncate(&t, 1, &self.tz)?;
                }
                t = self.plus(&t, SignedDuration::from_secs(1))?;
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t.timestamp());
        }
    }
}

/// Go's `Time.Truncate` (on absolute time) to a whole number of `secs`.
fn truncate(t: &Zoned, secs: i64, tz: &TimeZone) -> Option<Zoned> {
    let s = t.timestamp().as_second();
    Some(Timestamp::from_second(s - s.rem_euclid(secs)).ok()?.to_zoned(tz.clone()))
}

/// Go's RFC 3339 rendering of `t` in `tz` (`Z` for a zero offset), as upstream writes the
/// `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation.
pub fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    let base = z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let off = z.offset().seconds();
    if off == 0 {
        return format!("{base}Z");
    }
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    format!("{base}{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next(spec: &str, after: &str) -> Option<String> {
        let s = parse_standard(spec, &TimeZone::UTC).expect("parses");
        s.next(ts(after)).map(|t| t.to_string())
    }

    #[test]
    fn five_field_schedules() {
        assert_eq!(next("*/1 * * * *", "2024-01-01T10:05:29Z").as_deref(), Some("2024-01-01T10:06:00Z"));
        assert_eq!(next("* * * * *", "2024-01-01T10:05:00Z").as_deref(), Some("2024-01-01T10:06:00Z"));
        assert_eq!(next("5 * * * *", "2024-01-01T10:05:29Z").as_deref(), Some("2024-01-01T11:05:00Z"));
        assert_eq!(next("*/15 9-17 * * mon-fri", "2024-01-05T17:50:00Z").as_deref(), Some("2024-01-08T09:00:00Z"));
        assert_eq!(next("0 0 29 2 *", "2024-03-01T00:00:00Z").as_deref(), Some("2028-02-29T00:00:00Z"));
        assert_eq!(next("30 6-16/4 * * 1-5", "2024-01-01T07:00:00Z").as_deref(), Some("2024-01-01T10:30:00Z"));
        // Day of month OR day of week when neither is `*`; AND when one is.
        assert_eq!(next("0 0 13 * 5", "2024-01-01T00:00:00Z").as_deref(), Some("2024-01-05T00:00:00Z"));
        assert_eq!(next("0 0 */2 * 5", "2024-01-01T00:00:00Z").as_deref(), Some("2024-01-03T00:00:00Z"));
        // `*/1` keeps the star (only steps above 1 clear it), so it still means AND.
        assert_eq!(next("0 0 */1 * 5", "2024-01-01T00:00:00Z").as_deref(), Some("2024-01-05T00:00:00Z"));
        assert_eq!(next("0 0 * * 5", "2024-01-01T00:00:00Z").as_deref(), Some("2024-01-05T00:00:00Z"));
        assert_eq!(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
    }

    #[test]
    fn descriptors_and_every() {
        assert_eq!(next("@hourly", "2024-01-01T10:05:00Z").as_deref(), Some("2024-01-01T11:00:00Z"));
        assert_eq!(next("@daily", "2024-01-01T10:05:00Z").as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(next("@weekly", "2024-01-01T10:05:00Z").as_deref(), Some("2024-01-07T00:00:00Z"));
        assert_eq!(next("@monthly", "2024-01-01T10:05:00Z").as_deref(), Some("2024-02-01T00:00:00Z"));
        assert_eq!(next("@yearly", "2024-01-01T10:05:00Z").as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(next("@every 1h30m", "2024-01-01T10:05:07.5Z").as_deref(), Some("2024-01-01T11:35:07Z"));
        assert_eq!(next("@every 200ms", "2024-01-01T10:05:07Z").as_deref(), Some("2024-01-01T10:05:08Z"));
    }

    #[test]
    fn time_zones_and_dst() {
        // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
        let tz = load_location("America/New_York").expect("zone");
        let s = parse_standard("0 9 * * *", &tz).expect("parses");
        assert_eq!(s.next(ts("2024-01-10T15:00:00Z")).map(|t| t.to_string()).as_deref(), Some("2024-01-11T14:00:00Z"));
        assert_eq!(s.next(ts("2024-07-10T15:00:00Z")).map(|t| t.to_string()).as_deref(), Some("2024-07-11T13:00:00Z"));
        // A TZ= prefix overrides the default zone.
        let s = parse_standard("TZ=Asia/Tokyo 0 9 * * *", &TimeZone::UTC).expect("parses");
        assert_eq!(s.next(ts("2024-01-10T01:00:00Z")).map(|t| t.to_string()).as_deref(), Some("2024-01-11T00:00:00Z"));
        // 02:30 does not exist on the spring-forward day in New York: robfig skips that day.
        let s = parse_standard("30 2 * * *", &tz).expect("parses");
        assert_eq!(s.next(ts("2024-03-10T05:00:00Z")).map(|t| t.to_string()).as_deref(), Some("2024-03-11T06:30:00Z"));
        assert_eq!(rfc3339_in(ts("2024-01-11T14:00:00Z"), &tz), "2024-01-11T09:00:00-05:00");
        assert_eq!(rfc3339_in(ts("2024-01-11T14:00:00Z"), &TimeZone::UTC), "2024-01-11T14:00:00Z");
        assert!(load_location("Mars/Olympus").is_err());
    }

    #[test]
    fn parse_errors_read_like_robfig() {
        let err = |s: &str| parse_standard(s, &TimeZone::UTC).err().unwrap_or_default();
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
        assert_eq!(err("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(err("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(err("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
        assert_eq!(err("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert!(err("TZ=Nowhere/Land * * * * *").starts_with("provided bad location Nowhere/Land"));
    }

    #[test]
    fn validation_error_texts_are_robfigs() {
        for ok in ["*/5 * * * *", "0 0 * * mon-fri", "@hourly", "@every 1h30m", "15 2 1 jan,jul *", "0 0 ? * *"] {
            assert_eq!(parse_standard(ok, &TimeZone::UTC).map(|_| ()), Ok(()), "{ok}");
        }
        assert_eq!(
            parse_standard("* * * *", &TimeZone::UTC).map(|_| ()),
            Err("expected exactly 5 fields, found 4: [* * * *]".to_owned())
        );
        assert_eq!(
            parse_standard("60 * * * *", &TimeZone::UTC).map(|_| ()),
            Err("end of range (60) above maximum (59): 60".to_owned())
        );
        assert_eq!(
            parse_standard("@often", &TimeZone::UTC).map(|_| ()),
            Err("unrecognized descriptor: @often".to_owned())
        );
        assert_eq!(
            parse_standard("x * * * *", &TimeZone::UTC).map(|_| ()),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".to_owned())
        );
        assert_eq!(
            parse_standard("5-1 * * * *", &TimeZone::UTC).map(|_| ()),
            Err("beginning of range (5) beyond end of range (1): 5-1".to_owned())
        );
    }
}
