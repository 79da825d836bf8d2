//! Resource quantities in upstream's canonical form (`1024Mi` prints as `1Gi`, `0.5` as `500m`).

use serde_json::Value;

/// How a quantity was written, which decides how it is written back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, ... suffixes.
    BinarySi,
    /// `m`, `k`, `M`, ... suffixes, or none.
    DecimalSi,
    /// `e3`-style exponents.
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^exp10 × 1024^pow1024`.
struct Quantity {
    mantissa: i128,
    exp10: i32,
    pow1024: u32,
    format: Format,
}

/// The canonical text of a quantity field (a string like `"1024Mi"`, or a bare JSON number); `"0"` when the
/// field is missing, as Go prints a zero Quantity. Text that does not parse is shown as it is.
pub(crate) fn canonical(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => return "0".to_owned(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return other.to_string(),
    };
    parse(&text).and_then(|q| format(&q)).unwrap_or(text)
}

/// Splits `<number><suffix>` and reads both.
fn parse(s: &str) -> Option<Quantity> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (num, suffix) = rest.split_at(num_len);
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    if neg {
        mantissa = -mantissa;
    }
    let frac_digits = i32::try_from(frac.len()).ok()?;
    let (format, exp10, pow1024) = match suffix {
        "" => (Format::DecimalSi, 0, 0),
        "n" => (Format::DecimalSi, -9, 0),
        "u" => (Format::DecimalSi, -6, 0),
        "m" => (Format::DecimalSi, -3, 0),
        "k" => (Format::DecimalSi, 3, 0),
        "M" => (Format::DecimalSi, 6, 0),
        "G" => (Format::DecimalSi, 9, 0),
        "T" => (Format::DecimalSi, 12, 0),
        "P" => (Format::DecimalSi, 15, 0),
        "E" => (Format::DecimalSi, 18, 0),
        "Ki" => (Format::BinarySi, 0, 1),
        "Mi" => (Format::BinarySi, 0, 2),
        "Gi" => (Format::BinarySi, 0, 3),
        "Ti" => (Format::BinarySi, 0, 4),
        "Pi" => (Format::BinarySi, 0, 5),
        "Ei" => (Format::BinarySi, 0, 6),
        e if e.starts_with(['e', 'E']) => (Format::DecimalExponent, e[1..].parse::<i32>().ok()?, 0),
        _ => return None,
    };
    Some(Quantity { mantissa, exp10: exp10 - frac_digits, pow1024, format })
}

/// Writes a quantity in canonical form; `None` when the numbers overflow (the caller keeps the input).
fn format(q: &Quantity) -> Option<String> {
    let mut m = q.mantissa.checked_mul(1024i128.checked_pow(q.pow1024)?)?;
    let mut e = q.exp10;
    if m == 0 {
        return Some("0".to_owned());
    }
    // Upstream keeps at most nano precision, rounding anything finer away from zero.
    while e < -9 {
        let rem = m % 10;
        m = m / 10
            + if rem > 0 {
                1
            } else if rem < 0 {
                -1
            } else {
                0
            };
        e += 1;
    }
    if q.format == Format::BinarySi
        && let Some(s) = binary(m, e)
    {
        return Some(s);
    }
    // Strip trailing zeros, then step the exponent down to a multiple of three.
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    match e.rem_euclid(3) {
        1 => {
            m = m.checked_mul(10)?;
            e -= 1;
        }
        2 => {
            m = m.checked_mul(100)?;
            e -= 2;
        }
        _ => {}
    }
    let suffix = if q.format == Format::DecimalExponent {
        if e == 0 { String::new() } else { format!("e{e}") }
    } else {
        match e {
            -9 => "n".to_owned(),
            -6 => "u".to_owned(),
            -3 => "m".to_owned(),
            0 => String::new(),
            3 => "k".to_owned(),
            6 => "M".to_owned(),
            9 => "G".to_owned(),
            12 => "T".to_owned(),
            15 => "P".to_owned(),
            18 => "E".to_owned(),
            other => format!("e{other}"),
        }
    };
    Some(format!("{m}{suffix}"))
}

/// A binary quantity as a whole number of the largest power of 1024 dividing it; `None` below 1024 or when
/// not a whole number, which upstream writes in decimal instead.
fn binary(m: i128, e: i32) -> Option<String> {
    let mut v = if e >= 0 {
        m.checked_mul(10i128.checked_pow(e.unsigned_abs())?)?
    } else {
        let d = 10i128.checked_pow(e.unsigned_abs())?;
        if m % d != 0 {
            return None;
        }
        m / d
    };
    if v.abs() < 1024 {
        return None;
    }
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut i = 0;
    while i < SUFFIXES.len() - 1 && v % 1024 == 0 {
        v /= 1024;
        i += 1;
    }
    Some(format!("{v}{}", SUFFIXES[i]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn c(s: &str) -> String {
        canonical(Some(&json!(s)))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("1Gi"), "1Gi");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1536Mi"), "1536Mi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("512"), "512");
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("1000000"), "1M");
        assert_eq!(c("10"), "10");
        assert_eq!(c("50"), "50");
        assert_eq!(c("10000"), "10k");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0"), "0");
        assert_eq!(c("0Gi"), "0");
        assert_eq!(c("500Ki"), "500Ki");
        assert_eq!(c("100Gi"), "100Gi");
        assert_eq!(c("-1Gi"), "-1Gi");
        assert_eq!(c("weird"), "weird");
        assert_eq!(canonical(None), "0");
        assert_eq!(canonical(Some(&json!(4))), "4");
    }
}
