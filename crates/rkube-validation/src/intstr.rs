//! `IntOrString` fields (ports, maxSurge, minAvailable): reading them from JSON, percent values, and the
//! `%#v` text upstream prints for them in errors.

use serde_json::Value;

/// An `intstr.IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrString {
    /// `Type: 0`.
    Int(i64),
    /// `Type: 1`.
    Str(String),
}

impl IntOrString {
    /// Reads a JSON number or string; anything else is not an IntOrString.
    pub fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::Str(s.clone())),
            other => crate::value::as_int(other).map(Self::Int),
        }
    }

    /// Go's `IntValue()`: the int, or the string parsed as an int (0 when it is not one).
    pub fn int_value(&self) -> i64 {
        match self {
            Self::Int(i) => *i,
            Self::Str(s) => s.parse().unwrap_or(0),
        }
    }

    /// The percent value when this is a valid `N%` string.
    pub fn percent(&self) -> Option<i64> {
        match self {
            Self::Str(s) if crate::names::percent(s).is_empty() => s[..s.len() - 1].parse().ok(),
            _ => None,
        }
    }

    /// The percent value, else the int value (upstream's `getIntOrPercentValue`).
    pub fn int_or_percent(&self) -> i64 {
        self.percent().unwrap_or_else(|| self.int_value())
    }

    /// Go's `%#v`, as upstream prints it in field errors.
    pub fn go_debug(&self) -> String {
        match self {
            Self::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
            Self::Str(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}"),
        }
    }

    /// The JSON form.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Int(i) => Value::from(*i),
            Self::Str(s) => Value::String(s.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values() {
        let p = IntOrString::from_value(&json!("25%")).expect("string");
        assert_eq!(p.percent(), Some(25));
        assert_eq!(IntOrString::from_value(&json!(3)).map(|v| v.int_or_percent()), Some(3));
        assert_eq!(IntOrString::Str("abc".into()).int_or_percent(), 0);
        assert_eq!(IntOrString::Str("x".into()).go_debug(), "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}");
    }
}
