//! CertificateSigningRequests: SIGNERNAME, REQUESTOR, REQUESTEDDURATION and CONDITION (`Approved,Issued`, ...),
//! as upstream's `printCertificateSigningRequest`.

use serde_json::{Value, json};

use crate::Printer;
use crate::column;
use crate::value::{age, arr_at, name, opt_int, str_at};

/// Upstream's `extractCSRStatus`: Denied before Approved before Pending, then `,Failed` and `,Issued`.
fn condition(o: &Value) -> String {
    let has = |t: &str| arr_at(o, "/status/conditions").iter().any(|c| c["type"] == t);
    let mut status = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(o, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s.to_owned() }
}

/// `certificatesigningrequests`.
pub(crate) const CERTIFICATE_SIGNING_REQUESTS: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::age(),
            column::string("SignerName", "Name of the signer that will issue the certificate."),
            column::string("Requestor", "Name of the user that requested the certificate."),
            column::string("RequestedDuration", "Requested duration of the issued certificate."),
            column::string("Condition", "Status of the request: Approved, Denied, Pending, Failed, Issued."),
        ]
    },
    cells: |o, now| {
        let duration = opt_int(o, "/spec/expirationSeconds").map_or_else(|| "<none>".to_owned(), crate::human_duration);
        vec![
            name(o),
            age(o, now),
            json!(or_none(str_at(o, "/spec/signerName"))),
            json!(or_none(str_at(o, "/spec/username"))),
            json!(duration),
            json!(condition(o)),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_in_upstream_order() {
        assert_eq!(condition(&json!({})), "Pending");
        let issued = json!({"status": {"certificate": "Y2VydA==", "conditions": [{"type": "Approved"}]}});
        assert_eq!(condition(&issued), "Approved,Issued");
        let failed = json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Failed"}]}});
        assert_eq!(condition(&failed), "Approved,Failed");
        assert_eq!(condition(&json!({"status": {"conditions": [{"type": "Denied"}]}})), "Denied");
    }
}
