//! Upstream's default table for kinds without a printer: `Name` and `Created At` (an RFC 3339 date).

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::age::rfc3339_utc;
use crate::column::{self, Column};
use crate::value::{name, opt_str};

/// Roles, cluster roles, limit ranges, CRDs, and any resource without a printer of its own.
pub(crate) const DEFAULT: Printer = Printer { columns, cells };

fn columns() -> Vec<Column> {
    vec![column::name(), column::created_at()]
}

fn cells(o: &Value, _now: SystemTime) -> Vec<Value> {
    vec![name(o), json!(rfc3339_utc(opt_str(o, "/metadata/creationTimestamp")))]
}
