//! The archive's `manifest.json`: what the backup holds, where it came from, and a checksum of every other member,
//! so a damaged or truncated archive is refused before anything is written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `format` of every rkube backup.
pub(crate) const FORMAT: &str = "rkube-backup";
/// The layout this rkube writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The manifest's name in the archive (always its first member).
pub(crate) const NAME: &str = "manifest.json";

/// The description of one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always `rkube-backup`.
    pub format: String,
    /// The archive layout's version (1).
    pub format_version: u32,
    /// The rkube that wrote it.
    pub rkube_version: String,
    /// The store backed up: `sqlite` or `etcd`.
    pub store: String,
    /// The key prefix the objects were stored under (e.g. `/registry`).
    pub prefix: String,
    /// The store revision every object was read at.
    pub revision: i64,
    /// How many objects (store keys) the archive holds.
    pub objects: u64,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created: String,
    /// Every other member of the archive: its size and SHA-256.
    pub files: BTreeMap<String, FileEntry>,
}

/// One archive member's size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

impl Manifest {
    /// Checks that this rkube can restore the archive; the error says why not.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("this is not an rkube backup (its manifest's format is {:?})", self.format));
        }
        if self.format_version > FORMAT_VERSION {
            return Err(format!(
                "the backup was written by rkube {} in format version {}; this rkube {} reads version {FORMAT_VERSION}: \
                 restore it with rkube {} or newer",
                self.rkube_version,
                self.format_version,
                env!("CARGO_PKG_VERSION"),
                self.rkube_version
            ));
        }
        if self.format_version == 0 {
            return Err("the manifest's format version is 0, which no rkube writes".to_owned());
        }
        if !matches!(self.store.as_str(), "sqlite" | "etcd") {
            return Err(format!("the manifest names an unknown store {:?}", self.store));
        }
        if !self.prefix.starts_with('/') {
            return Err(format!("the manifest's prefix {:?} does not start with '/'", self.prefix));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            rkube_version: "0.1.0".into(),
            store: "sqlite".into(),
            prefix: "/registry".into(),
            revision: 7,
            objects: 3,
            created: "2026-01-01T00:00:00Z".into(),
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn newer_formats_and_foreign_files_are_refused_with_the_reason() {
        assert!(manifest().check().is_ok());
        let newer = Manifest { format_version: 2, rkube_version: "9.0.0".into(), ..manifest() };
        let err = newer.check().expect_err("newer");
        assert!(err.contains("9.0.0") && err.contains("version 2"), "{err}");
        let foreign = Manifest { format: "other".into(), ..manifest() };
        assert!(foreign.check().expect_err("foreign").contains("not an rkube backup"));
    }

    #[test]
    fn the_json_uses_api_style_names() {
        let json = serde_json::to_string(&manifest()).expect("json");
        assert!(json.contains("\"formatVersion\":1") && json.contains("\"rkubeVersion\""), "{json}");
    }
}
