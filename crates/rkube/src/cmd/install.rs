//! `rkube install server|agent [flags]`: copies the binary to /usr/local/bin, writes the flags into
//! /etc/rkube/config.yaml and a systemd unit running `rkube server` (or `agent`), and enables it when systemd
//! runs this host. `rkube uninstall` (in `install/uninstall.rs`) undoes all of it and what rkube made since.

mod uninstall;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap::parser::ValueSource;
use rkube_install::settings::{self, Setting, Value};
use rkube_install::unit::{self, Role};
use rkube_install::{systemd, under_root};

pub(crate) use uninstall::{UninstallArgs, run as uninstall};

/// Where the binary goes on the installed system.
pub(crate) const BINARY: &str = "/usr/local/bin/rkube";
/// Names the binary copy `install` made, so `uninstall` removes only a copy it made.
pub(crate) const INSTALLED_MARK: &str = "/etc/rkube/installed-binary";

/// What to install.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    /// A control-plane server (`rkube server`).
    Server,
    /// A node agent (`rkube agent`).
    Agent,
}

/// Flags of `rkube install`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example: rkube install server --tls-san api.example.com --node-label role=cp\n\
                        The flags after server|agent are that command's flags (see `rkube server --help`); they go \
                        into /etc/rkube/config.yaml, where they can be edited later.")]
pub(crate) struct InstallArgs {
    /// What to install: `server` or `agent`.
    #[arg(value_enum)]
    role: RoleArg,
    /// Install under this directory instead of / (images, tests): files go there and systemctl is not run.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Enable the unit but do not start it now.
    #[arg(long)]
    no_start: bool,
    /// Flags of `rkube server` or `rkube agent`, written into /etc/rkube/config.yaml.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "FLAGS")]
    flags: Vec<String>,
}

impl InstallArgs {
    /// `--root` and `--no-start` may also follow server|agent (neither command has such a flag): take them out.
    fn take_own_flags(&mut self) -> anyhow::Result<()> {
        let mut rest = Vec::new();
        let mut words = std::mem::take(&mut self.flags).into_iter();
        while let Some(w) = words.next() {
            match w.as_str() {
                "--no-start" => self.no_start = true,
                "--root" => self.root = words.next().context("--root needs a directory")?.into(),
                _ => match w.strip_prefix("--root=") {
                    Some(r) => self.root = r.into(),
                    None => rest.push(w),
                },
            }
        }
        self.flags = rest;
        Ok(())
    }
}

/// The settings `flags` give `rkube <sub>`, checked by clap as the command itself would check them.
fn settings_from_flags(sub: &str, flags: &[String]) -> anyhow::Result<Vec<Setting>> {
    let mut cmd = crate::Cli::command();
    cmd.build();
    let argv = ["rkube", sub].into_iter().map(str::to_owned).chain(flags.iter().cloned());
    let matches = match cmd.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) if e.use_stderr() => anyhow::bail!("the flags for `rkube {sub}`: {}", e.to_string().trim()),
        Err(e) => e.exit(),
    };
    let Some((_, m)) = matches.subcommand() else { anyhow::bail!("no subcommand {sub}") };
    if let Some((nested, _)) = m.subcommand() {
        anyhow::bail!("`rkube {sub} {nested}` is not a service; install `rkube {sub}` with its flags");
    }
    let sub_cmd = cmd.find_subcommand(sub).context("subcommand")?;
    let mut out = Vec::new();
    for arg in sub_cmd.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else { continue };
        if matches!(long, "help" | "version" | "config") || m.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let raw: Vec<String> = m.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
        let value = match arg.get_action() {
            clap::ArgAction::SetTrue => Value::Bool(m.get_flag(id)),
            clap::ArgAction::SetFalse => Value::Bool(!m.get_flag(id)),
            clap::ArgAction::Append => Value::List(raw),
            _ => Value::Text(raw.last().cloned().unwrap_or_default()),
        };
        out.push(Setting { key: long.to_owned(), value });
    }
    Ok(out)
}

/// Copies the running binary to `target` unless it is that file already; true when copied.
fn install_binary(target: &Path) -> anyhow::Result<bool> {
    let me = std::env::current_exe().context("finding the running binary")?;
    if target.canonicalize().ok() == me.canonicalize().ok() {
        return Ok(false);
    }
    let dir = target.parent().context("binary path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A running binary cannot be overwritten in place (ETXTBSY): copy beside it, then rename over it.
    let tmp = dir.join(".rkube.install.tmp");
    std::fs::copy(&me, &tmp).with_context(|| format!("copying {} to {}", me.display(), tmp.display()))?;
    std::os::unix::fs::chown(&tmp, Some(0), Some(0)).ok();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", tmp.display()))?;
    std::fs::rename(&tmp, target).with_context(|| format!("moving the binary to {}", target.display()))?;
    Ok(true)
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// What PID 1 is (`/proc/1/comm`), for the message when it is not systemd.
fn init_name() -> String {
    std::fs::read_to_string("/proc/1/comm").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn run(mut args: InstallArgs) -> anyhow::Result<()> {
    args.take_own_flags()?;
    let role = match args.role {
        RoleArg::Server => Role::Server,
        RoleArg::Agent => Role::Agent,
    };
    let sub = role.subcommand();
    let settings = settings_from_flags(sub, &args.flags)?;
    let root = &args.root;
    let on_host = root == Path::new("/");

    let binary = under_root(root, Path::new(BINARY));
    if install_binary(&binary)? {
        write(&under_root(root, Path::new(INSTALLED_MARK)), &format!("{BINARY}\n"), 0o644)?;
        println!("installed {}", binary.display());
    } else {
        println!("{} is already the running binary", binary.display());
    }

    let config = under_root(root, Path::new(settings::DEFAULT_PATH));
    if settings.is_empty() && config.exists() {
        println!("kept {} (no flags given)", config.display());
    } else {
        let header = format!(
            "Settings of `rkube {sub}`, written by `rkube install {sub}`: keys are its flag names (rkube {sub} --help).\n\
             Flags on the command line and RKUBE_* variables (/etc/default/rkube-{sub}) win over this file."
        );
        // 0600: the file may hold a token.
        write(&config, &settings::render(&header, &settings), 0o600)?;
        println!("wrote {}", config.display());
    }

    let unit_file = under_root(root, &unit::unit_path(role));
    write(&unit_file, &unit::render(role, Path::new(BINARY)), 0o644)?;
    println!("wrote {}", unit_file.display());

    let name = role.unit_name();
    let now = if args.no_start { "" } else { " --now" };
    if !on_host {
        println!(
            "installed under {}; on that system run: systemctl daemon-reload && systemctl enable{now} {name}",
            root.display()
        );
    } else if systemd::is_init() {
        systemd::systemctl(&["daemon-reload"])?;
        let mut enable = vec!["enable", &name];
        if !args.no_start {
            enable.insert(1, "--now");
        }
        systemd::systemctl(&enable)?;
        println!("enabled {name}{}", if args.no_start { "" } else { " and started it" });
    } else {
        println!(
            "systemd is not running this host (PID 1 is {}): the unit is written but not enabled. On a systemd host \
             run: systemctl daemon-reload && systemctl enable{now} {name}; here, run `{BINARY} {sub}` (it reads {}).",
            init_name(),
            settings::DEFAULT_PATH
        );
    }
    Ok(())
}
