//! String `format`s CRDs validate (upstream's supported subset of go-openapi strfmt); others are ignored, as upstream strips them.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

use crate::node::Node;

/// The formats Kubernetes 1.33 validates in CRD schemas, with go-openapi's name normalisation (dashes removed).
const SUPPORTED: [&str; 24] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

fn normalise(format: &str) -> String {
    format.replace('-', "")
}

/// The format that takes part in validation after upstream's stripping: integer keeps int32/int64, number
/// keeps float/double, strings (and int-or-string) keep the supported string formats, anything else is dropped.
pub(crate) fn effective(node: &Node) -> &str {
    let f = node.format.as_str();
    if f.is_empty() {
        return f;
    }
    let types = node.types();
    let single = if types.len() == 1 { types[0] } else { "" };
    let keep = match single {
        "" | "string" => is_string_format(f),
        "integer" => f == "int32" || f == "int64",
        "number" => f == "float" || f == "double",
        _ => false,
    };
    if keep { f } else { "" }
}

/// Whether a string format has a checker (numeric formats do not: they constrain numbers).
pub(crate) fn is_string_format(format: &str) -> bool {
    SUPPORTED.contains(&normalise(format).as_str())
}

/// Compiles one of this module's constant patterns (each is exercised by the tests below).
fn rx(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("constant format pattern compiles")
}

static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    rx(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
});
static UUID: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID4: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static UUID5: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static TIME: LazyLock<Regex> =
    LazyLock::new(|| rx(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"));
static HEXCOLOR: LazyLock<Regex> = LazyLock::new(|| rx(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGBCOLOR: LazyLock<Regex> = LazyLock::new(|| {
    let c = r"(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])";
    rx(&format!(r"^rgb\(\s*{c}\s*,\s*{c}\s*,\s*{c}\s*\)$"))
});
static SSN: LazyLock<Regex> = LazyLock::new(|| rx(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));
static GO_DURATION: LazyLock<Regex> = LazyLock::new(|| rx(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$"));
static SCALA_DURATION: LazyLock<Regex> = LazyLock::new(|| rx(r"(\d+)\s*([A-Za-zµ]+)"));

/// Whether `s` is valid in `format` (which must satisfy [`is_string_format`]).
pub(crate) fn is_valid(format: &str, s: &str) -> bool {
    match normalise(format).as_str() {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => HOSTNAME.is_match(s) && s.len() <= 255 && s.split('.').all(|l| l.len() <= 63),
        "ipv4" => s.parse::<IpAddr>().is_ok() && s.contains('.'),
        "ipv6" => s.parse::<IpAddr>().is_ok() && s.contains(':'),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => UUID.is_match(s),
        "uuid3" => UUID3.is_match(s),
        "uuid4" => UUID4.is_match(s),
        "uuid5" => UUID5.is_match(s),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_credit_card(s),
        "ssn" => SSN.is_match(s),
        "hexcolor" => HEXCOLOR.is_match(s),
        "rgbcolor" => RGBCOLOR.is_match(s),
        "byte" => is_base64(s),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        // password, and anything unknown, accepts every string.
        _ => true,
    }
}

/// `2006-01-02`, with days checked against the month as Go's time.Parse does.
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit()))?.parse::<u32>().ok();
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else { return false };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// strfmt's IsDateTime: a date, a `t` (any case), and a time with a zone (`z` or `±hh:mm`).
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let Some(c) = TIME.captures(parts[1]) else { return false };
    let field = |i: usize| c.get(i).map_or("", |m| m.as_str());
    field(1) <= "23" && field(2) <= "59" && field(3) <= "59"
}

/// Go's time.ParseDuration syntax, or strfmt's Scala-like `3 days`, `2h 30min`.
fn is_duration(s: &str) -> bool {
    if matches!(s, "0" | "+0" | "-0") || GO_DURATION.is_match(s) {
        return true;
    }
    const UNITS: [&[&str]; 8] = [
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    SCALA_DURATION.captures_iter(s).any(|c| {
        let unit = c.get(2).map_or(String::new(), |m| m.as_str().trim().to_lowercase());
        UNITS.iter().any(|variants| {
            let last = variants.len() - 1;
            variants.iter().enumerate().any(|(i, v)| (i == last && unit.starts_with(v)) || unit.eq_ignore_ascii_case(v))
        })
    })
}

fn is_base64(s: &str) -> bool {
    if !s.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else { return false };
    let Ok(ip) = addr.parse::<IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) && len.parse::<u32>().is_ok_and(|l| l <= max)
}

/// Go's net.ParseMAC: 6, 8 or 20 octets as `aa:bb:..`, `aa-bb-..` or `aabb.ccdd...`.
fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let octets_ok = |n: usize| n == 6 || n == 8 || n == 20;
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return octets_ok(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() > 1 && octets_ok(parts.len() * 2) && parts.iter().all(|p| hex(p, 4))
}

/// Go's url.ParseRequestURI, approximately: an absolute URI (`scheme:...`) or an absolute path, no spaces.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut cs = scheme.chars();
            cs.next().is_some_and(|c| c.is_ascii_alphabetic())
                && cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Go's net/mail.ParseAddress, approximately: `local@domain`, optionally as `Name <local@domain>`.
fn is_email(s: &str) -> bool {
    let addr = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(i), Some(inner)) => &inner[i + 1..],
        _ => s.trim(),
    };
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr.chars().any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ','))
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

fn digits_only(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '-' | ' ')).collect()
}

fn is_isbn10(s: &str) -> bool {
    let d = digits_only(s);
    let b = d.as_bytes();
    if b.len() != 10 || !b[..9].iter().all(u8::is_ascii_digit) || !(b[9].is_ascii_digit() || b[9] == b'X') {
        return false;
    }
    let sum: u32 =
        b.iter().enumerate().map(|(i, c)| (i as u32 + 1) * if *c == b'X' { 10 } else { u32::from(c - b'0') }).sum();
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d = digits_only(s);
    let b = d.as_bytes();
    if b.len() != 13 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..12].iter().enumerate().map(|(i, c)| u32::from(c - b'0') * if i % 2 == 0 { 1 } else { 3 }).sum();
    (10 - sum % 10) % 10 == u32::from(b[12] - b'0')
}

/// govalidator's IsCreditCard: 13-19 digits (separators ignored) passing the Luhn check.
fn is_credit_card(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&d.len()) || s.chars().any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-')) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| if i % 2 == 1 { if x * 2 > 9 { x * 2 - 9 } else { x * 2 } } else { x })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_follows_strfmt() {
        assert!(is_valid("date-time", "2024-02-29T10:00:00Z"));
        assert!(is_valid("date-time", "2024-02-29T10:00:00.123+02:00"));
        assert!(!is_valid("date-time", "2023-02-29T10:00:00Z"));
        assert!(!is_valid("date-time", "2024-01-01T24:00:00Z"));
        assert!(!is_valid("date-time", "2024-01-01T10:00:00"));
        assert!(!is_valid("date-time", "yesterday"));
        assert!(is_valid("date", "2000-02-29"));
        assert!(!is_valid("date", "2000-2-29"));
    }

    #[test]
    fn common_string_formats() {
        assert!(is_valid("uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
        assert!(!is_valid("uuid", "nope"));
        assert!(is_valid("ipv4", "10.0.0.1") && !is_valid("ipv4", "::1") && is_valid("ipv6", "::1"));
        assert!(is_valid("cidr", "10.0.0.0/8") && !is_valid("cidr", "10.0.0.0/33"));
        assert!(is_valid("mac", "00:1b:63:84:45:e6") && !is_valid("mac", "00:1b:63"));
        assert!(is_valid("byte", "aGVsbG8=") && !is_valid("byte", "aGVsbG8"));
        assert!(is_valid("hostname", "example.com") && !is_valid("hostname", "-bad-.com"));
        assert!(is_valid("duration", "1h30m") && is_valid("duration", "3 days") && !is_valid("duration", "soon"));
        assert!(is_valid("hexcolor", "#ffaa00") && is_valid("rgbcolor", "rgb(1, 2, 255)"));
        assert!(is_valid("isbn", "0321751043") && is_valid("isbn13", "978-0321751041"));
        assert!(is_valid("creditcard", "4111 1111 1111 1111") && !is_valid("creditcard", "4111 1111 1111 1112"));
        assert!(is_valid("email", "a@b.io") && !is_valid("email", "a b@c"));
        assert!(is_valid("uri", "https://x/y") && !is_valid("uri", "x/y"));
        assert!(is_valid("password", "anything"));
    }
}
