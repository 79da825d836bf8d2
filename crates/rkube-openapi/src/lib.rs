//! rkube's OpenAPI v2 and v3 documents and strict field validation, from k8s-openapi's schemas.
//!
//! kubectl explain, apply and validation read these documents; they cover the resources of rkube's
//! catalogue.
//!
//! - [`v2`]: the Swagger 2.0 document served at `/openapi/v2`; [`v2_protobuf`] is the same in the gnostic
//!   protobuf form kubectl asks for, and [`v2_format`] picks between them by `Accept` header.
//! - [`v3_index`] and [`v3_group_version`]: `/openapi/v3` and `/openapi/v3/apis/<group>/<version>`.
//! - [`unknown_fields`] and [`strict_decoding_error`]: `fieldValidation=Strict|Warn` for built-in kinds.
//! - [`Documents`]: the same with custom resources added and removed at run time.
//!
//! The built-in documents are generated once, on first use, and cached for the life of the process;
//! [`Published`] carries the serialized bytes and the hash used for `ETag`s and v3 URLs.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

mod custom;
mod defs;
mod documents;
mod error;
mod gvk;
mod model;
mod negotiate;
mod ops;
mod params;
mod patch_meta;
mod pb_writer;
mod published;
mod types;
mod v2;
mod v2_proto;
mod v3;
mod validate;
mod yaml_text;

pub use custom::CustomResource;
pub use documents::Documents;
pub use error::{Error, Result};
pub use negotiate::{V2Format, v2_format};
pub use published::{Published, V2Protobuf};
pub use validate::{strict_decoding_error, unknown_field_message};

use gvk::{Gvk, gv_path, parse_gv_path};
use model::Model;
use validate::{Mode, Walker};

static MODEL: OnceLock<Model> = OnceLock::new();
static V2: OnceLock<Arc<Published>> = OnceLock::new();
static V2_PROTOBUF: OnceLock<Arc<V2Protobuf>> = OnceLock::new();
static V3: OnceLock<BTreeMap<String, Arc<Published>>> = OnceLock::new();

/// The model of the built-in resources, generated on first use.
fn builtin_model() -> &'static Model {
    MODEL.get_or_init(Model::builtin)
}

fn builtin_v2() -> Arc<Published> {
    V2.get_or_init(|| Arc::new(Published::new(v2::render(builtin_model())))).clone()
}

fn builtin_v2_protobuf() -> Arc<V2Protobuf> {
    V2_PROTOBUF.get_or_init(|| Arc::new(V2Protobuf::encode(v2()))).clone()
}

fn builtin_v3() -> &'static BTreeMap<String, Arc<Published>> {
    V3.get_or_init(|| v3::render_all(builtin_model()).into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
}

/// The Swagger 2.0 document of the built-in resources.
pub fn v2() -> &'static Value {
    v2_document().value()
}

/// The Swagger 2.0 document of the built-in resources, with its bytes and hash.
pub fn v2_document() -> &'static Published {
    V2.get_or_init(|| Arc::new(Published::new(v2::render(builtin_model()))))
}

/// The Swagger 2.0 document of the built-in resources as gnostic protobuf (`openapi.v2.Document`),
/// encoded on first use.
pub fn v2_protobuf() -> &'static V2Protobuf {
    V2_PROTOBUF.get_or_init(|| Arc::new(V2Protobuf::encode(v2())))
}

/// The OpenAPI v3 index of the built-in group-versions:
/// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HASH>"}, ...}}`.
pub fn v3_index() -> Value {
    v3::index(builtin_v3().iter().map(|(k, v)| (k, &**v)))
}

/// The OpenAPI v3 document of a built-in group-version; `path` is `api/v1` or `apis/<group>/<version>`
/// (a leading `/` is accepted).
pub fn v3_group_version(path: &str) -> Option<&'static Value> {
    v3_group_version_document(path).map(Published::value)
}

/// [`v3_group_version`] with its bytes and hash.
pub fn v3_group_version_document(path: &str) -> Option<&'static Published> {
    let (g, v) = parse_gv_path(path)?;
    builtin_v3().get(&gv_path(&g, &v)).map(|p| &**p)
}

/// The JSON paths of the fields of `obj` that the schema of built-in kind `kind` of `api_version` does
/// not have, named as upstream's strict decoding errors name them (`spec.template.spec.containers[0].imagee`).
/// Empty when every field is known, and when the kind is not a built-in one (nothing to judge by).
pub fn unknown_fields(api_version: &str, kind: &str, obj: &Value) -> Vec<String> {
    let model = builtin_model();
    match model.defs.kind_schema(&Gvk::from_api_version(api_version, kind)) {
        Some(schema) => Walker::new(&model.defs.schemas).unknown_fields(schema, obj, Mode::Typed),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
