//! Resource quantities as the kubelet reads them (`Value()` and `MilliValue()` of apimachinery's
//! `resource.Quantity`, both rounded up), without the formatting side the API server needs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`, with its sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// More digits than this cannot be held in a u128 mantissa; such quantities are not valid in the API.
const MAX_DIGITS: usize = 36;

fn parse(s: &str) -> Option<Parsed> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let digits = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut exp10 = -i32::try_from(frac.len()).ok()?;
    let mut exp2 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            exp10 += exp.parse::<i32>().ok().filter(|e| e.abs() <= 100)?;
        }
    }
    Some(Parsed { negative, mantissa, exp10, exp2 })
}

/// The quantity in units of `10^-scale` (scale 0: `Value()`, 3: `MilliValue()`), rounded up, saturating at
/// the i64 range.
fn scaled(p: Parsed, scale: i32) -> i64 {
    let Some(m) = p.mantissa.checked_mul(1u128 << p.exp2) else {
        return if p.negative { i64::MIN } else { i64::MAX };
    };
    let exp = p.exp10 + scale;
    let magnitude = if exp >= 0 {
        10u128.checked_pow(exp.unsigned_abs()).and_then(|f| m.checked_mul(f)).unwrap_or(u128::MAX)
    } else {
        match 10u128.checked_pow(exp.unsigned_abs()) {
            Some(d) => m / d + u128::from(m % d != 0),
            None => u128::from(m != 0),
        }
    };
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    if p.negative { -magnitude } else { magnitude }
}

/// `Value()`: whole units rounded up (0 for an unparsable quantity, which the API never stores).
pub(crate) fn value(q: &Quantity) -> i64 {
    parse(&q.0).map_or(0, |p| scaled(p, 0))
}

/// `MilliValue()`: thousandths rounded up (0 for an unparsable quantity).
pub(crate) fn milli_value(q: &Quantity) -> i64 {
    parse(&q.0).map_or(0, |p| scaled(p, 3))
}

/// Whether the quantity is above zero (what `quantity.Cmp(zero) == 1` asks).
pub(crate) fn is_positive(q: &Quantity) -> bool {
    parse(&q.0).is_some_and(|p| !p.negative && p.mantissa != 0)
}

/// `list[name]` in milli units, 0 when absent.
pub(crate) fn milli_of(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> i64 {
    list.and_then(|l| l.get(name)).map_or(0, milli_value)
}

/// `list[name]` in whole units, 0 when absent.
pub(crate) fn value_of(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> i64 {
    list.and_then(|l| l.get(name)).map_or(0, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    #[test]
    fn values_round_up_like_apimachinery() {
        let cases = [
            ("0", 0, 0),
            ("1", 1, 1000),
            ("100m", 1, 100),
            ("1500m", 2, 1500),
            ("0.5", 1, 500),
            ("1.25", 2, 1250),
            ("1Ki", 1024, 1_024_000),
            ("128Mi", 134_217_728, 134_217_728_000),
            ("1G", 1_000_000_000, 1_000_000_000_000),
            ("1e3", 1000, 1_000_000),
            ("2E", 2_000_000_000_000_000_000, i64::MAX),
            ("1n", 1, 1),
            ("-1", -1, -1000),
        ];
        for (s, v, m) in cases {
            assert_eq!(value(&q(s)), v, "value of {s}");
            assert_eq!(milli_value(&q(s)), m, "milli value of {s}");
        }
    }

    #[test]
    fn invalid_quantities_read_as_zero() {
        for s in ["", "abc", "1Qi", "."] {
            assert_eq!(value(&q(s)), 0, "{s}");
            assert!(!is_positive(&q(s)), "{s}");
        }
        assert!(is_positive(&q("1m")));
        assert!(!is_positive(&q("0Mi")));
    }
}
