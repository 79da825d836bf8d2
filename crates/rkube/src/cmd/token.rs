//! `rkube token create|list|delete`: bootstrap tokens agents join with, as `kubeadm token` manages them (Secrets
//! `kube-system/bootstrap-token-<id>`), printed in k3s's secure form `K10<sha256 of the CA>::<id>.<secret>`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use rkube_auth::BootstrapToken;
use rkube_auth::bootstrap::{
    KEY_DESCRIPTION, KEY_EXPIRATION, KEY_EXTRA_GROUPS, KEY_TOKEN_ID, KEY_TOKEN_SECRET, SECRET_NAMESPACE, SECRET_TYPE,
};

/// The extra group of node-joining tokens: the API server's join bindings (`rkube:kubelet-bootstrap`,
/// `rkube:node-autoapprove-bootstrap`) name it, as kubeadm's name `system:bootstrappers:kubeadm:default-node-token`.
pub(crate) const NODE_TOKEN_GROUP: &str = "system:bootstrappers:rkube:default-node-token";
const DEFAULT_KUBECONFIG: &str = "/var/lib/rkube/kubeconfig.yaml";

/// Flags of `rkube token`.
#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    action: TokenAction,
    /// An admin kubeconfig of the cluster (a server writes one to <data-dir>/kubeconfig.yaml).
    #[arg(long, env = "KUBECONFIG", default_value = DEFAULT_KUBECONFIG, global = true)]
    kubeconfig: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
enum TokenAction {
    /// Create a bootstrap token and print the join token (`K10<CA hash>::<id>.<secret>`) for `rkube agent --token`.
    Create {
        /// How long the token stays valid (`0` for ever).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// A note shown by `rkube token list`.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the bootstrap tokens.
    List,
    /// Print a new random bootstrap token `<id>.<secret>` without creating it (for `rkube server --token`).
    Generate,
    /// Delete a bootstrap token (by id, `<id>.<secret>`, or the full join token).
    Delete {
        /// The token or its id.
        token: String,
    },
}

pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    if let TokenAction::Generate = args.action {
        println!("{}", BootstrapToken::generate().context("generating a token")?.token());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let config = rkube_client::config::from_file(&args.kubeconfig)
            .await
            .with_context(|| format!("reading the kubeconfig {} (use --kubeconfig)", args.kubeconfig.display()))?;
        let client = kube::Client::try_from(config).context("building the client")?;
        match args.action {
            TokenAction::Create { ttl, description } => {
                println!("{}", create(&client, ttl, description.as_deref(), None).await?.to_text());
                Ok(())
            }
            TokenAction::List => list(&client).await,
            TokenAction::Generate => Ok(()),
            TokenAction::Delete { token } => delete(&client, &token).await,
        }
    })
}

/// `rkube server --token`: a bootstrap token, bare or inside a join token (whose CA hash must then be this
/// server's).
#[derive(Clone, Debug)]
pub(crate) struct ServerToken {
    bootstrap: BootstrapToken,
    pinned: Option<String>,
}

/// Parses `--token` of `rkube server`.
pub(crate) fn parse_server_token(text: &str) -> Result<ServerToken, String> {
    let text = text.trim();
    let expected = "a bootstrap token <id>.<secret> ([a-z0-9]{6}.[a-z0-9]{16}, e.g. from `rkube token generate`) or \
                    a join token K10<CA hash>::<id>.<secret>";
    if let Ok(bootstrap) = BootstrapToken::parse(text) {
        return Ok(ServerToken { bootstrap, pinned: None });
    }
    let join = rkube_agent::join::JoinToken::parse(text).map_err(|_| format!("--token must be {expected}"))?;
    let bootstrap =
        BootstrapToken::parse(&join.bootstrap_token()).map_err(|_| format!("--token must be {expected}"))?;
    Ok(ServerToken { bootstrap, pinned: Some(join.ca_hash().to_owned()) })
}

/// Makes `token` valid (no expiry) and writes its join token to `path` (0600), as k3s writes `server/token`.
pub(crate) async fn ensure_server_token(
    client: &kube::Client,
    token: &ServerToken,
    ca_pem: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let ours = rkube_agent::join::ca_hash(ca_pem.as_bytes());
    if let Some(pinned) = token.pinned.as_ref().filter(|p| **p != ours) {
        anyhow::bail!(
            "--token pins the CA {pinned}, but this server's CA is {ours}: it is another cluster's token; pass \
             the <id>.<secret> part alone, or this cluster's token"
        );
    }
    let join = create(client, Duration::ZERO, Some("rkube server --token"), Some(&token.bootstrap)).await?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{}", join.to_text()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The cluster CA as the API server publishes it to joining nodes (kube-public/cluster-info): the bytes the
/// token's hash covers.
async fn cluster_ca(client: &kube::Client) -> anyhow::Result<Vec<u8>> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-public")
        .get("cluster-info")
        .await
        .context("reading kube-public/cluster-info (the CA joining nodes check)")?;
    let text = cm.data.as_ref().and_then(|d| d.get("kubeconfig")).context("cluster-info has no kubeconfig")?;
    rkube_agent::join::cluster_info_ca(text).map_err(|e| anyhow::anyhow!("cluster-info: {e}"))
}

/// Creates a node-joining bootstrap token (`bootstrap` as given, else a new random one) valid for `ttl`
/// (zero: no expiry), and returns its join token. An existing Secret for the same token is kept.
pub(crate) async fn create(
    client: &kube::Client,
    ttl: Duration,
    description: Option<&str>,
    bootstrap: Option<&BootstrapToken>,
) -> anyhow::Result<rkube_agent::join::JoinToken> {
    let ca = cluster_ca(client).await?;
    let token = match bootstrap {
        Some(t) => t.clone(),
        None => BootstrapToken::generate().context("generating a token")?,
    };
    let expiration = (!ttl.is_zero()).then(|| SystemTime::now() + ttl);
    let secret = token.to_secret(expiration, &["signing", "authentication"], &[NODE_TOKEN_GROUP], description);
    let secret: Secret = serde_json::from_value(secret).context("the token Secret")?;
    let api = Api::<Secret>::namespaced(client.clone(), SECRET_NAMESPACE);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 && bootstrap.is_some() => {}
        Err(e) => return Err(e).context("creating the bootstrap-token Secret"),
    }
    rkube_agent::join::JoinToken::new(&ca, &token.token()).map_err(Into::into)
}

fn data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

async fn list(client: &kube::Client) -> anyhow::Result<()> {
    let api = Api::<Secret>::namespaced(client.clone(), SECRET_NAMESPACE);
    let secrets = api
        .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
        .await
        .context("listing the bootstrap-token Secrets")?;
    let now = k8s_openapi::jiff::Timestamp::now();
    println!("{:<24} {:<10} {:<21} {:<24} {:<20} EXTRA GROUPS", "TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION");
    for s in &secrets.items {
        let expires = data(s, KEY_EXPIRATION);
        let ttl = match expires.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(at) if at <= now => "<expired>".to_owned(),
            Ok(at) => {
                let secs = u64::try_from(at.as_second() - now.as_second()).unwrap_or(0);
                humantime::format_duration(Duration::from_secs(secs)).to_string().replace(' ', "")
            }
            Err(_) if expires.is_empty() => "<forever>".to_owned(),
            Err(_) => "<invalid>".to_owned(),
        };
        let usages: Vec<String> = s
            .data
            .iter()
            .flat_map(|d| d.iter())
            .filter(|(k, v)| v.0 == b"true" && k.starts_with("usage-bootstrap-"))
            .map(|(k, _)| k.trim_start_matches("usage-bootstrap-").to_owned())
            .collect();
        println!(
            "{:<24} {:<10} {:<21} {:<24} {:<20} {}",
            format!("{}.{}", data(s, KEY_TOKEN_ID), data(s, KEY_TOKEN_SECRET)),
            ttl,
            if expires.is_empty() { "<never>".to_owned() } else { expires },
            usages.join(","),
            data(s, KEY_DESCRIPTION),
            data(s, KEY_EXTRA_GROUPS)
        );
    }
    Ok(())
}

/// The token id of `text`: an id, `<id>.<secret>`, or `K10<hash>::<id>.<secret>`.
fn token_id(text: &str) -> anyhow::Result<String> {
    let credential = text.rsplit_once("::").map_or(text, |(_, c)| c);
    let id = credential.split_once('.').map_or(credential, |(id, _)| id);
    if id.len() != 6 || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        anyhow::bail!("{text:?} is not a token id ([a-z0-9]{{6}}), a bootstrap token or a join token");
    }
    Ok(id.to_owned())
}

async fn delete(client: &kube::Client, text: &str) -> anyhow::Result<()> {
    let id = token_id(text)?;
    let api = Api::<Secret>::namespaced(client.clone(), SECRET_NAMESPACE);
    let name = format!("{}{id}", rkube_auth::bootstrap::SECRET_NAME_PREFIX);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            println!("bootstrap token {id:?} deleted");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => anyhow::bail!("bootstrap token {id:?} not found"),
        Err(e) => Err(e).with_context(|| format!("deleting {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_tokens() {
        assert!(parse_server_token("abcdef.0123456789abcdef").expect("bare").pinned.is_none());
        let hash = "ab".repeat(32);
        let t = parse_server_token(&format!("K10{hash}::abcdef.0123456789abcdef")).expect("join");
        assert_eq!(t.pinned.as_deref(), Some(hash.as_str()));
        let e = parse_server_token("password").expect_err("refused");
        assert!(e.contains("<id>.<secret>"), "{e}");
    }

    #[test]
    fn token_ids_from_every_form() {
        assert_eq!(token_id("abcdef").expect("id"), "abcdef");
        assert_eq!(token_id("abcdef.0123456789abcdef").expect("id"), "abcdef");
        assert_eq!(token_id("K10aa::abcdef.0123456789abcdef").expect("id"), "abcdef");
        assert!(token_id("ABCDEF").is_err());
        assert!(token_id("abc").is_err());
    }
}
