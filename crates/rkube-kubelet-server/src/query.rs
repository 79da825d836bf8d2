//! Query parameters of the agent's endpoints (repeated keys kept, as `command=sh&command=-c` needs), with
//! Go's boolean spellings (the API server may forward `true` or `1`).

/// A request's decoded query string.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        Query(url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// A boolean parameter (Go's `strconv.ParseBool` spellings); absent or empty is `false`.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, String> {
        match self.get(key).unwrap_or_default() {
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            other => Err(format!("invalid value {other:?} for {key}: not a boolean")),
        }
    }

    /// A non-negative integer parameter.
    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| format!("invalid value {v:?} for {key}: not a non-negative integer"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_flags() {
        let q = Query::parse(Some("command=sh&command=-c&command=echo%20%24HOSTNAME&stdin=1&tty=true&stderr=false"));
        assert_eq!(q.all("command"), ["sh", "-c", "echo $HOSTNAME"]);
        assert_eq!(q.flag("stdin"), Ok(true));
        assert_eq!(q.flag("tty"), Ok(true));
        assert_eq!(q.flag("stderr"), Ok(false));
        assert_eq!(q.flag("stdout"), Ok(false));
        assert!(Query::parse(Some("follow=yes")).flag("follow").is_err());
        assert_eq!(Query::parse(Some("tailLines=5")).number("tailLines"), Ok(Some(5)));
        assert!(Query::parse(Some("tailLines=-1")).number("tailLines").is_err());
    }
}
