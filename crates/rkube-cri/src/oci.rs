//! Builds OCI image-layout archives (what `ctr images import` and `rkube images import` load) from a list of
//! files, directories and symlinks: one uncompressed layer, a config with the process settings, a manifest and
//! an index naming the image. Used for rkube's pause image and by every e2e test to make its busybox image.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Media type of an OCI image index.
pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image manifest.
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation containerd names an imported image by.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation with the image's tag.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The `PATH` images get unless they set their own.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One thing in the image's filesystem.
#[derive(Clone, Debug)]
enum Entry {
    File { path: String, data: Vec<u8>, mode: u32 },
    Dir { path: String, mode: u32 },
    Symlink { path: String, target: String },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::File { path, .. } | Entry::Dir { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

/// An image to build: its name, filesystem entries and process settings.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    name: String,
    entries: Vec<Entry>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: String,
    user: String,
}

impl ImageBuilder {
    /// An empty image named `name` (normalised as containerd and the kubelet do: `busybox` is
    /// `docker.io/library/busybox:latest`).
    pub fn new(name: &str) -> ImageBuilder {
        ImageBuilder {
            name: crate::images::normalize(name),
            entries: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: vec![DEFAULT_PATH.to_string()],
            working_dir: String::new(),
            user: String::new(),
        }
    }

    /// The image's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a regular file (`mode` e.g. `0o755`). Missing parent directories are added (0755).
    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> ImageBuilder {
        self.entries.push(Entry::File { path: clean(path), data: data.into(), mode });
        self
    }

    /// Adds a directory (`mode` e.g. `0o1777` for `/tmp`).
    pub fn dir(mut self, path: &str, mode: u32) -> ImageBuilder {
        self.entries.push(Entry::Dir { path: clean(path), mode });
        self
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> ImageBuilder {
        self.entries.push(Entry::Symlink { path: clean(path), target: target.to_string() });
        self
    }

    /// The config's `Entrypoint`.
    pub fn entrypoint<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> ImageBuilder {
        self.entrypoint = args.into_iter().map(Into::into).collect();
        self
    }

    /// The config's `Cmd`.
    pub fn cmd<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> ImageBuilder {
        self.cmd = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds `NAME=value` to the config's `Env` (replacing an earlier `NAME`, e.g. the default `PATH`).
    pub fn env(mut self, name: &str, value: &str) -> ImageBuilder {
        self.env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name));
        self.env.push(format!("{name}={value}"));
        self
    }

    /// The config's `WorkingDir`.
    pub fn working_dir(mut self, dir: &str) -> ImageBuilder {
        self.working_dir = dir.to_string();
        self
    }

    /// The config's `User` (`uid`, `uid:gid` or a name from the image's `/etc/passwd`).
    pub fn user(mut self, user: &str) -> ImageBuilder {
        self.user = user.to_string();
        self
    }

    /// The OCI image-layout tar.
    pub fn build(&self) -> Result<Vec<u8>> {
        let failed = |e: std::io::Error| Error::Image { image: self.name.clone(), reason: e.to_string() };
        let layer = self.layer().map_err(failed)?;
        let layer_digest = digest(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": host_architecture(),
            "os": "linux",
            "config": self.process_config(),
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
            "history": [{ "created_by": "rkube ImageBuilder" }],
        }))
        .map_err(|e| Error::Image { image: self.name.clone(), reason: e.to_string() })?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": digest(&config), "size": config.len() },
            "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len() }],
        }))
        .map_err(|e| Error::Image { image: self.name.clone(), reason: e.to_string() })?;
        let tag = self.name.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/')).unwrap_or("latest");
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": digest(&manifest),
                "size": manifest.len(),
                "platform": { "architecture": host_architecture(), "os": "linux" },
                "annotations": { CONTAINERD_NAME: self.name, REF_NAME: tag },
            }],
        }))
        .map_err(|e| Error::Image { image: self.name.clone(), reason: e.to_string() })?;

        let mut out = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| append_file(&mut out, path, data, 0o644);
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(failed)?;
        add("blobs/", b"").map_err(failed)?;
        for blob in [&layer, &config, &manifest] {
            add(&format!("blobs/{}", digest(blob).replace(':', "/")), blob).map_err(failed)?;
        }
        add("index.json", &index).map_err(failed)?;
        out.into_inner().map_err(failed)
    }

    fn process_config(&self) -> Value {
        let mut config = json!({ "Env": self.env });
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| json!(v));
        for (key, value) in [("Entrypoint", list(&self.entrypoint)), ("Cmd", list(&self.cmd))] {
            if let Some(value) = value {
                config[key] = value;
            }
        }
        for (key, value) in [("WorkingDir", &self.working_dir), ("User", &self.user)] {
            if !value.is_empty() {
                config[key] = json!(value);
            }
        }
        config
    }

    /// The one layer: parents first, each path once (the last entry for a path wins).
    fn layer(&self) -> std::io::Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut done = BTreeSet::new();
        let last: std::collections::HashMap<&str, usize> =
            self.entries.iter().enumerate().map(|(i, e)| (e.path(), i)).collect();
        for (i, entry) in self.entries.iter().enumerate() {
            if last.get(entry.path()) != Some(&i) {
                continue;
            }
            let parents: Vec<&str> = ancestors(entry.path()).collect();
            for parent in parents.into_iter().rev() {
                if done.insert(parent.to_string()) && !last.contains_key(parent) {
                    append_dir(&mut tar, parent, 0o755)?;
                }
            }
            done.insert(entry.path().to_string());
            match entry {
                Entry::File { path, data, mode } => append_file(&mut tar, path, data, *mode)?,
                Entry::Dir { path, mode } => append_dir(&mut tar, path, *mode)?,
                Entry::Symlink { path, target } => {
                    let mut header = header(tar::EntryType::Symlink, 0o777);
                    tar.append_link(&mut header, path, target)?;
                }
            }
        }
        tar.into_inner()
    }
}

/// A path inside the image, relative and without `./` or trailing `/`.
fn clean(path: &str) -> String {
    path.trim_start_matches("./").trim_matches('/').to_string()
}

/// `a/b/c` → `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices().filter(|(_, c)| *c == '/').map(move |(i, _)| &path[..i])
}

/// A header with fixed owner and time, so the same entries always give the same digest.
fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    if path.ends_with('/') {
        return append_dir(tar, path.trim_end_matches('/'), 0o755);
    }
    let mut header = header(tar::EntryType::Regular, mode);
    header.set_size(data.len() as u64);
    tar.append_data(&mut header, path, data)
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> std::io::Result<()> {
    let mut header = header(tar::EntryType::Directory, mode);
    tar.append_data(&mut header, format!("{path}/"), std::io::empty())
}

/// `sha256:<hex>` of `data`.
pub(crate) fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OCI name of this host's architecture (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Where Debian's `busybox-static` installs busybox.
const BUSYBOX: &str = "/usr/bin/busybox";

/// The applets `busybox_image` links in `/bin`.
#[rustfmt::skip]
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "wget", "nc", "httpd", "hostname", "env", "id", "true", "false", "kill", "ps",
    "mkdir", "touch", "test", "[", "grep", "date", "rm", "cp", "mv", "ln", "head", "tail", "wc", "sed", "awk",
    "printf", "uname", "whoami", "mount", "df", "du", "ip", "ifconfig", "nslookup", "ping", "sync", "stat", "chmod",
    "seq", "tr", "cut", "find", "xargs", "timeout", "readlink", "pwd", "expr", "which", "top", "tar", "ssl_client",
];

/// A small image from Debian's static busybox (`/usr/bin/busybox`, package `busybox-static`): `/bin/busybox`
/// with the usual applets as symlinks, `/tmp`, `/root`, and `/etc/passwd`/`/etc/group` with root and nobody;
/// `Cmd` is `sh`.
pub fn busybox_image(name: &str) -> Result<Vec<u8>> {
    let missing = |detail: String| Error::MissingProgram { program: BUSYBOX.into(), detail, package: "busybox-static" };
    let binary = std::fs::read(BUSYBOX).map_err(|e| missing(e.to_string()))?;
    if has_interpreter(&binary) {
        return Err(missing("it is dynamically linked (Debian's `busybox`), a container needs the static one".into()));
    }
    let mut image = ImageBuilder::new(name)
        .file("bin/busybox", binary, 0o755)
        .dir("tmp", 0o1777)
        .dir("root", 0o700)
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        )
        .file("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)
        .cmd(["sh"]);
    for applet in BUSYBOX_APPLETS {
        image = image.symlink(&format!("bin/{applet}"), "busybox");
    }
    image.build()
}

/// Whether an ELF binary asks for a dynamic loader (has a `PT_INTERP` program header).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at: usize| elf.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at: usize| {
        elf.get(at..at + 8).and_then(|b| b.try_into().ok()).map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    // 64-bit little-endian only (what this checks: Debian's busybox on amd64/arm64).
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == Some(3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn files(tar_bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(path, data);
        }
        out
    }

    #[test]
    fn layout_is_complete_and_deterministic() {
        let build = || {
            ImageBuilder::new("example.com/app:2")
                .file("usr/local/bin/app", b"#!/bin/sh\n".to_vec(), 0o755)
                .symlink("bin", "usr/bin")
                .entrypoint(["/usr/local/bin/app"])
                .cmd(["serve"])
                .env("A", "b")
                .working_dir("/srv")
                .user("65534")
                .build()
                .unwrap()
        };
        let archive = build();
        assert_eq!(archive, build());
        let files = files(&archive);
        let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(desc["annotations"][CONTAINERD_NAME], "example.com/app:2");
        assert_eq!(desc["annotations"][REF_NAME], "2");
        let blob = |d: &Value| files[&format!("blobs/{}", d.as_str().unwrap().replace(':', "/"))].clone();
        let manifest: Value = serde_json::from_slice(&blob(&desc["digest"])).unwrap();
        let config: Value = serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        assert_eq!(config["config"]["Entrypoint"], json!(["/usr/local/bin/app"]));
        assert_eq!(config["config"]["WorkingDir"], "/srv");
        assert_eq!(config["architecture"], host_architecture());
        assert!(config["config"]["Env"].as_array().unwrap().contains(&json!("A=b")));
        let layer = blob(&manifest["layers"][0]["digest"]);
        assert_eq!(config["rootfs"]["diff_ids"][0], digest(&layer));
        let paths: Vec<String> = self::files(&layer).into_keys().collect();
        assert_eq!(paths, ["bin", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"]);
    }

    #[test]
    fn static_check() {
        if let Ok(busybox) = std::fs::read(BUSYBOX) {
            assert!(!has_interpreter(&busybox), "{BUSYBOX} is expected to be busybox-static here");
        }
        assert!(has_interpreter(&std::fs::read("/bin/ls").unwrap()));
    }
}
