//! `rkube server`: the control plane. Today it opens (and creates) the store; the API server comes next.

use std::path::PathBuf;

use crate::store::{StoreArgs, StoreConfig};

/// Flags of `rkube server`, named as k3s names them where k3s has one.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerArgs {
    /// Where the server keeps its state (store, certificates, kubeconfig).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

/// The validated server configuration.
struct ServerConfig {
    store: StoreConfig,
}

impl ServerArgs {
    fn validate(&self) -> anyhow::Result<ServerConfig> {
        let mut problems = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            problems.push("--data-dir is empty; give a directory such as /var/lib/rkube".to_owned());
        }
        let store = self.store.validate(&self.data_dir, &mut problems);
        match store {
            Some(store) if problems.is_empty() => Ok(ServerConfig { store }),
            _ => anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - ")),
        }
    }
}

pub(crate) fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = crate::store::open(&config.store).await?;
        let revision = store.current_revision().await?;
        tracing::info!(store = %store.describe(), revision, "store ready");
        anyhow::bail!(
            "the store at {} is ready (revision {revision}), but the API server is not built yet (issue 3): `rkube server` stops here",
            store.describe()
        )
    })
}
