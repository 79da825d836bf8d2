//! The crate's errors: what is wrong with a protobuf body, or with JSON that cannot become one.

use crate::wire::WireError;

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body does not start with the 4 bytes `k8s\0` that mark a Kubernetes protobuf object.
    #[error("not a Kubernetes protobuf body: missing the k8s\\0 magic prefix")]
    MissingMagic,
    /// The envelope's TypeMeta lacks apiVersion or kind, so the object's message is unknown.
    #[error("the protobuf envelope has no {0}")]
    MissingTypeMeta(&'static str),
    /// No message in the table is this kind in this apiVersion.
    #[error("unknown kind {kind:?} in {api_version:?}")]
    UnknownKind {
        /// The envelope's kind.
        kind: String,
        /// The envelope's apiVersion.
        api_version: String,
    },
    /// The envelope names a content encoding (such as gzip); upstream's serializer writes none.
    #[error("unsupported protobuf envelope contentEncoding {0:?}")]
    ContentEncoding(String),
    /// The bytes are malformed at the wire level.
    #[error("{reason} in field {field} of message {message}")]
    Wire {
        /// The proto full name of the message being read.
        message: &'static str,
        /// The field number (0 if the malformation is in a field key).
        field: u32,
        /// What is wrong.
        #[source]
        reason: WireError,
    },
    /// A known field arrived with a wire type its proto type cannot have.
    #[error("field {field} of message {message} has wire type {found}, expected {expected}")]
    WireType {
        /// The proto full name of the message being read.
        message: &'static str,
        /// The field number.
        field: u32,
        /// The wire type the table expects.
        expected: u8,
        /// The wire type on the wire.
        found: u8,
    },
    /// A field meant to hold JSON text (RawExtension, FieldsV1, apiextensions JSON) does not.
    #[error("field {field} of message {message} does not hold JSON")]
    EmbeddedJson {
        /// The proto full name of the message being read.
        message: &'static str,
        /// The field number.
        field: u32,
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A value has no JSON form: a time outside years 0..=9999, a NaN or infinite double,
    /// an IntOrString whose type is neither 0 nor 1.
    #[error("message {message} holds a value JSON cannot express: {what}")]
    Unrepresentable {
        /// The proto full name of the message being read.
        message: &'static str,
        /// The value.
        what: String,
    },
    /// Messages nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH): no real object does, and the
    /// limit keeps a hostile body from exhausting the stack.
    #[error("message {message} nests deeper than {} levels", crate::MAX_DEPTH)]
    TooDeep {
        /// The message at which the limit was reached.
        message: &'static str,
    },
}

/// Why JSON could not be turned into a protobuf body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The object has no string apiVersion or kind.
    #[error("the object has no {0}")]
    MissingTypeMeta(&'static str),
    /// No message in the table is this kind in this apiVersion.
    #[error("unknown kind {kind:?} in {api_version:?}")]
    UnknownKind {
        /// The object's kind.
        kind: String,
        /// The object's apiVersion.
        api_version: String,
    },
    /// A key that the message does not have. Protobuf has nowhere to put it, so encoding would lose it.
    #[error("{message} has no field {key:?}")]
    UnknownField {
        /// The proto full name of the message being written.
        message: &'static str,
        /// The JSON key.
        key: String,
    },
    /// A JSON value of the wrong type for its field.
    #[error("field {key:?} of {message} must be {expected}")]
    WrongType {
        /// The proto full name of the message being written.
        message: &'static str,
        /// The JSON key.
        key: String,
        /// What the field takes.
        expected: &'static str,
    },
    /// A value that the field's type cannot hold (a time that is not RFC 3339, an int32 out of range, bad base64).
    #[error("field {key:?} of {message}: {what}")]
    BadValue {
        /// The proto full name of the message being written.
        message: &'static str,
        /// The JSON key.
        key: String,
        /// What is wrong.
        what: String,
    },
    /// Objects nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("message {message} nests deeper than {} levels", crate::MAX_DEPTH)]
    TooDeep {
        /// The message at which the limit was reached.
        message: &'static str,
    },
}
