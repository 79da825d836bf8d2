//! Query parameters of API requests, parsed once.

use std::collections::HashMap;

use rkube_apimachinery::ApiError;
use rkube_apimachinery::fields::FieldSelector;
use rkube_apimachinery::labels::Selector;

use crate::registry::ListQuery;

/// The query string as a map (the last value wins, as Go's `url.Values.Get` returns the first; both are rare).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    /// Parses `a=b&c=d`.
    pub(crate) fn parse(q: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Query(map)
    }

    /// One parameter.
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`).
    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "True"))
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => {
                Err(ApiError::bad_request(format!("Unsupported value: \"{other}\": supported values: \"All\"")))
            }
        }
    }

    /// An integer parameter.
    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?} is not an integer"))),
        }
    }

    /// The list parameters.
    pub(crate) fn list(&self) -> Result<ListQuery, ApiError> {
        let labels = Selector::parse(self.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let limit = self.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
        Ok(ListQuery {
            labels,
            fields,
            limit,
            continue_token: self.get("continue").filter(|s| !s.is_empty()).map(str::to_owned),
            resource_version: self.get("resourceVersion").map(str::to_owned),
            resource_version_match: self.get("resourceVersionMatch").filter(|s| !s.is_empty()).map(str::to_owned),
        })
    }
}
