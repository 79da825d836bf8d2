//! The key layout upstream uses in etcd: `<prefix>/<resource>/<namespace>/<name>`,
//! with `<prefix>` `/registry` unless `--etcd-prefix` says otherwise.

/// Builds store keys for API objects under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl Default for KeyLayout {
    fn default() -> Self {
        KeyLayout { prefix: "/registry".to_owned() }
    }
}

impl KeyLayout {
    /// A layout under `prefix` (`/registry` upstream). A trailing slash is dropped; a missing leading one added.
    pub fn new(prefix: &str) -> Self {
        let trimmed = prefix.trim_end_matches('/');
        let prefix = if trimmed.starts_with('/') { trimmed.to_owned() } else { format!("/{trimmed}") };
        KeyLayout { prefix }
    }

    /// The prefix, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of one object: `<prefix>/<resource>/<namespace>/<name>`, or without the namespace for
    /// cluster-scoped resources. `resource` is upstream's storage name, e.g. `pods`, `apiextensions.k8s.io/customresourcedefinitions`.
    pub fn object(&self, resource: &str, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("{}/{resource}/{ns}/{name}", self.prefix),
            None => format!("{}/{resource}/{name}", self.prefix),
        }
    }

    /// The prefix under which every object of `resource` (in `namespace`, if given) lives, with a trailing slash
    /// so that `pods/default/` never matches `pods/default-2/`.
    pub fn collection(&self, resource: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{}/{resource}/{ns}/", self.prefix),
            None => format!("{}/{resource}/", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_upstream_layout() {
        let k = KeyLayout::default();
        assert_eq!(k.object("pods", Some("default"), "nginx"), "/registry/pods/default/nginx");
        assert_eq!(k.object("namespaces", None, "kube-system"), "/registry/namespaces/kube-system");
        assert_eq!(k.collection("pods", Some("default")), "/registry/pods/default/");
        assert_eq!(k.collection("pods", None), "/registry/pods/");
    }

    #[test]
    fn prefix_is_normalised() {
        assert_eq!(KeyLayout::new("kube/").prefix(), "/kube");
        assert_eq!(KeyLayout::new("/custom").object("secrets", Some("a"), "b"), "/custom/secrets/a/b");
    }
}
