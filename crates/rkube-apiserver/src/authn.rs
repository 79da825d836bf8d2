//! Authentication: who is asking. Client certificates verified by the TLS layer against the cluster CA
//! (CN = user, O = groups), as upstream's x509 authenticator. Anonymous requests are refused.

use rkube_pki::ClientIdentity;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name (`system:admin`, `system:serviceaccount:ns:name`).
    pub name: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
    /// The user's uid, if the authenticator knows one.
    pub uid: String,
}

impl User {
    /// A user from a verified client certificate.
    pub fn from_certificate(id: &ClientIdentity) -> User {
        let mut groups = id.groups.clone();
        groups.push("system:authenticated".to_owned());
        User { name: id.username.clone(), groups, uid: String::new() }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// What the TLS layer learned about the peer, attached to every request on the connection.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The identity from a client certificate that verified against the CA.
    pub certificate: Option<ClientIdentity>,
}

/// Authenticates a request; `None` means anonymous.
pub fn authenticate(peer: &Peer, _headers: &http::HeaderMap) -> Option<User> {
    peer.certificate.as_ref().map(User::from_certificate)
}
