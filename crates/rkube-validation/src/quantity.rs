//! `resource.Quantity`: parsing with upstream's grammar and errors (`100m`, `1.5Gi`, `1e3`, `+5`), exact
//! comparison, rounding up to milli units (as ResourceList defaulting does) and the canonical text the API server
//! writes back (`1024Mi` → `1Gi`, `0.5` → `500m`, `1000` → `1k`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// How a quantity's suffix was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `k`, `M`, `m`, `n`, ... or no suffix.
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, ...
    BinarySI,
    /// `e3`, `E6`.
    DecimalExponent,
}

/// Why a string is not a quantity, worded as upstream's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// The text does not have a number-then-suffix shape.
    Format,
    /// The number part does not parse.
    Numeric,
    /// The suffix is not one upstream knows.
    Suffix,
    /// The value needs more than 38 significant digits (upstream would keep it; rkube refuses it).
    TooLarge,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Format => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            Self::Numeric => "unable to parse quantity's numeric value",
            Self::Suffix => "unable to parse quantity's suffix",
            Self::TooLarge => "quantity has more significant digits than supported",
        })
    }
}

impl std::error::Error for QuantityError {}

/// A parsed quantity: `(-1)^neg × mant × 10^exp`, kept normalized (no trailing zeros in `mant`; zero has `exp` 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    neg: bool,
    mant: u128,
    exp: i32,
    format: Format,
}

/// 2^63 - 1: the largest binary-suffixed quantity upstream keeps.
const MAX_ALLOWED: u128 = i64::MAX as u128;

fn pow10(k: u32) -> Option<u128> {
    10u128.checked_pow(k)
}

/// Divides by 10^k rounding away from zero (the magnitude is rounded up), as `inf.RoundUp` does.
fn div_round_up(m: u128, k: u32) -> u128 {
    match pow10(k) {
        Some(d) => m / d + u128::from(!m.is_multiple_of(d)),
        None => u128::from(m != 0),
    }
}

fn decimal_suffix(exp: i32) -> Option<&'static str> {
    Some(match exp {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    })
}

impl Quantity {
    fn zero(format: Format) -> Self {
        Quantity { neg: false, mant: 0, exp: 0, format }
    }

    fn normalized(mut self) -> Self {
        if self.mant == 0 {
            self.exp = 0;
            self.neg = false;
            return self;
        }
        while self.mant.is_multiple_of(10) {
            self.mant /= 10;
            self.exp += 1;
        }
        self
    }

    /// Parses a quantity string with upstream's grammar.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        if s == "0" {
            return Ok(Quantity::zero(Format::DecimalSI));
        }
        let (positive, num, denom, suffix) = split(s)?;
        let (base, exponent, mut format) = interpret(suffix).ok_or(QuantityError::Suffix)?;

        // Keep 30 fractional digits: beyond that only the round-up to nano units can notice them.
        let frac = denom.trim_end_matches('0');
        let (frac, sticky) =
            if frac.len() > 30 { (&frac[..30], frac[30..].bytes().any(|c| c != b'0')) } else { (frac, false) };
        let digits = format!("{num}{frac}");
        let digits = digits.trim_start_matches('0');
        let mut mant: u128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| QuantityError::TooLarge)? };
        let mut exp: i32 = -(frac.len() as i32);
        if base == 10 {
            exp = exp.saturating_add(exponent);
        } else {
            let factor = 1u128.checked_shl(exponent as u32).ok_or(QuantityError::TooLarge)?;
            mant = mant.checked_mul(factor).ok_or(QuantityError::TooLarge)?;
        }
        // Round up (away from zero) to nano units, as ParseQuantity does.
        if (mant != 0 || sticky) && exp < -9 {
            let k = (-9 - exp) as u32;
            mant = if sticky && mant.is_multiple_of(pow10(k).unwrap_or(u128::MAX)) {
                div_round_up(mant, k) + 1
            } else {
                div_round_up(mant, k)
            };
            exp = -9;
        }
        let mut q = Quantity { neg: !positive, mant, exp, format }.normalized();
        if format == Format::BinarySI && q.cmp_magnitude_int(MAX_ALLOWED) == Ordering::Greater {
            q.mant = MAX_ALLOWED;
            q.exp = 0;
            q = q.normalized();
        }
        // A binary quantity below 1 cannot be written with a binary suffix.
        if format == Format::BinarySI && q.mant != 0 && q.cmp_magnitude_int(1) == Ordering::Less {
            format = Format::DecimalSI;
            q.format = format;
        }
        Ok(q)
    }

    /// Parses a JSON quantity: a string, or a number (YAML `cpu: 1` arrives as a number).
    pub fn from_value(v: &Value) -> Result<Quantity, QuantityError> {
        match v {
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::Format),
        }
    }

    /// The suffix format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.neg && self.mant != 0
    }

    /// Compares the magnitude with an integer.
    fn cmp_magnitude_int(&self, n: u128) -> Ordering {
        cmp_magnitude(self.mant, self.exp, n, 0)
    }

    /// Rounds up (away from zero) to `10^scale` units: `round_up(-3)` is what ResourceList defaulting does.
    pub fn round_up(&mut self, scale: i32) {
        if self.mant != 0 && self.exp < scale {
            self.mant = div_round_up(self.mant, (scale - self.exp) as u32);
            self.exp = scale;
            *self = self.clone().normalized();
        }
    }

    /// The value in milli units rounded up, as `MilliValue()` (None when it does not fit an i128).
    pub fn milli_value(&self) -> Option<i128> {
        let e = self.exp + 3;
        let m = if e >= 0 { self.mant.checked_mul(pow10(e as u32)?)? } else { div_round_up(self.mant, (-e) as u32) };
        let m = i128::try_from(m).ok()?;
        Some(if self.neg { -m } else { m })
    }

    /// Whether the value is a whole number (upstream's integer-resource check: `MilliValue() % 1000 == 0`).
    pub fn is_integer(&self) -> bool {
        self.milli_value().is_none_or(|m| m % 1000 == 0)
    }

    /// An approximate float value (for ratios in messages).
    pub fn as_f64(&self) -> f64 {
        let v = self.mant as f64 * 10f64.powi(self.exp);
        if self.neg { -v } else { v }
    }

    /// The canonical text upstream writes (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.mant == 0 {
            return "0".to_owned();
        }
        let sign = if self.neg { "-" } else { "" };
        if self.format == Format::BinarySI
            && self.cmp_magnitude_int(1024) != Ordering::Less
            && self.exp >= 0
            && let Some(mut n) = pow10(self.exp as u32).and_then(|p| self.mant.checked_mul(p))
        {
            let mut e = 0;
            while n % 1024 == 0 && e < 6 {
                n /= 1024;
                e += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
            return format!("{sign}{n}{suffix}");
        }
        let mut digits = self.mant.to_string();
        let mut exp = self.exp;
        while exp % 3 != 0 {
            digits.push('0');
            exp -= 1;
        }
        match self.format {
            Format::DecimalExponent => {
                if exp == 0 {
                    format!("{sign}{digits}")
                } else {
                    format!("{sign}{digits}e{exp}")
                }
            }
            _ => {
                // Beyond exa there is no suffix; upstream prints a wrong bare number there, rkube keeps the value.
                while exp > 18 {
                    digits.push('0');
                    exp -= 1;
                }
                format!("{sign}{digits}{}", decimal_suffix(exp).unwrap_or_default())
            }
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let sa = if self.mant == 0 {
            0
        } else if self.neg {
            -1
        } else {
            1
        };
        let sb = if other.mant == 0 {
            0
        } else if other.neg {
            -1
        } else {
            1
        };
        if sa != sb {
            return sa.cmp(&sb);
        }
        let m = cmp_magnitude(self.mant, self.exp, other.mant, other.exp);
        if sa < 0 { m.reverse() } else { m }
    }
}

/// Compares `a × 10^ea` with `b × 10^eb` exactly, through their digit strings.
fn cmp_magnitude(a: u128, ea: i32, b: u128, eb: i32) -> Ordering {
    match (a == 0, b == 0) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let (da, db) = (a.to_string(), b.to_string());
    let (ma, mb) = (da.len() as i64 + i64::from(ea), db.len() as i64 + i64::from(eb));
    if ma != mb {
        return ma.cmp(&mb);
    }
    let width = da.len().max(db.len());
    format!("{da:0<width$}").cmp(&format!("{db:0<width$}"))
}

/// Upstream's `parseQuantityString`: sign, integer digits, fraction digits, suffix.
fn split(s: &str) -> Result<(bool, &str, &str, &str), QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b[0] {
        b'-' => {
            positive = false;
            pos += 1;
        }
        b'+' => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, "0", "", ""));
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    if pos >= end {
        return Ok((positive, num, "", ""));
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let ds = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[ds..pos];
        if pos >= end {
            return Ok((positive, num, denom, ""));
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, num, denom, &s[suffix_start..]));
    }
    if matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end { Ok((positive, num, denom, &s[suffix_start..])) } else { Err(QuantityError::Format) }
}

/// Upstream's suffixer: (base, exponent, format) of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ if suffix.len() > 1 && (suffix.starts_with('e') || suffix.starts_with('E')) => {
            let e: i64 = suffix[1..].parse().ok()?;
            Some((10, e.clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Parses and canonicalizes a quantity JSON value in place, rounding up to milli units when `milli` is set
/// (ResourceList defaulting); values that do not parse are left for validation to report.
pub(crate) fn canonicalize_value(v: &mut Value, milli: bool) {
    if let Ok(mut q) = Quantity::from_value(v) {
        if milli {
            q.round_up(-3);
        }
        *v = Value::String(q.canonical());
    }
}

/// Canonicalizes every value of a ResourceList object (map of resource name to quantity).
pub(crate) fn canonicalize_list(list: Option<&mut Value>) {
    if let Some(m) = list.and_then(Value::as_object_mut) {
        for v in m.values_mut() {
            canonicalize_value(v, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        Quantity::parse(s).map(|q| q.canonical()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("100m", "100m"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1Gi", "1Gi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("12e6", "12e6"),
            ("1E", "1E"),
            ("0.5Ki", "512"),
            ("-1", "-1"),
            ("+5", "5"),
            ("0Mi", "0"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("100Mi", "100Mi"),
            ("2000000", "2M"),
            ("1.", "1"),
            ("-", "0"),
        ] {
            assert_eq!(c(input), want, "{input}");
        }
    }

    #[test]
    fn errors_match_upstream() {
        assert_eq!(Quantity::parse(""), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("abc"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1.5.5"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1Qi"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1Ki5"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1e"), Err(QuantityError::Suffix));
        assert!(QuantityError::Format.to_string().starts_with("quantities must match the regular expression"));
    }

    #[test]
    fn comparison_and_rounding() {
        let q = |s| Quantity::parse(s).expect("quantity");
        assert!(q("1Gi") == q("1024Mi"));
        assert_eq!(q("1Gi").cmp(&q("1073741824")), Ordering::Equal);
        assert!(q("500m") < q("1"));
        assert!(q("-1") < q("0"));
        assert!(q("1k") > q("999"));
        assert!(q("2") > q("1.999999999"));
        let mut r = q("0.5m");
        r.round_up(-3);
        assert_eq!(r.canonical(), "1m");
        assert!(q("2").is_integer());
        assert!(!q("1.5").is_integer());
        assert_eq!(Quantity::from_value(&serde_json::json!(0.5)).map(|q| q.canonical()), Ok("500m".to_owned()));
    }
}
