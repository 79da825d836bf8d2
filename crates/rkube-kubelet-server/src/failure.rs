//! Error answers of the agent API: a `metav1.Status` body with the status code, so that clients behind the
//! API server's byte-for-byte relay (kubectl, client-go) show the message itself.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// A request that cannot be served, with upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: StatusCode,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn bad_request(message: impl Into<String>) -> Failure {
        Failure { code: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure { code: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Failure {
        Failure { code: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }

    /// A failed runtime call: the gRPC code picks the status, the runtime's message is kept.
    pub(crate) fn runtime(what: &str, status: &tonic::Status) -> Failure {
        let code = match status.code() {
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure { code, message: format!("{what}: {}", status.message()) }
    }

    fn reason(&self) -> &'static str {
        match self.code {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            _ => "InternalError",
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason(),
            "code": self.code.as_u16(),
        });
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() = self.code;
        resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_body_and_codes() {
        let resp = Failure::not_found("pod \"p\" does not exist").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()[http::header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["reason"], "NotFound");
        assert_eq!(v["code"], 404);
        assert_eq!(v["message"], "pod \"p\" does not exist");
        let f = Failure::runtime("preparing exec", &tonic::Status::failed_precondition("container is not running"));
        assert_eq!((f.code, f.message.as_str()), (StatusCode::BAD_REQUEST, "preparing exec: container is not running"));
        assert_eq!(Failure::runtime("x", &tonic::Status::unavailable("down")).code, StatusCode::SERVICE_UNAVAILABLE);
    }
}
