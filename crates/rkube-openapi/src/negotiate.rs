//! Which form of the v2 document an `Accept` header asks for, decided as upstream's handler decides.

/// The forms `/openapi/v2` is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Format {
    /// `application/json`: [`crate::Published::bytes`].
    Json,
    /// gnostic protobuf: [`crate::V2Protobuf::bytes`], served as [`crate::V2Protobuf::CONTENT_TYPE`].
    Protobuf,
}

/// Protobuf media types upstream accepts: the one it answers with and the `@` spelling client-go sends.
const PROTOBUF_SUBTYPES: [&str; 2] =
    ["com.github.proto-openapi.spec.v2.v1.0+protobuf", "com.github.proto-openapi.spec.v2@v1.0+protobuf"];

/// The form to serve `/openapi/v2` in for an `Accept` header (`None` when absent: `*/*`), or `None` for
/// `406 Not Acceptable`.
///
/// kube-openapi sorts the media ranges by quality and then specificity (goautoneg) and serves the first
/// that JSON or one of the protobuf types matches, JSON winning a wildcard. Unlike it, a range with
/// `q=0` is skipped, as HTTP says it refuses that type.
pub fn v2_format(accept: Option<&str>) -> Option<V2Format> {
    let mut ranges: Vec<(f32, u8, &str, &str)> = accept
        .unwrap_or("*/*")
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let range = parts.next()?.trim();
            let (ty, sub) = match range.split_once('/') {
                Some((t, s)) => (t.trim(), s.trim()),
                None if range == "*" => ("*", "*"),
                None => return None,
            };
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
            let specificity = u8::from(ty != "*") + u8::from(sub != "*");
            Some((q, specificity, ty, sub))
        })
        .filter(|(q, ..)| *q > 0.0)
        .collect();
    // Stable, so equally ranked ranges keep the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    ranges.iter().find_map(|&(_, _, ty, sub)| {
        if ty != "application" && ty != "*" {
            return None;
        }
        if sub == "json" || sub == "*" {
            Some(V2Format::Json)
        } else if PROTOBUF_SUBTYPES.contains(&sub) {
            Some(V2Format::Protobuf)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_upstream_handler_cases() {
        // kube-openapi's handler_test cases.
        let pb = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
        let pb_old = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert_eq!(v2_format(None), Some(V2Format::Json));
        assert_eq!(v2_format(Some("application/json")), Some(V2Format::Json));
        assert_eq!(v2_format(Some("*/*")), Some(V2Format::Json));
        assert_eq!(v2_format(Some("application/*")), Some(V2Format::Json));
        for p in [pb, pb_old] {
            assert_eq!(v2_format(Some(p)), Some(V2Format::Protobuf));
            assert_eq!(v2_format(Some(&format!("application/json, {p}"))), Some(V2Format::Json));
            assert_eq!(v2_format(Some(&format!("{p}, application/json"))), Some(V2Format::Protobuf));
            assert_eq!(v2_format(Some(&format!("{p}; q=0.5, application/json"))), Some(V2Format::Json));
            assert_eq!(v2_format(Some(&format!("{p}, */*"))), Some(V2Format::Protobuf));
        }
        assert_eq!(v2_format(Some("application/yaml")), None);
        assert_eq!(v2_format(Some("text/html, application/json;q=0")), None);
    }
}
