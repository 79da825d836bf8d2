//! `/etc/rkube/config.yaml` (or `--config FILE`, `RKUBE_CONFIG`): every flag of `rkube server` and `rkube agent`
//! settable in a file, k3s style (`node-label: [a=b, c=d]`, `disable-agent: true`). The file's settings become
//! `--key=value` arguments placed right after the subcommand, except those whose flag is on the command line or
//! whose RKUBE_* variable is set: flags win over variables, which win over the file. The keys are checked
//! against the subcommand's flags as clap declares them, so the file can never drift from the command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, CommandFactory};
use rkube_install::settings::{self, Setting, Value};

/// The subcommands that read the file.
const READERS: &[&str] = &["server", "agent"];

/// The command line with the config file's settings added as flags (flags given on the command line win). A
/// bad file ends the process with an error naming the file, the key and what to do.
pub(crate) fn args(argv: Vec<OsString>) -> Vec<OsString> {
    match with_file(argv) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("rkube: error: {e}");
            std::process::exit(2);
        }
    }
}

/// Where the command line names the subcommand (and a nested one, like `agent clean`) and which flags it gives.
struct Scan {
    /// The subcommand path (`["agent", "clean"]`).
    path: Vec<String>,
    /// Index in argv after which the file's flags go.
    insert_at: usize,
    /// `--config` as given.
    config: Option<PathBuf>,
    /// Long flag names given on the command line (without `--`).
    given: Vec<String>,
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn find_long<'a>(cmd: &'a clap::Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name)))
}

/// Walks argv as clap would: subcommands, and which flags consume the next word as their value.
fn scan(root: &clap::Command, argv: &[String]) -> Scan {
    let mut s = Scan { path: Vec::new(), insert_at: 0, config: None, given: Vec::new() };
    let mut cmd = root;
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            break;
        }
        if let Some(flag) = a.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (flag, None),
            };
            let arg = find_long(cmd, name);
            if name == "config" {
                s.config = inline.map(PathBuf::from).or_else(|| argv.get(i + 1).map(PathBuf::from));
            } else if let Some(arg) = arg {
                s.given.push(arg.get_long().unwrap_or(name).to_owned());
            }
            // `--config` is global: clap copies it into subcommands only when it builds them.
            if inline.is_none() && (name == "config" || arg.is_some_and(takes_value)) {
                i += 1;
            }
        } else if !a.starts_with('-')
            && let Some(sub) = cmd.find_subcommand(a)
        {
            s.path.push(sub.get_name().to_owned());
            s.insert_at = i + 1;
            cmd = sub;
        }
        i += 1;
    }
    s
}

/// The closest flag name to `key`, if one is close enough to be what was meant.
fn closest<'a>(cmd: &'a clap::Command, key: &str) -> Option<&'a str> {
    cmd.get_arguments()
        .filter_map(Arg::get_long)
        .map(|l| (strsim::jaro_winkler(key, l), l))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, l)| l)
}

/// The `--key=value` arguments for one setting, or what is wrong with its type.
fn to_args(arg: &Arg, s: &Setting) -> Result<Vec<String>, String> {
    let key = &s.key;
    let switch = |on: bool| if on { vec![format!("--{key}")] } else { Vec::new() };
    match (arg.get_action(), &s.value) {
        (ArgAction::SetTrue, Value::Bool(b)) => Ok(switch(*b)),
        (ArgAction::SetFalse, Value::Bool(b)) => Ok(switch(!*b)),
        (ArgAction::SetTrue | ArgAction::SetFalse, v) => {
            Err(format!("key {key} is a switch and takes true or false (`{key}: true`), not {}", describe(v)))
        }
        (ArgAction::Set, Value::List(_)) => Err(format!("key {key} takes one value, not a list; write `{key}: VALUE`")),
        (ArgAction::Set, Value::Text(t)) => Ok(vec![format!("--{key}={t}")]),
        (ArgAction::Set, Value::Bool(b)) => Ok(vec![format!("--{key}={b}")]),
        (ArgAction::Append, Value::List(items)) => Ok(items.iter().map(|v| format!("--{key}={v}")).collect()),
        (ArgAction::Append, Value::Text(t)) => Ok(vec![format!("--{key}={t}")]),
        (ArgAction::Append, Value::Bool(b)) => Ok(vec![format!("--{key}={b}")]),
        (action, _) => Err(format!("key {key} cannot be set in the file ({action:?} flag)")),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Bool(b) => format!("{b}"),
        Value::Text(t) => format!("the text {t:?}"),
        Value::List(_) => "a list".to_owned(),
    }
}

/// clap's own check of a value (`https-listen-port: abc`), so the error can name the file and the key.
fn check_value(root: &clap::Command, path: &[String], key: &str, args: &[String]) -> Result<(), String> {
    let mut argv = vec!["rkube".to_owned()];
    argv.extend(path.iter().cloned());
    argv.extend(args.iter().cloned());
    let Err(e) = root.clone().try_get_matches_from(&argv) else { return Ok(()) };
    use clap::error::ErrorKind as K;
    let flag = format!("--{key}");
    let text = e.to_string();
    let ours = matches!(e.kind(), K::ValueValidation | K::InvalidValue) && text.contains(&flag);
    match ours {
        true => Err(format!("key {key}: {}", text.lines().next().unwrap_or_default().trim_start_matches("error: "))),
        false => Ok(()),
    }
}

/// The config file to read and whether it was named: `--config`, else RKUBE_CONFIG, else the default (which may
/// be absent). An empty name reads no file (what `rkube cluster` nodes sharing a host with an installed rkube want).
fn file(scan: &Scan) -> Option<(PathBuf, bool)> {
    match scan.config.clone().or_else(|| std::env::var_os("RKUBE_CONFIG").map(PathBuf::from)) {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some((p, true)),
        None => Some((PathBuf::from(settings::DEFAULT_PATH), false)),
    }
}

fn with_file(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let words: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let root = crate::Cli::command();
    let scan = scan(&root, &words);
    if !scan.path.first().is_some_and(|s| READERS.contains(&s.as_str())) {
        return Ok(argv);
    }
    let Some((path, explicit)) = file(&scan) else { return Ok(argv) };
    let settings = match settings::read(&path).map_err(|e| e.to_string())? {
        Some(s) => s,
        None if explicit => {
            return Err(format!("config file {} does not exist (from --config or RKUBE_CONFIG)", path.display()));
        }
        None => return Ok(argv),
    };
    let extra = translate(&root, &scan, &path, &settings, |name| std::env::var_os(name).is_some())?;
    let mut out = argv;
    let tail = out.split_off(scan.insert_at);
    out.extend(extra.into_iter().map(OsString::from));
    out.extend(tail);
    Ok(out)
}

/// The arguments `settings` (read from `path`) add to the command line `scan` describes; `env_set` says whether
/// a variable is set.
fn translate(
    root: &clap::Command,
    scan: &Scan,
    path: &Path,
    settings: &[Setting],
    env_set: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let mut cmd = root;
    for name in &scan.path {
        cmd = cmd.find_subcommand(name).ok_or_else(|| format!("no subcommand {name}"))?;
    }
    let usage = format!("rkube {}", scan.path.join(" "));
    let err = |m: String| format!("config file {}: {m}", path.display());
    let mut out = Vec::new();
    for s in settings {
        let arg = find_long(cmd, &s.key).filter(|a| !matches!(a.get_long(), Some("help" | "version" | "config")));
        let Some(arg) = arg else {
            let hint = match closest(cmd, &s.key) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("the keys are the flag names of `{usage} --help` without the leading --"),
            };
            return Err(err(format!("unknown key {:?} for `{usage}`; {hint}", s.key)));
        };
        let long = arg.get_long().unwrap_or(&s.key);
        let args = to_args(arg, s).map_err(err)?;
        check_value(root, &scan.path, &s.key, &args).map_err(err)?;
        let on_command_line = scan.given.iter().any(|g| g == long);
        let in_env = arg.get_env().is_some_and(|e| env_set(&e.to_string_lossy()));
        if !on_command_line && !in_env {
            out.extend(args);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(argv: &[&str], file: &str, env: &[&str]) -> Result<Vec<String>, String> {
        let root = crate::Cli::command();
        let words: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let scan = scan(&root, &words);
        let path = Path::new("/etc/rkube/config.yaml");
        let settings = settings::parse(path, file).map_err(|e| e.to_string())?;
        translate(&root, &scan, path, &settings, |n| env.contains(&n))
    }

    #[test]
    fn settings_become_flags_and_lists_repeat() {
        let got = run(
            &["rkube", "server"],
            "node-label: [a=b, c=d]\ndisable-agent: true\ntls-san: [x]\nhttps-listen-port: 6444\n\
             allocate-node-cidrs: false\ndisable-proxy: false\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "--node-label=a=b",
                "--node-label=c=d",
                "--disable-agent",
                "--tls-san=x",
                "--https-listen-port=6444",
                "--allocate-node-cidrs=false"
            ]
        );
    }

    #[test]
    fn flags_and_variables_win_over_the_file() {
        let file = "data-dir: /f\nnode-name: filenode\nhttps-listen-port: 1\nnode-label: [a=b]\n";
        let argv = ["rkube", "--config", "/x.yaml", "server", "--node-name", "n", "--node-label=c=d"];
        let got = run(&argv, file, &["RKUBE_HTTPS_LISTEN_PORT"]).unwrap();
        assert_eq!(got, ["--data-dir=/f"]);
        let s = scan(&crate::Cli::command(), &argv.map(String::from));
        assert_eq!((s.path, s.insert_at, s.config), (vec!["server".to_owned()], 4, Some(PathBuf::from("/x.yaml"))));
    }

    #[test]
    fn agent_clean_gets_only_its_own_flags() {
        let argv = ["rkube", "agent", "--node-name", "clean", "clean"];
        let s = scan(&crate::Cli::command(), &argv.map(String::from));
        assert_eq!((s.path, s.insert_at), (vec!["agent".to_owned(), "clean".to_owned()], 5));
        assert_eq!(run(&argv, "data-dir: /d\n", &[]).unwrap(), ["--data-dir=/d"]);
        let e = run(&argv, "node-name: n\n", &[]).unwrap_err();
        assert!(e.contains("unknown key \"node-name\" for `rkube agent clean`"), "{e}");
    }

    #[test]
    fn bad_keys_and_types_are_named() {
        let e = run(&["rkube", "server"], "node-labels: [a=b]\n", &[]).unwrap_err();
        assert_eq!(
            e,
            "config file /etc/rkube/config.yaml: unknown key \"node-labels\" for `rkube server`; did you mean `node-label`?"
        );
        let e = run(&["rkube", "server"], "disable-agent: yes please\n", &[]).unwrap_err();
        assert!(e.contains("key disable-agent is a switch and takes true or false"), "{e}");
        let e = run(&["rkube", "server"], "data-dir: [a, b]\n", &[]).unwrap_err();
        assert!(e.contains("key data-dir takes one value, not a list"), "{e}");
        let e = run(&["rkube", "server"], "https-listen-port: lots\n", &[]).unwrap_err();
        assert!(
            e.starts_with("config file /etc/rkube/config.yaml: key https-listen-port: invalid value 'lots'"),
            "{e}"
        );
        let e = run(&["rkube", "agent"], "disable-agent: true\n", &[]).unwrap_err();
        assert!(e.contains("unknown key \"disable-agent\" for `rkube agent`"), "{e}");
        let e = run(&["rkube", "server"], "zzzz: 1\n", &[]).unwrap_err();
        assert!(e.contains("the keys are the flag names of `rkube server --help`"), "{e}");
    }

    #[test]
    fn other_subcommands_ignore_the_file() {
        let argv: Vec<OsString> = ["rkube", "--config", "/nonexistent/x.yaml", "doctor"].map(OsString::from).to_vec();
        assert_eq!(with_file(argv.clone()).unwrap(), argv);
        let argv: Vec<OsString> = ["rkube", "server", "--config=/nonexistent/x.yaml"].map(OsString::from).to_vec();
        assert!(with_file(argv).unwrap_err().contains("/nonexistent/x.yaml does not exist"));
        let argv: Vec<OsString> = ["rkube", "server", "--config="].map(OsString::from).to_vec();
        assert_eq!(with_file(argv.clone()).unwrap(), argv, "an empty name reads no file");
    }
}
