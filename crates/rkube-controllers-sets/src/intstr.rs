//! `IntOrString` counts as upstream's `GetScaledValueFromIntOrPercent`: an integer as is, `"N%"` of a
//! total rounded up or down.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The value of `v` against `total`: an int as is, a percentage of `total` rounded up when `round_up`.
/// `None` when the string is not a percentage.
pub(crate) fn scaled(v: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match v {
        IntOrString::Int(i) => Some(*i),
        IntOrString::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            let prod = pct * i64::from(total);
            let v = if round_up { (prod + 99).div_euclid(100) } else { prod.div_euclid(100) };
            i32::try_from(v).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_upstream() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled(&IntOrString::Int(3), 10, true), Some(3));
        assert_eq!(scaled(&pct("25%"), 5, true), Some(2));
        assert_eq!(scaled(&pct("25%"), 5, false), Some(1));
        assert_eq!(scaled(&pct("100%"), 7, false), Some(7));
        assert_eq!(scaled(&pct("0%"), 7, true), Some(0));
        assert_eq!(scaled(&pct("x"), 7, true), None);
    }
}
