//! Server-side printing: `Table`s built by `rkube-printers` with upstream's columns, for built-in kinds
//! and for custom resources (their CRD's additionalPrinterColumns, or Name and Age).

use serde_json::Value;

use crate::resource::ResourceDef;

/// Builds a Table of `objects`; `include_object` is the `includeObject` parameter (None, Metadata, Object).
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Value,
    include_object: &str,
    with_columns: bool,
) -> Value {
    let now = std::time::SystemTime::now();
    match &def.printer_columns {
        Some(cols) => rkube_printers::custom_table(cols, objects, list_meta, include_object, with_columns, now),
        None => rkube_printers::table(&def.group, &def.resource, objects, list_meta, include_object, with_columns, now),
    }
}
