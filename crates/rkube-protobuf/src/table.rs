//! The message table's types and look-ups: message by index, name or kind; field by number or JSON name.

use crate::table_gen::{KINDS, MESSAGES};

pub(crate) use crate::table_gen::K8S_PB_VERSION;

/// A field's wire type. Map keys are always strings in Kubernetes' protos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `string`.
    Str,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `double`.
    F64,
    /// A nested message, by index into the table.
    Msg(u16),
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`.
    MapBytes,
    /// `map<string, message>`.
    MapMsg(u16),
}

/// Singular or `repeated` (maps are neither: they say so in [`Ty`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    /// `optional`: at most one value (the last on the wire wins, as in protobuf).
    One,
    /// `repeated`: a JSON array.
    Rep,
}

/// Messages whose Go types write JSON their own way instead of field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// Field by field.
    None,
    /// `meta/v1.Time`: RFC 3339 in whole seconds, `null` when zero.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 with six fractional digits, `null` when zero.
    MicroTime,
    /// `meta/v1.Duration`: Go's `time.Duration` string (`1h0m0s`).
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: embedded JSON, or an embedded protobuf object.
    RawExtension,
    /// `runtime.Unknown`: its raw bytes (field 2).
    Unknown,
    /// `meta/v1.FieldsV1`, apiextensions `JSON`: field 1 holds JSON text.
    RawJson,
    /// `meta/v1.GroupVersion`: `group/version`.
    GroupVersion,
    /// A Go named slice (`Verbs`, `ExtraValue`): field 1's items as a JSON array.
    Items,
    /// apiextensions `JSONSchemaPropsOrArray`.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`.
    SchemaOrStringArray,
}

/// Go `omitempty` on a non-pointer: a zero scalar or an empty named slice is left out of JSON.
/// (Go never omits structs, and pointers only when nil, i.e. absent from the wire: an explicit
/// `replicas: 0` is a pointer and stays.)
pub(crate) const OMIT_EMPTY: u8 = 1;
/// `json:",inline"`: the nested message's keys go into the parent object.
pub(crate) const INLINE: u8 = 2;
/// `json:"-"`: never in JSON.
pub(crate) const SKIP: u8 = 4;
/// A plain Go value (not a pointer, slice or map): Go's marshaller writes it even when zero or
/// absent from JSON, so the encoder does too.
pub(crate) const VALUE: u8 = 8;

/// One field of a message.
#[derive(Debug)]
pub(crate) struct FieldDef {
    /// The protobuf field number.
    pub(crate) tag: u32,
    /// The JSON key (empty for inline fields).
    pub(crate) json: &'static str,
    /// The wire type.
    pub(crate) ty: Ty,
    /// Singular or repeated.
    pub(crate) card: Card,
    /// [`OMIT_EMPTY`], [`INLINE`], [`SKIP`], [`VALUE`].
    pub(crate) flags: u8,
}

impl FieldDef {
    /// For the generated table, which would be unreadable with struct literals.
    pub(crate) const fn new(tag: u32, json: &'static str, ty: Ty, card: Card, flags: u8) -> Self {
        Self { tag, json, ty, card, flags }
    }

    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One message type.
#[derive(Debug)]
pub(crate) struct MessageDef {
    /// The proto full name (`k8s.io.api.core.v1.Pod`).
    pub(crate) name: &'static str,
    /// How its JSON is written.
    pub(crate) special: Special,
    /// Fields sorted by number.
    pub(crate) fields: &'static [FieldDef],
}

impl MessageDef {
    /// The field with this number, if the table knows it (unknown numbers are skipped, as in protobuf).
    pub(crate) fn field(&self, tag: u32) -> Option<&'static FieldDef> {
        let fields: &'static [FieldDef] = self.fields;
        fields.binary_search_by_key(&tag, |f| f.tag).ok().map(|i| &fields[i])
    }
}

/// The message at `index` (indices come from the table itself, so they are in range).
pub(crate) fn message(index: u16) -> &'static MessageDef {
    &MESSAGES[usize::from(index)]
}

/// Every message in the table.
#[cfg(test)]
pub(crate) fn messages() -> &'static [MessageDef] {
    &MESSAGES
}

/// The message with this proto full name.
#[cfg(test)]
pub(crate) fn message_by_name(name: &str) -> Option<u16> {
    let i = MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()?;
    u16::try_from(i).ok()
}

/// The message for an object of this apiVersion and kind.
///
/// `meta.k8s.io/v1` kinds (`DeleteOptions`, `Status`, ...) are registered in every group version
/// upstream (`metav1.AddToGroupVersion`), so clients send them under the resource's apiVersion.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<u16> {
    let find = |v: &str| KINDS.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(v, kind))).ok().map(|i| KINDS[i].2);
    find(api_version).or_else(|| find("meta.k8s.io/v1"))
}

/// The (apiVersion, kind) of a message that is a kind.
#[cfg(test)]
pub(crate) fn kind_of(index: u16) -> Option<(&'static str, &'static str)> {
    KINDS.iter().find(|(_, _, i)| *i == index).map(|(v, k, _)| (*v, *k))
}
