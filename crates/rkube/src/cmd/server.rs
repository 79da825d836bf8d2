//! `rkube server`: the control plane (store, PKI, API server, controllers, scheduler) and, unless
//! `--disable-agent`, the embedded node agent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::cmd::component;
use crate::store::{StoreArgs, StoreConfig};

/// Flags of `rkube server`, named as k3s names them where k3s has one.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerArgs {
    /// Where the server keeps its state (store, certificates, kubeconfig).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    /// Port of the HTTPS API.
    #[arg(long, env = "RKUBE_HTTPS_LISTEN_PORT", default_value_t = 6443, help_heading = "(listener)")]
    https_listen_port: u16,
    /// Address the API listens on.
    #[arg(long, env = "RKUBE_BIND_ADDRESS", default_value = "0.0.0.0", help_heading = "(listener)")]
    bind_address: IpAddr,
    /// Address clients and pods use to reach the API (default: the node IP, never 127.0.0.1).
    #[arg(long, env = "RKUBE_ADVERTISE_ADDRESS", help_heading = "(listener)")]
    advertise_address: Option<IpAddr>,
    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san", env = "RKUBE_TLS_SAN", value_delimiter = ',', help_heading = "(listener)")]
    tls_san: Vec<String>,
    /// Where to write the admin kubeconfig (default <data-dir>/kubeconfig.yaml).
    #[arg(long, env = "RKUBE_WRITE_KUBECONFIG", help_heading = "(client)")]
    write_kubeconfig: Option<PathBuf>,
    /// Service ClusterIP range.
    #[arg(long, env = "RKUBE_SERVICE_CIDR", default_value = "10.254.0.0/16", help_heading = "(networking)")]
    service_cidr: String,
    /// Run the control plane only, without a node agent on this machine.
    #[arg(long, env = "RKUBE_DISABLE_AGENT", help_heading = "(components)")]
    disable_agent: bool,
    /// Do not run the controllers in this process: run `rkube controller-manager --kubeconfig ...` instead
    /// (k3s's flag). The CSR approver and signer stay here, with the CA key.
    #[arg(long, env = "RKUBE_DISABLE_CONTROLLER_MANAGER", help_heading = "(components)")]
    disable_controller_manager: bool,
    /// Do not run the scheduler in this process: run `rkube scheduler --kubeconfig ...` instead (k3s's flag).
    #[arg(long, env = "RKUBE_DISABLE_SCHEDULER", help_heading = "(components)")]
    disable_scheduler: bool,
    /// A bootstrap token agents may join with, kept valid without expiry: `<id>.<secret>` (`rkube token generate`)
    /// or a join token `K10<CA hash>::<id>.<secret>`. The join token is written to <data-dir>/server/token.
    #[arg(long, env = "RKUBE_TOKEN", help_heading = "(cluster)")]
    token: Option<String>,
    /// Lifetime of the certificates the CSR signer issues (kube-controller-manager's flag).
    #[arg(long, env = "RKUBE_CLUSTER_SIGNING_DURATION", default_value = "8760h", value_parser = humantime::parse_duration, help_heading = "(controllers)")]
    cluster_signing_duration: std::time::Duration,
    #[command(flatten)]
    node_controllers: crate::cmd::controllerargs::NodeControllerArgs,
    /// Changes kept in memory per resource for watches that resume from an older resourceVersion or fall behind
    /// (upstream's flag of this name; rkube serves every watch from its cache, so at least 1).
    #[arg(long, env = "RKUBE_DEFAULT_WATCH_CACHE_SIZE", default_value_t = rkube_apiserver::DEFAULT_WATCH_CACHE_SIZE, help_heading = "(listener)")]
    default_watch_cache_size: usize,
    /// Host checks (as `rkube doctor` names them) whose FAIL only warns at start; `all` for every check.
    #[arg(long, env = "RKUBE_IGNORE_PREFLIGHT_ERRORS", value_delimiter = ',', help_heading = "(components)")]
    ignore_preflight_errors: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// The node (and the embedded agent's) flags, shared with `rkube agent`.
    #[command(flatten)]
    node: crate::cmd::agent::NodeArgs,
}

/// The validated server configuration.
struct ServerConfig {
    data_dir: PathBuf,
    store: StoreConfig,
    bind: SocketAddr,
    advertise: IpAddr,
    node_name: String,
    node_ip: IpAddr,
    kubeconfig: PathBuf,
    tls_san: Vec<String>,
    service_first_ip: IpAddr,
    service_cidr: String,
    cluster_domain: String,
    ignore_preflight_errors: Vec<String>,
    /// `None` with --disable-controller-manager.
    nodes: Option<rkube_controllers::NodesConfig>,
    /// `--disable-scheduler`.
    disable_scheduler: bool,
    /// The embedded agent's configuration (`None` with --disable-agent).
    agent: Option<rkube_agent::AgentConfig>,
    /// `--token`.
    token: Option<crate::cmd::token::ServerToken>,
    /// `--cluster-signing-duration`.
    signing_duration: std::time::Duration,
    /// `--default-watch-cache-size`.
    watch_cache_size: usize,
}

impl ServerArgs {
    fn validate(&self) -> anyhow::Result<ServerConfig> {
        let mut problems = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            problems.push("--data-dir is empty; give a directory such as /var/lib/rkube".to_owned());
        }
        let store = self.store.validate(&self.data_dir, &mut problems);
        crate::cmd::controllerargs::parse_cidr("--service-cidr", &self.service_cidr, &mut problems);
        if let Err(e) = rkube_apiserver::services::ServiceRanges::parse(&self.service_cidr) {
            problems.push(format!("--service-cidr: {e}"));
        }
        let nodes = self.node_controllers.validate(&mut problems);
        if self.cluster_signing_duration < std::time::Duration::from_secs(10) {
            problems.push("--cluster-signing-duration must be at least 10s (upstream's default is 8760h)".to_owned());
        }
        if self.default_watch_cache_size == 0 {
            problems.push(
                "--default-watch-cache-size must be at least 1: rkube serves every watch from its cache (upstream's 0 turns the cache off)"
                    .to_owned(),
            );
        }
        let service_first_ip = match rkube_pki::service_cidr_first_ip(&self.service_cidr) {
            Ok(ip) => ip,
            Err(e) => {
                problems.push(format!("--service-cidr {:?}: {e}", self.service_cidr));
                IpAddr::V4(Ipv4Addr::new(10, 254, 0, 1))
            }
        };
        for san in &self.tls_san {
            if let Err(e) = rkube_pki::San::parse(san) {
                problems.push(format!("--tls-san {san:?}: {e}"));
            }
        }
        let cluster_domain = &self.node.cluster_domain;
        if cluster_domain.is_empty() || cluster_domain.starts_with('.') || cluster_domain.ends_with('.') {
            problems.push(format!("--cluster-domain {cluster_domain:?} must be a DNS domain like cluster.local"));
        }
        let node_ip = self.node.node_ip();
        let node_name = self.node.node_name();
        let agent = match self.disable_agent {
            true => None,
            false => match self.node.agent_config(
                &self.data_dir,
                &self.node_controllers.cluster_cidr,
                self.node_controllers.node_cidr_mask_size,
            ) {
                Ok(c) => Some(c),
                Err(rkube_agent::Error::Invalid(p)) => {
                    problems.extend(p.lines().map(|l| l.trim_start_matches("  - ").to_owned()));
                    None
                }
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            },
        };
        if let Some(a) = agent.as_ref().filter(|_| !self.node_controllers.allocate_node_cidrs)
            && a.network.flags.etcd_endpoints.is_empty()
        {
            problems.push(
                "--allocate-node-cidrs=false leaves this node without a pod range: lease subnets from etcd \
                 (--flannel-etcd-endpoints) or keep node IPAM on"
                    .to_owned(),
            );
        }
        if node_name.is_empty()
            || node_name.len() > 253
            || !node_name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        {
            problems.push(format!("node name {node_name:?} is not a lowercase DNS name; pass --node-name"));
        }
        let token = match self.token.as_deref().map(crate::cmd::token::parse_server_token).transpose() {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let store = match store {
            Some(s) if problems.is_empty() => s,
            _ => anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - ")),
        };
        Ok(ServerConfig {
            data_dir: self.data_dir.clone(),
            store,
            bind: SocketAddr::new(self.bind_address, self.https_listen_port),
            advertise: self.advertise_address.unwrap_or(node_ip),
            node_name,
            node_ip,
            kubeconfig: self.write_kubeconfig.clone().unwrap_or_else(|| self.data_dir.join("kubeconfig.yaml")),
            tls_san: self.tls_san.clone(),
            service_first_ip,
            service_cidr: self.service_cidr.clone(),
            cluster_domain: self.node.cluster_domain.clone(),
            ignore_preflight_errors: self.ignore_preflight_errors.clone(),
            nodes: (!self.disable_controller_manager).then_some(nodes),
            disable_scheduler: self.disable_scheduler,
            agent,
            token,
            signing_duration: self.cluster_signing_duration,
            watch_cache_size: self.default_watch_cache_size,
        })
    }
}

pub(crate) fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let steps = if config.agent.is_some() { 5 } else { 4 };
    crate::preflight::run(
        &config.data_dir,
        Some(config.bind.port()),
        config.agent.as_ref(),
        &config.ignore_preflight_errors,
    )
    .await?;
    eprintln!("[1/{steps}] store: opening");
    let store = crate::store::open(&config.store).await?;
    let revision = store.current_revision().await?;
    tracing::info!(store = %store.describe(), revision, "store ready");

    eprintln!("[2/{steps}] certificates: {}", config.data_dir.join("server/tls").display());
    let mut pki_config =
        rkube_pki::PkiConfig::new(config.data_dir.join("server").join("tls"), config.node_name.clone());
    pki_config.node_ips = vec![config.node_ip];
    if config.advertise != config.node_ip {
        pki_config.node_ips.push(config.advertise);
    }
    pki_config.service_cidr_first_ip = config.service_first_ip;
    pki_config.cluster_domain = config.cluster_domain.clone();
    pki_config.extra_sans = config.tls_san.clone();
    let pki =
        Arc::new(rkube_pki::Pki::load_or_create(&pki_config).context("creating or loading the cluster certificates")?);
    let local = if config.bind.ip().is_unspecified() || config.bind.ip().is_loopback() {
        "127.0.0.1".to_owned()
    } else {
        config.bind.ip().to_string()
    };
    let url = format!("https://{local}:{}", config.bind.port());
    pki.write_admin_kubeconfig(&config.kubeconfig, &url)
        .with_context(|| format!("writing the admin kubeconfig {}", config.kubeconfig.display()))?;
    // The controllers run in this process but reach the API like any client: HTTPS to `url`, as
    // system:kube-controller-manager (a client certificate issued now, kept in memory).
    let controllers_config = match &config.nodes {
        Some(nodes) => {
            let mut c = rkube_controllers::ControllersConfig::in_process(&url, &pki, &config.node_name)
                .await
                .context("configuring the controllers")?;
            c.nodes = nodes.clone();
            Some(c)
        }
        None => None,
    };
    // The scheduler, likewise, as system:kube-scheduler.
    let scheduler_config = match config.disable_scheduler {
        true => None,
        false => Some(rkube_scheduler::SchedulerConfig {
            kube: rkube_client::config::in_process(&url, &pki, rkube_scheduler::USER, &[rkube_scheduler::GROUP])
                .await
                .context("configuring the scheduler")?,
            identity: rkube_client::config::identity(&config.node_name),
            leader_elect: true,
            health: None,
        }),
    };

    // The embedded agent, as system:node:<name> (in system:masters until RBAC has the node roles), with a
    // serving certificate for the kubelet port issued by the same CA.
    let agent_parts = match config.agent.clone() {
        Some(mut agent_config) => {
            let name = agent_config.node_name.clone();
            agent_config.tls = Some(
                rkube_agent::tls::in_process(&pki, &name, agent_config.node_ip)
                    .context("configuring the node agent's serving certificate")?,
            );
            let client = rkube_agent::identity::in_process_client(&url, &pki, &name)
                .await
                .context("configuring the node agent's identity")?;
            Some((agent_config, client))
        }
        None => None,
    };

    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    if let StoreConfig::Etcd { compaction_interval, .. } = &config.store {
        tokio::spawn(rkube_store::compactor::run(store.clone(), *compaction_interval, shutdown.clone()));
    }
    eprintln!("[3/{steps}] API server: https://{}:{}", config.advertise, config.bind.port());
    let (ready_tx, mut ready) = tokio::sync::watch::channel(false);
    let join_pki = pki.clone();
    let api_config = rkube_apiserver::ApiServerConfig {
        bind: config.bind,
        advertise: SocketAddr::new(config.advertise, config.bind.port()).to_string(),
        key_prefix: config.store.key_prefix().to_owned(),
        pki,
        service_ranges: rkube_apiserver::services::ServiceRanges::parse(&config.service_cidr)
            .map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?,
        watch_cache_size: config.watch_cache_size,
    };
    let mut api = tokio::spawn(rkube_apiserver::run(api_config, store, shutdown.clone(), ready_tx));
    tokio::select! {
        r = ready.wait_for(|r| *r) => {
            if r.is_err() {
                // The API server dropped its readiness sender: it failed; its error says why.
                (&mut api).await.context("the API server task panicked")??;
                anyhow::bail!("the API server stopped before it was ready");
            }
        }
        r = &mut api => { r.context("the API server task panicked")??; anyhow::bail!("the API server stopped"); }
    }
    // Controllers get their own stop signal: at shutdown they stop (and release their lease) while the API still answers.
    let (controllers_stop_tx, controllers_stop) = tokio::sync::watch::channel(false);
    // The scheduler shares that stop signal.
    let mut controllers = match controllers_config {
        Some(c) => {
            let stop = controllers_stop.clone();
            Some(component::start("controllers", |ready| tokio::spawn(rkube_controllers::run(c, stop, ready))).await?)
        }
        None => {
            eprintln!("controllers: not run here (--disable-controller-manager): run `rkube controller-manager`");
            None
        }
    };
    let mut scheduler = match scheduler_config {
        Some(c) => {
            let stop = controllers_stop.clone();
            Some(component::start("scheduler", |ready| tokio::spawn(rkube_scheduler::run(c, stop, ready))).await?)
        }
        None => {
            eprintln!("scheduler: not run here (--disable-scheduler): run `rkube scheduler`");
            None
        }
    };
    // Joining nodes: the CSR approver and signer (with the CA key), and the --token agents use.
    let join_client = kube::Client::try_from(
        rkube_client::config::in_process(&url, &join_pki, rkube_pki::ADMIN_USER, &[rkube_pki::MASTERS_GROUP])
            .await
            .context("configuring the certificate controllers")?,
    )?;
    let ca_key = std::fs::read_to_string(&join_pki.paths().ca_key)
        .with_context(|| format!("reading {}", join_pki.paths().ca_key.display()))?;
    let signer =
        rkube_controllers_certificates::Signer::from_pem(join_pki.ca_cert_pem(), &ca_key, config.signing_duration)?;
    tokio::spawn(rkube_controllers_certificates::run(join_client.clone(), signer, controllers_stop.clone()));
    if let Some(token) = &config.token {
        let path = config.data_dir.join("server").join("token");
        crate::cmd::token::ensure_server_token(&join_client, token, join_pki.ca_cert_pem(), &path).await?;
        eprintln!("join token (for `rkube agent --token`): {}", path.display());
    }
    eprintln!("[4/{steps}] {}", if config.agent.is_some() { "control plane ready" } else { "ready" });
    // The embedded agent stops first at shutdown (while the API still answers); pods keep running.
    let (agent_stop_tx, agent_stop) = tokio::sync::watch::channel(false);
    let mut agent = match agent_parts {
        Some((agent_config, client)) => Some(start_agent(agent_config, client, agent_stop).await?),
        None => None,
    };
    println!(
        "rkube server is ready. Use kubectl with:\n  export KUBECONFIG={}\n  kubectl get namespaces",
        config.kubeconfig.display()
    );
    let outcome = tokio::select! {
        r = &mut api => { r.context("the API server task panicked")??; Ok(()) }
        r = component::finished(controllers.as_mut()) => Err(component::ended("controllers", r)),
        r = component::finished(scheduler.as_mut()) => Err(component::ended("scheduler", r)),
        r = component::finished(agent.as_mut()) => {
            agent = None;
            Err(component::ended("node agent", r))
        }
        _ = crate::signals::terminated() => { tracing::info!("shutting down"); Ok(()) }
    };
    let _ = agent_stop_tx.send(true);
    if let Some(mut a) = agent {
        match tokio::time::timeout(std::time::Duration::from_secs(30), &mut a).await {
            Ok(Ok(Err(e))) => tracing::warn!("the node agent stopped with: {e}"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the node agent did not stop within 30 s");
                a.abort();
            }
        }
    }
    let _ = controllers_stop_tx.send(true);
    if let Some(c) = controllers.as_mut().filter(|c| !c.is_finished()) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), c).await;
    }
    if let Some(c) = scheduler.as_mut().filter(|c| !c.is_finished()) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), c).await;
    }
    let _ = shutdown_tx.send(true);
    outcome
}

type AgentTask = tokio::task::JoinHandle<Result<(), rkube_agent::Error>>;

/// Starts the embedded node agent and waits until its node is Ready (or it fails).
async fn start_agent(
    config: rkube_agent::AgentConfig,
    client: rkube_agent::Client,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<AgentTask> {
    let name = config.node_name.clone();
    eprintln!("[5/5] node {name}: starting the agent (container runtime, registration, kubelet)");
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut task = tokio::spawn(rkube_agent::run(config, client, stop, Some(ready_tx)));
    tokio::select! {
        r = ready => {
            if r.is_err() {
                (&mut task).await.context("the node agent task panicked")?.context("starting the node agent")?;
                anyhow::bail!("the node agent stopped before its node was Ready");
            }
        }
        r = &mut task => {
            r.context("the node agent task panicked")?.context("starting the node agent")?;
            anyhow::bail!("the node agent stopped before its node was Ready");
        }
    }
    eprintln!("[5/5] node {name} Ready");
    Ok(task)
}
