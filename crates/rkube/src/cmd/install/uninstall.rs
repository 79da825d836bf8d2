//! `rkube uninstall`: stops and removes the units, then everything rkube made on the host: the agent's pods,
//! containerd and mounts (`rkube agent clean`), its links, iptables chains and nftables table (in this network
//! namespace), the CNI and flannel files, the config, the binary copy `install` made, and the data directory.
//! Each thing removed gets a line; what is already gone is skipped, so a second run prints nothing removed.

use std::path::{Path, PathBuf};

use rkube_install::settings::{self, Setting};
use rkube_install::unit::{self, ROLES};
use rkube_install::{files, iptables, links, nft, procs, systemd, under_root};

/// Flags of `rkube uninstall`.
#[derive(clap::Args, Debug)]
pub(crate) struct UninstallArgs {
    /// The root the files were installed under (as `rkube install --root`); links and rules are removed from
    /// this process's network namespace whatever the root.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Keep the data directory (store, certificates, kubeconfig); everything else goes.
    #[arg(long)]
    keep_data: bool,
    /// The data directory (default: `data-dir` in the config file, else /var/lib/rkube).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Collects what was removed and what failed, printing as it goes.
#[derive(Default)]
struct Report {
    removed: usize,
    failed: Vec<String>,
}

impl Report {
    fn removed(&mut self, what: impl std::fmt::Display) {
        println!("removed {what}");
        self.removed += 1;
    }

    fn failed(&mut self, what: impl std::fmt::Display) {
        eprintln!("rkube: failed: {what}");
        self.failed.push(what.to_string());
    }

    fn file(&mut self, path: &Path) {
        match files::remove_file(path) {
            Ok(true) => self.removed(path.display()),
            Ok(false) => {}
            Err(e) => self.failed(e),
        }
    }

    fn empty_dir(&mut self, path: &Path) {
        match files::remove_empty_dir(path) {
            Ok(true) => self.removed(path.display()),
            Ok(false) => {}
            Err(e) => self.failed(e),
        }
    }
}

/// What the installed config says about where rkube put things (defaults where it says nothing).
struct Layout {
    data_dir: PathBuf,
    bridge: String,
    cni_conf_dir: Option<PathBuf>,
    flannel_files: Vec<PathBuf>,
    kubeconfig: Option<PathBuf>,
}

fn layout(settings: &[Setting], data_dir: Option<PathBuf>) -> Layout {
    let get = |k: &str| settings::path(settings, k);
    let cni_conf_dir = get("cni-conf-dir").or_else(|| {
        // With an outside runtime the agent writes its conflist where that runtime reads: /etc/cni/net.d.
        get("container-runtime-endpoint").map(|_| PathBuf::from("/etc/cni/net.d"))
    });
    Layout {
        data_dir: data_dir.or_else(|| get("data-dir")).unwrap_or_else(|| PathBuf::from("/var/lib/rkube")),
        bridge: settings::text(settings, "cni-bridge").unwrap_or(rkube_install::CNI_BRIDGE).to_owned(),
        cni_conf_dir,
        flannel_files: vec![
            get("flannel-subnet-env").unwrap_or_else(|| rkube_install::DEFAULT_SUBNET_ENV.into()),
            get("flannel-docker-opts").unwrap_or_else(|| rkube_install::DEFAULT_DOCKER_OPTS.into()),
        ],
        kubeconfig: get("write-kubeconfig"),
    }
}

pub(crate) fn run(args: UninstallArgs) -> anyhow::Result<()> {
    let root = &args.root;
    let on_host = root == Path::new("/");
    let mut report = Report::default();
    let systemd = on_host && systemd::is_init();

    if systemd {
        for role in ROLES {
            let name = role.unit_name();
            if systemd::is_loaded(&name) && under_root(root, &unit::unit_path(role)).exists() {
                match systemd::systemctl(&["disable", "--now", &name]) {
                    Ok(_) => report.removed(format_args!("service {name} (stopped and disabled)")),
                    Err(e) => report.failed(e),
                }
            }
        }
    }

    // Anything still running would lose its data and put its rules and links back: stop it first.
    let running = procs::running();
    if !running.is_empty() {
        let list: Vec<String> = running.iter().map(|r| format!("rkube {} (PID {})", r.role, r.pid)).collect();
        anyhow::bail!(
            "{} running in this network namespace: stop it first (systemctl stop rkube-server rkube-agent, or kill \
             {}), then run `rkube uninstall` again",
            list.join(", "),
            running.iter().map(|r| r.pid.to_string()).collect::<Vec<_>>().join(" ")
        );
    }

    let config = under_root(root, Path::new(settings::DEFAULT_PATH));
    let settings = match settings::read(&config) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            report.failed(format_args!("{e} (using the default paths)"));
            Vec::new()
        }
    };
    let layout = layout(&settings, args.data_dir.clone());
    let data_dir = under_root(root, &layout.data_dir);

    // The agent's pods, its containerd and its mounts first: they hold the links and files removed after.
    match tokio::runtime::Runtime::new().map(|rt| rt.block_on(rkube_agent::clean::clean(&data_dir))) {
        Ok(Ok(c)) => {
            if c.sandboxes > 0 {
                report.removed(format_args!("{} pod sandbox(es)", c.sandboxes));
            }
            for m in &c.unmounted {
                report.removed(format_args!("mount {}", m.display()));
            }
            if let Some(b) = c.bridge {
                report.removed(format_args!("link {b}"));
            }
        }
        Ok(Err(e)) => report.failed(format_args!("cleaning the agent's node ({}): {e}", data_dir.display())),
        Err(e) => report.failed(format_args!("starting a runtime: {e}")),
    }

    match links::delete(&links::owned(&layout.bridge)) {
        Ok(done) => done.iter().for_each(|l| report.removed(format_args!("link {l}"))),
        Err(e) => report.failed(e),
    }
    match iptables::sweep() {
        Ok(done) => done.iter().for_each(|r| report.removed(format_args!("iptables {r}"))),
        Err(e) => report.failed(e),
    }
    match nft::delete_table() {
        Ok(Some(t)) => report.removed(format_args!("nftables table {t}")),
        Ok(None) => {}
        Err(e) => report.failed(e),
    }

    if let Some(dir) = &layout.cni_conf_dir {
        for name in [rkube_install::CONFLIST_NAME, rkube_agent::cni::CONFLIST] {
            report.file(&under_root(root, &dir.join(name)));
        }
    }
    for f in &layout.flannel_files {
        report.file(&under_root(root, f));
    }
    if let Some(parent) = layout.flannel_files[0].parent() {
        report.empty_dir(&under_root(root, parent));
    }
    if let Some(k) = &layout.kubeconfig {
        report.file(&under_root(root, k));
    }

    for role in ROLES {
        report.file(&under_root(root, &unit::unit_path(role)));
    }
    if systemd && let Err(e) = systemd::systemctl(&["daemon-reload"]) {
        report.failed(e);
    }
    let mark = under_root(root, Path::new(super::INSTALLED_MARK));
    if mark.exists() {
        report.file(&under_root(root, Path::new(super::BINARY)));
        report.file(&mark);
    }
    report.file(&config);
    if let Some(etc) = Path::new(settings::DEFAULT_PATH).parent() {
        report.empty_dir(&under_root(root, etc));
    }

    if !args.keep_data {
        match files::remove_tree(&data_dir) {
            Ok(true) => report.removed(data_dir.display()),
            Ok(false) => {}
            Err(e) => report.failed(e),
        }
    }

    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} thing(s) could not be removed (above); fix them and run `rkube uninstall` again",
            report.failed.len()
        );
    }
    if report.removed == 0 {
        println!("nothing to remove: rkube is not installed and left nothing here");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_follows_the_config() {
        let s = settings::parse(
            Path::new("c.yaml"),
            "data-dir: /srv/rk\ncni-bridge: br9\ncontainer-runtime-endpoint: /run/c.sock\nflannel-subnet-env: /x/s.env\n",
        )
        .unwrap();
        let l = layout(&s, None);
        assert_eq!(l.data_dir, Path::new("/srv/rk"));
        assert_eq!(l.bridge, "br9");
        assert_eq!(l.cni_conf_dir.as_deref(), Some(Path::new("/etc/cni/net.d")));
        assert_eq!(l.flannel_files, [PathBuf::from("/x/s.env"), PathBuf::from("/run/flannel/docker")]);
        let l = layout(&[], Some("/d".into()));
        assert_eq!((l.data_dir, l.bridge, l.cni_conf_dir), (PathBuf::from("/d"), "cni0".to_owned(), None));
    }
}
