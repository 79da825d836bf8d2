//! `rkube images`: importing image archives into a node's runtime (no registry needed) and listing its images.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Flags of `rkube images`.
#[derive(clap::Args, Debug)]
pub(crate) struct ImagesArgs {
    #[command(subcommand)]
    action: ImagesAction,
}

/// Which node's runtime: the agent's own containerd under --data-dir, or an explicit CRI socket.
#[derive(clap::Args, Debug)]
struct Target {
    /// The agent's data directory (its containerd's socket is <data-dir>/agent/containerd/containerd.sock).
    #[arg(
        long,
        env = "RKUBE_DATA_DIR",
        default_value = "/var/lib/rkube",
        conflicts_with = "container_runtime_endpoint"
    )]
    data_dir: PathBuf,
    /// A CRI runtime's socket instead (containerd's, as the agent's --container-runtime-endpoint).
    #[arg(long, env = "RKUBE_CONTAINER_RUNTIME_ENDPOINT")]
    container_runtime_endpoint: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum ImagesAction {
    /// Import OCI-layout or docker-archive tars (as `docker save` writes them); each is checked completely
    /// first, and nothing is imported if one is bad. Works while the agent runs.
    Import {
        /// The archives.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// List the runtime's images.
    List {
        #[command(flatten)]
        target: Target,
    },
}

impl Target {
    fn socket(&self) -> PathBuf {
        match self.container_runtime_endpoint.as_deref() {
            Some(e) => PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)),
            None => rkube_agent::config::supervised_socket(&self.data_dir.join("agent")),
        }
    }
}

async fn connect(socket: &Path) -> anyhow::Result<rkube_cri::Runtime> {
    let hint = || {
        format!(
            "no container runtime answers at {}: start the node agent (rkube server or rkube agent) with this \
             --data-dir, or pass --container-runtime-endpoint",
            socket.display()
        )
    };
    let runtime = rkube_cri::Runtime::connect(socket).await.with_context(hint)?;
    runtime.version().await.with_context(hint)?;
    Ok(runtime)
}

pub(crate) fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match args.action {
            ImagesAction::Import { files, target } => {
                let socket = target.socket();
                connect(&socket).await?;
                let names = rkube_cri::images::import(&socket, &files, |line| eprintln!("{line}")).await?;
                for name in names {
                    println!("imported {name}");
                }
                Ok(())
            }
            ImagesAction::List { target } => {
                let rt = connect(&target.socket()).await?;
                let mut images = rkube_cri::images::list(&rt).await?;
                images.sort_by(|a, b| a.names.cmp(&b.names));
                println!("{}", table(&images));
                Ok(())
            }
        }
    })
}

/// IMAGE, ID (12 hex digits, as crictl shows) and SIZE columns; an image with several names has a row each.
fn table(images: &[rkube_cri::images::ImageInfo]) -> String {
    let mut rows = vec![["IMAGE".to_owned(), "ID".to_owned(), "SIZE".to_owned()]];
    for i in images {
        let id = i.id.strip_prefix("sha256:").unwrap_or(&i.id).chars().take(12).collect::<String>();
        let names = if i.names.is_empty() { vec!["<none>".to_owned()] } else { i.names.clone() };
        for n in names {
            rows.push([n, id.clone(), size(i.size)]);
        }
    }
    let widths: Vec<usize> = (0..3).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| format!("{:<w0$}   {:<w1$}   {}", r[0], r[1], r[2], w0 = widths[0], w1 = widths[1]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A size as crictl prints it: three significant digits in decimal units (`4.26MB`, `312kB`).
fn size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let text = match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
    format!("{text}{}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_sizes() {
        let images = vec![rkube_cri::images::ImageInfo {
            id: "sha256:0123456789abcdef".into(),
            names: vec!["docker.io/library/busybox:1".into()],
            digests: vec![],
            size: 1_234_567,
        }];
        let t = table(&images);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("IMAGE") && lines[0].contains("ID") && lines[0].ends_with("SIZE"), "{t}");
        assert!(lines[1].contains("docker.io/library/busybox:1") && lines[1].contains("0123456789ab"), "{t}");
        assert_eq!(size(999), "999B");
        assert_eq!(size(312_000), "312kB");
        assert_eq!(size(4_260_000), "4.26MB");
        assert_eq!(size(1_500_000_000), "1.5GB");
    }
}
