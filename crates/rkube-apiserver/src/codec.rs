//! Wire formats: request bodies in JSON, YAML or Kubernetes protobuf; answers in JSON, YAML or as a `Table`,
//! chosen from `Content-Type` and `Accept` the way upstream negotiates them.

use http::HeaderMap;
use rkube_apimachinery::ApiError;
use serde_json::Value;

/// The largest request body accepted, as upstream's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How the client wants answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `application/json` (the default).
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/json;as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table,
    /// `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`.
    Metadata,
}

/// Parses `Accept` into the first form we can produce.
pub fn output(headers: &HeaderMap) -> Output {
    let Some(accept) = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()) else { return Output::Json };
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let mut as_ = None;
        for p in params {
            if let Some(v) = p.strip_prefix("as=") {
                as_ = Some(v);
            }
        }
        match (media, as_) {
            ("application/json", Some("Table")) => return Output::Table,
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList")) => {
                return Output::Metadata;
            }
            ("application/json" | "*/*" | "application/*", None) => return Output::Json,
            ("application/yaml", None) => return Output::Yaml,
            _ => {}
        }
    }
    Output::Json
}

/// Decodes a request body by its `Content-Type` into a JSON object.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    let value = match media {
        "application/json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json"
        | "" => decode_json(body)?,
        "application/yaml" | "application/apply-patch+yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => rkube_protobuf::decode_envelope(body)
            .map_err(|e| ApiError::bad_request(format!("the protobuf body could not be decoded: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(value)
}

/// JSON, with the wording upstream uses for syntax errors.
pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))
}

fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the YAML body is not UTF-8"))?;
    serde_yaml::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Encodes an answer as JSON or YAML; returns the body and its content type.
pub fn encode(value: &Value, out: Output) -> (Vec<u8>, &'static str) {
    match out {
        Output::Yaml => match serde_yaml::to_string(value) {
            Ok(s) => (s.into_bytes(), "application/yaml"),
            Err(_) => (serde_json::to_vec(value).unwrap_or_default(), "application/json"),
        },
        _ => (serde_json::to_vec(value).unwrap_or_default(), "application/json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accept_negotiation() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(&headers(&[("accept", kubectl_get)])), Output::Table);
        assert_eq!(output(&headers(&[("accept", "application/yaml")])), Output::Yaml);
        assert_eq!(output(&headers(&[("accept", "application/vnd.kubernetes.protobuf, */*")])), Output::Json);
        assert_eq!(output(&headers(&[])), Output::Json);
    }

    #[test]
    fn bodies() {
        let v = decode_body(&headers(&[("content-type", "application/yaml")]), b"a: 1\nb: [x]\n").expect("yaml");
        assert_eq!(v, serde_json::json!({"a": 1, "b": ["x"]}));
        let e = decode_body(&headers(&[("content-type", "application/json")]), b"{bad").expect_err("bad json");
        assert_eq!(e.code, 400);
        let e = decode_body(&headers(&[("content-type", "text/plain")]), b"x").expect_err("unknown type");
        assert_eq!(e.code, 415);
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(decode_body(&headers(&[]), &big).expect_err("too big").code, 413);
    }
}
