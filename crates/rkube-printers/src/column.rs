//! A Table column definition, and the Name/Age/Created At columns most kinds share.

use serde_json::{Value, json};

use crate::descriptions::{META_CREATED, META_NAME};

/// One column of a Table, as its `columnDefinitions` entry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Header text; kubectl upper-cases it (`Age` prints as `AGE`).
    pub name: String,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// OpenAPI format hint; `name` marks the column holding the object's name.
    pub format: String,
    /// What the column shows, usually the OpenAPI description of the field it comes from.
    pub description: String,
    /// 0: always shown; 1 and above: only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A column of the given name, type, description and priority, without a format.
    pub(crate) fn new(name: &str, type_: &str, description: &str, priority: i32) -> Self {
        Column {
            name: name.to_owned(),
            type_: type_.to_owned(),
            format: String::new(),
            description: description.to_owned(),
            priority,
        }
    }

    /// The `columnDefinitions` entry: `{name, type, format, description, priority}`.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A priority-0 string column.
pub(crate) fn string(name: &str, description: &str) -> Column {
    Column::new(name, "string", description, 0)
}

/// A priority-0 integer column.
pub(crate) fn integer(name: &str, description: &str) -> Column {
    Column::new(name, "integer", description, 0)
}

/// A priority-0 boolean column.
pub(crate) fn boolean(name: &str, description: &str) -> Column {
    Column::new(name, "boolean", description, 0)
}

/// A string column shown only with `-o wide`.
pub(crate) fn wide(name: &str, description: &str) -> Column {
    Column::new(name, "string", description, 1)
}

/// The object's name: every printer's first column (events aside), marked with format `name`.
pub(crate) fn name() -> Column {
    Column { format: "name".to_owned(), ..string("Name", META_NAME) }
}

/// The object's age, from `metadata.creationTimestamp`.
pub(crate) fn age() -> Column {
    string("Age", META_CREATED)
}

/// The creation time as a date, as upstream's default table and CRD tables show it.
pub(crate) fn created_at() -> Column {
    Column::new("Created At", "date", META_CREATED, 0)
}

/// Wide `Containers` and `Images` columns of kinds with a pod template.
pub(crate) fn containers_images() -> [Column; 2] {
    [
        wide("Containers", "Names of each container in the template."),
        wide("Images", "Images referenced by each container in the template."),
    ]
}
