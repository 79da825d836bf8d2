//! `rkube agent`: a node agent joining a server (and `rkube agent clean`), plus the node flags `rkube server`
//! shares for its embedded agent.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

/// The node's flags, shared by `rkube agent` and `rkube server` (its embedded agent).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// This node's name (default: the hostname).
    #[arg(long, env = "RKUBE_NODE_NAME", help_heading = "(agent/node)")]
    pub(crate) node_name: Option<String>,
    /// This node's IP (default: the address of the interface with the default route, else the first non-loopback one).
    #[arg(long, env = "RKUBE_NODE_IP", help_heading = "(agent/node)")]
    pub(crate) node_ip: Option<IpAddr>,
    /// Use this CRI runtime (a unix socket) instead of starting the agent's own containerd.
    #[arg(long, env = "RKUBE_CONTAINER_RUNTIME_ENDPOINT", help_heading = "(agent/node)")]
    container_runtime_endpoint: Option<String>,
    /// Cluster DNS service IP written into pods' resolv.conf.
    #[arg(long, env = "RKUBE_CLUSTER_DNS", default_value = "10.254.0.2", help_heading = "(agent/node)")]
    cluster_dns: IpAddr,
    /// Cluster DNS domain.
    #[arg(long, env = "RKUBE_CLUSTER_DOMAIN", default_value = "cluster.local", help_heading = "(agent/node)")]
    pub(crate) cluster_domain: String,
    /// Resources reserved for Kubernetes components (cpu, memory, ephemeral-storage, pid).
    #[arg(long, env = "RKUBE_KUBE_RESERVED", default_value = rkube_agent::config::DEFAULT_RESERVED, help_heading = "(agent/node)")]
    kube_reserved: String,
    /// Resources reserved for the operating system (cpu, memory, ephemeral-storage, pid).
    #[arg(long, env = "RKUBE_SYSTEM_RESERVED", default_value = rkube_agent::config::DEFAULT_RESERVED, help_heading = "(agent/node)")]
    system_reserved: String,
    /// Port of the agent API (logs, exec, attach, port-forward, metrics): upstream's kubelet port.
    #[arg(long, env = "RKUBE_KUBELET_PORT", default_value_t = 10250, help_heading = "(agent/node)")]
    kubelet_port: u16,
    /// Name of the CNI bridge pods attach to (at most 15 characters).
    #[arg(long, env = "RKUBE_CNI_BRIDGE", default_value = "cni0", help_heading = "(agent/node)")]
    cni_bridge: String,
    /// Where the runtime reads CNI configs and the agent writes its conflist (default: <data-dir>/agent/cni/net.d
    /// for the agent's own containerd, /etc/cni/net.d with --container-runtime-endpoint).
    #[arg(long, env = "RKUBE_CNI_CONF_DIR", help_heading = "(agent/node)")]
    cni_conf_dir: Option<PathBuf>,
    /// A label for this node, key=value (repeatable).
    #[arg(long = "node-label", env = "RKUBE_NODE_LABEL", value_delimiter = ',', help_heading = "(agent/node)")]
    node_labels: Vec<String>,
    /// Most pods this node runs.
    #[arg(long, env = "RKUBE_MAX_PODS", default_value_t = 110, help_heading = "(agent/node)")]
    max_pods: u32,
    /// The host's resolver configuration: for pods with dnsPolicy Default, and where the cluster DNS forwards
    /// names outside the cluster.
    #[arg(long, env = "RKUBE_RESOLV_CONF", default_value = "/etc/resolv.conf", help_heading = "(agent/node)")]
    resolv_conf: PathBuf,
    #[command(flatten)]
    net: crate::cmd::netargs::NetArgs,
    #[command(flatten)]
    services: crate::cmd::serviceargs::ServiceArgs,
}

impl NodeArgs {
    /// The node name as given or the hostname.
    pub(crate) fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(crate::netinfo::hostname)
    }

    /// The node IP as given or detected.
    pub(crate) fn node_ip(&self) -> IpAddr {
        self.node_ip.unwrap_or_else(crate::netinfo::default_ipv4)
    }

    /// The validated agent configuration for a node keeping its state under `data_dir`, in a cluster whose pod
    /// network is `cluster_cidr` cut into `/subnet_len` node ranges.
    pub(crate) fn agent_config(
        &self,
        data_dir: &std::path::Path,
        cluster_cidr: &str,
        subnet_len: u8,
    ) -> Result<rkube_agent::AgentConfig, rkube_agent::Error> {
        rkube_agent::AgentConfig::from_flags(&rkube_agent::Flags {
            data_dir: data_dir.to_path_buf(),
            node_name: self.node_name(),
            node_ip: self.node_ip(),
            container_runtime_endpoint: self.container_runtime_endpoint.clone(),
            cluster_dns: vec![self.cluster_dns],
            cluster_domain: self.cluster_domain.clone(),
            kube_reserved: self.kube_reserved.clone(),
            system_reserved: self.system_reserved.clone(),
            kubelet_port: self.kubelet_port,
            cni_bridge: self.cni_bridge.clone(),
            cni_conf_dir: self.cni_conf_dir.clone(),
            node_labels: self.node_labels.clone(),
            max_pods: self.max_pods,
            resolv_conf: self.resolv_conf.clone(),
            network: self.net.flags(cluster_cidr, subnet_len),
            services: self.services.flags(),
        })
    }
}

/// Flags of `rkube agent`.
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Join with a token: `rkube agent --server https://<server>:6443 --token K10<hash>::<id>.<secret>` \
                  (the token from `rkube token create` on a server). The agent checks the server's CA against the \
                  hash, gets its client and serving certificates by CertificateSigningRequests, keeps them under \
                  <data-dir>/agent and renews them when 80% of their lifetime has passed. Or give it an identity: \
                  --kubeconfig with --tls-cert-file, --tls-private-key-file and --client-ca-file."
)]
pub(crate) struct AgentArgs {
    #[command(subcommand)]
    action: Option<AgentAction>,
    /// Where the agent keeps its state (containerd, CNI, pods, logs, certificates under <data-dir>/agent).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    /// The API servers' URLs, comma-separated (override the kubeconfig's); with several, the agent fails over
    /// between them.
    #[arg(long, env = "RKUBE_URL", value_delimiter = ',', help_heading = "(cluster)")]
    server: Vec<String>,
    /// Join token, `K10<sha256 of the cluster CA>::<id>.<secret>` (from `rkube token create`); needed only until
    /// the node has its certificates.
    #[arg(long, env = "RKUBE_TOKEN", help_heading = "(cluster)", conflicts_with = "kubeconfig")]
    token: Option<String>,
    /// Kubeconfig of the node's identity (system:node:<name> in system:nodes), instead of joining with a token.
    #[arg(long, env = "RKUBE_KUBECONFIG", help_heading = "(cluster)")]
    kubeconfig: Option<PathBuf>,
    /// Serving certificate of the agent API (PEM), for the node's IP and name (with --kubeconfig).
    #[arg(long, help_heading = "(agent/tls)")]
    tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, help_heading = "(agent/tls)")]
    tls_private_key_file: Option<PathBuf>,
    /// CA whose client certificates the agent API accepts (the cluster CA: the API server's kubelet-client).
    #[arg(long, help_heading = "(agent/tls)")]
    client_ca_file: Option<PathBuf>,
    /// Host checks (as `rkube doctor` names them) whose FAIL only warns at start; `all` for every check.
    #[arg(long, env = "RKUBE_IGNORE_PREFLIGHT_ERRORS", value_delimiter = ',', help_heading = "(cluster)")]
    ignore_preflight_errors: Vec<String>,
    /// The cluster's pod network (every node's range lies inside it).
    #[arg(long, env = "RKUBE_CLUSTER_CIDR", default_value = "172.30.0.0/16", help_heading = "(cluster)")]
    cluster_cidr: String,
    /// Prefix length of each node's pod range.
    #[arg(long, env = "RKUBE_NODE_CIDR_MASK_SIZE", default_value_t = 24, help_heading = "(cluster)")]
    node_cidr_mask_size: u8,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(clap::Subcommand, Debug)]
enum AgentAction {
    /// Remove what a stopped agent left on this host: pod sandboxes, its containerd, mounts, the CNI bridge.
    Clean {
        /// The agent's data directory.
        #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
        data_dir: PathBuf,
    },
}

/// How the agent gets its identity.
enum Identity {
    /// Given files (`--kubeconfig` and the TLS files).
    Files { kubeconfig: PathBuf, cert: PathBuf, key: PathBuf, ca: PathBuf },
    /// Joined with a token, or certificates saved by an earlier join.
    Join(rkube_agent::join::JoinOptions),
}

pub(crate) fn run(args: AgentArgs) -> anyhow::Result<()> {
    if let Some(AgentAction::Clean { data_dir }) = &args.action {
        let runtime = tokio::runtime::Runtime::new()?;
        let cleaned = runtime.block_on(rkube_agent::clean::clean(data_dir))?;
        println!(
            "removed {} pod sandbox(es), unmounted {} mount(s){}",
            cleaned.sandboxes,
            cleaned.unmounted.len(),
            cleaned.bridge.map(|b| format!(", deleted bridge {b}")).unwrap_or_default()
        );
        return Ok(());
    }
    let mut problems = Vec::new();
    let config = match args.node.agent_config(&args.data_dir, &args.cluster_cidr, args.node_cidr_mask_size) {
        Ok(c) => Some(c),
        Err(rkube_agent::Error::Invalid(p)) => {
            problems.push(p);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let identity = match &args.kubeconfig {
        Some(kubeconfig) => match (&args.tls_cert_file, &args.tls_private_key_file, &args.client_ca_file) {
            (Some(c), Some(k), Some(ca)) => Some(Identity::Files {
                kubeconfig: kubeconfig.clone(),
                cert: c.clone(),
                key: k.clone(),
                ca: ca.clone(),
            }),
            _ => {
                problems.push(
                    "  - --tls-cert-file, --tls-private-key-file and --client-ca-file are required with --kubeconfig \
                     (or join with --token instead)"
                        .to_owned(),
                );
                None
            }
        },
        None => {
            let token = match args.token.as_deref().map(rkube_agent::join::JoinToken::parse).transpose() {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("  - --token: {e}"));
                    None
                }
            };
            if args.server.is_empty() {
                problems.push("  - --server is required: the API server(s) to join, https://<address>:6443".to_owned());
            }
            Some(Identity::Join(rkube_agent::join::JoinOptions {
                data_dir: args.data_dir.clone(),
                servers: args.server.clone(),
                token,
                node_name: args.node.node_name(),
                node_ip: args.node.node_ip(),
            }))
        }
    };
    let (Some(config), Some(identity), true) = (config, identity, problems.is_empty()) else {
        anyhow::bail!("invalid configuration:\n{}", problems.join("\n"));
    };
    let runtime = agent_runtime()?;
    runtime.block_on(async move {
        crate::preflight::run(&args.data_dir, None, Some(&config), &args.ignore_preflight_errors).await?;
        match identity {
            Identity::Files { kubeconfig, cert, key, ca } => {
                let mut config = config;
                config.tls = Some(rkube_agent::tls::from_files(&cert, &key, &ca)?);
                let client = rkube_agent::identity::kubeconfig_client(&kubeconfig, &args.server).await?;
                run_until_signalled(config, client, std::future::pending::<()>()).await.map(|_| ())
            }
            Identity::Join(opts) => run_joined(config, &opts).await,
        }
    })
}

/// Joins (or reuses the saved certificates), runs the agent, and restarts it with renewed certificates whenever
/// they are due (pods keep running across the restart).
async fn run_joined(config: rkube_agent::AgentConfig, opts: &rkube_agent::join::JoinOptions) -> anyhow::Result<()> {
    eprintln!("[1/2] node {}: credentials (joining {} if needed)", opts.node_name, opts.servers.join(","));
    let mut creds = rkube_agent::join::ensure_credentials(opts).await?;
    loop {
        let p = &creds.paths;
        let mut config = config.clone();
        config.tls = Some(rkube_agent::tls::from_files(&p.serving_cert, &p.serving_key, &p.ca)?);
        let client = rkube_agent::identity::kubeconfig_client(&p.kubeconfig, &opts.servers).await?;
        let renewal = rkube_agent::join::renew_when_due(opts, &creds);
        match run_until_signalled(config, client, renewal).await? {
            Some(Ok(renewed)) => {
                tracing::info!("certificates renewed: restarting the agent with them");
                creds = renewed;
            }
            Some(Err(e)) => return Err(e).context("renewing the node's certificates"),
            None => return Ok(()),
        }
    }
}

/// Runs the agent until a termination signal (`None`) or until `interrupt` completes (its output, after the
/// agent has stopped).
async fn run_until_signalled<T>(
    config: rkube_agent::AgentConfig,
    client: kube::Client,
    interrupt: impl std::future::Future<Output = T>,
) -> anyhow::Result<Option<T>> {
    let name = config.node_name.clone();
    eprintln!("node {name}: starting");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut agent = tokio::spawn(rkube_agent::run(config, client, stop, Some(ready_tx)));
    tokio::pin!(interrupt);
    let mut ready = ready;
    let mut waiting = true;
    let outcome = loop {
        tokio::select! {
            r = &mut ready, if waiting => {
                waiting = false;
                if r.is_ok() {
                    println!("rkube agent is ready: node {name} Ready");
                }
            }
            r = &mut agent => return r.context("the agent task panicked")?.context("the node agent failed").map(|()| None),
            out = &mut interrupt => break Some(out),
            _ = crate::signals::terminated() => break None,
        }
    };
    if outcome.is_none() {
        tracing::info!("shutting down (pods keep running; `rkube agent clean` removes them)");
    }
    let _ = stop_tx.send(true);
    agent.await.context("the agent task panicked")?.context("stopping the node agent")?;
    Ok(outcome)
}

/// The agent's tokio runtime. Its work waits on containerd and the API server (30 pods starting cost it 0.4 s of
/// CPU), so two workers serve it on any machine; every extra thread costs memory (a stack, and the allocator's
/// per-thread pages), which a node agent should not grow with the host's core count. Blocking threads (file
/// operations) are capped for the same reason.
fn agent_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(2))
        .max_blocking_threads(8)
        .enable_all()
        .build()
}
