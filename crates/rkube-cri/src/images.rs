//! Images without a registry: archives (OCI image layouts and `docker save` tars) are validated completely
//! here, then imported into containerd's `k8s.io` namespace (the one its CRI plugin serves) with `ctr`; and
//! the node's image list through CRI.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::oci::{CONTAINERD_NAME, hex};
use crate::{Error, Result, Runtime, api};

/// The containerd namespace whose images CRI (and so the kubelet) sees.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// Archive members up to this size are kept in memory while validating (the JSON documents are small).
const KEEP: u64 = 4 << 20;

/// An image the runtime has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its id (the config's digest, `sha256:...`).
    pub id: String,
    /// Its names (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// Its repository digests (`name@sha256:...`).
    pub digests: Vec<String>,
    /// Its size in bytes as the runtime reports it.
    pub size: u64,
}

/// The images of the runtime (CRI `ListImages`).
pub async fn list(runtime: &Runtime) -> Result<Vec<ImageInfo>> {
    let response = runtime.images.clone().list_images(api::ListImagesRequest { filter: None }).await;
    let images = response.map_err(Error::cri("ListImages"))?.into_inner().images;
    Ok(images
        .into_iter()
        .map(|i| ImageInfo { id: i.id, names: i.repo_tags, digests: i.repo_digests, size: i.size })
        .collect())
}

/// An image reference in containerd's and the kubelet's full form: `busybox` is
/// `docker.io/library/busybox:latest`, `example.com/a/b` is `example.com/a/b:latest`.
pub fn normalize(name: &str) -> String {
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest.to_string()),
        Some(_) => ("docker.io", name.to_string()),
        None => ("docker.io", format!("library/{name}")),
    };
    let last = rest.rsplit('/').next().unwrap_or_default();
    let tag = if rest.contains('@') || last.contains(':') { "" } else { ":latest" };
    format!("{domain}/{rest}{tag}")
}

/// Validates every archive, then imports them all (nothing is imported when one is bad); `progress` gets a
/// line per step. Returns the names of the imported images.
pub async fn import(socket: &Path, files: &[PathBuf], mut progress: impl FnMut(&str)) -> Result<Vec<String>> {
    let mut checked = Vec::new();
    for file in files {
        progress(&format!("checking {}", file.display()));
        let path = file.clone();
        let names = tokio::task::spawn_blocking(move || validate(&path))
            .await
            .map_err(|e| Error::Archive { file: file.clone(), problem: format!("validation stopped: {e}") })??;
        checked.push((file, names));
    }
    let mut imported = Vec::new();
    for (file, names) in checked {
        progress(&format!("importing {} ({})", file.display(), names.join(", ")));
        ctr_import(socket, file.as_os_str().to_string_lossy().as_ref(), None).await?;
        imported.extend(names);
    }
    Ok(imported)
}

/// Validates an archive held in memory (e.g. [`crate::pause::archive`]) and imports it; `name` is the image it
/// must contain. Returns the names imported.
pub async fn import_bytes(socket: &Path, name: &str, bytes: &[u8]) -> Result<Vec<String>> {
    let label = PathBuf::from(format!("<{name} archive>"));
    let names = validate_with(&label, || Ok(bytes))?;
    if !names.iter().any(|n| *n == normalize(name)) {
        return Err(Error::Archive { file: label, problem: format!("it names {names:?}, not {name}") });
    }
    ctr_import(socket, "-", Some(bytes)).await?;
    Ok(names)
}

/// `ctr images import` of `file` (or `-` with `stdin`). CRI has no call to import an archive; `ctr` is
/// containerd's own client, from the same package as containerd.
async fn ctr_import(socket: &Path, file: &str, stdin: Option<&[u8]>) -> Result<()> {
    let ctr = crate::containerd::find_program(Path::new("ctr"), "containerd")?;
    let address = socket.to_string_lossy().to_string();
    let args = ["--address", &address, "--namespace", K8S_NAMESPACE, "images", "import", file];
    let command = format!("ctr {}", args.join(" "));
    let mut child = tokio::process::Command::new(&ctr)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io(format!("starting {command}")))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // An early exit of ctr shows in its status and stderr below, which say more than a broken pipe.
        let _ = pipe.write_all(bytes).await;
    }
    let output = child.wait_with_output().await.map_err(Error::io(format!("running {command}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        command,
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Checks an archive on disk completely; returns the image names it carries.
pub fn validate(file: &Path) -> Result<Vec<String>> {
    validate_with(file, || std::fs::File::open(file))
}

/// One member of the archive as the first pass saw it.
struct Member {
    digest: String,
    size: u64,
    data: Option<Vec<u8>>,
}

/// What the manifests say must be in the archive.
#[derive(Default)]
struct Plan {
    names: Vec<String>,
    /// Layers to open as tars (uncompressed ones), by member path.
    tar_layers: BTreeSet<String>,
}

fn validate_with<R: Read>(file: &Path, open: impl Fn() -> std::io::Result<R>) -> Result<Vec<String>> {
    let bad = |problem: String| Error::Archive { file: file.to_path_buf(), problem };
    let reader = open().map_err(Error::io(format!("opening {}", file.display())))?;
    let members = scan(reader).map_err(|e| bad(format!("not a complete tar archive ({e})")))?;
    let mut plan = Plan::default();
    let has_index = members.contains_key("index.json");
    if has_index {
        check_oci(&members, &mut plan).map_err(bad)?;
    }
    if members.contains_key("manifest.json") {
        let mut docker = Plan::default();
        check_docker(&members, &mut docker).map_err(bad)?;
        // Docker 25+ writes both; containerd names images from the index then, from RepoTags otherwise.
        if !has_index || plan.names.is_empty() {
            plan.names = docker.names;
        }
        plan.tar_layers.extend(docker.tar_layers);
    } else if !has_index {
        return Err(bad("neither index.json (an OCI image layout) nor manifest.json (docker save) in it".into()));
    }
    if plan.names.is_empty() {
        return Err(bad(format!(
            "it names no image (OCI: annotation {CONTAINERD_NAME} in index.json; docker: RepoTags in manifest.json)"
        )));
    }
    let reader = open().map_err(Error::io(format!("opening {}", file.display())))?;
    check_layers(reader, &plan.tar_layers).map_err(bad)?;
    Ok(plan.names)
}

/// First pass: every regular member's digest and size (and the small ones' bytes).
fn scan(reader: impl Read) -> std::io::Result<BTreeMap<String, Member>> {
    let mut archive = tar::Archive::new(reader);
    let mut members = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
            continue;
        }
        let path = member_path(&entry.path()?.to_string_lossy());
        let size = entry.size();
        let mut hasher = Sha256::new();
        let mut kept = (size <= KEEP).then(Vec::new);
        let mut buf = vec![0u8; 64 << 10];
        let mut read = 0u64;
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(kept) = kept.as_mut() {
                kept.extend_from_slice(&buf[..n]);
            }
            read += n as u64;
        }
        if read != size {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{path} is cut short")));
        }
        members.insert(path, Member { digest: format!("sha256:{}", hex(&hasher.finalize())), size, data: kept });
    }
    Ok(members)
}

fn member_path(path: &str) -> String {
    path.trim_start_matches("./").trim_start_matches('/').to_string()
}

fn json(members: &BTreeMap<String, Member>, path: &str) -> Result<Value, String> {
    let member = members.get(path).ok_or_else(|| format!("{path} is missing"))?;
    let data = member.data.as_deref().ok_or_else(|| format!("{path} is too large for a JSON document"))?;
    serde_json::from_slice(data).map_err(|e| format!("{path} is not valid JSON: {e}"))
}

/// A blob named by its digest: present, of the size the descriptor says, with that digest.
fn blob<'a>(members: &'a BTreeMap<String, Member>, desc: &Value, what: &str) -> Result<(String, &'a Member), String> {
    let digest = desc["digest"].as_str().ok_or_else(|| format!("{what} has no digest"))?;
    let (algorithm, hex) = digest.split_once(':').ok_or_else(|| format!("{what} has a malformed digest {digest}"))?;
    if algorithm != "sha256" {
        return Err(format!("{what} uses digest algorithm {algorithm} (only sha256 is supported)"));
    }
    let path = format!("blobs/sha256/{hex}");
    let member = members.get(&path).ok_or_else(|| format!("{what} {digest} is missing (no {path})"))?;
    verify(&path, member, digest)?;
    if let Some(size) = desc["size"].as_u64().filter(|s| *s != member.size) {
        return Err(format!("{what} {path} has {} bytes, its descriptor says {size}", member.size));
    }
    Ok((path, member))
}

fn verify(path: &str, member: &Member, digest: &str) -> Result<(), String> {
    if member.digest == digest {
        return Ok(());
    }
    Err(format!("{path} is corrupt: its content has digest {}, expected {digest}", member.digest))
}

fn check_oci(members: &BTreeMap<String, Member>, plan: &mut Plan) -> Result<(), String> {
    if !members.contains_key("oci-layout") {
        return Err("index.json without oci-layout: not an OCI image layout".into());
    }
    // Every blob must match its name, referenced or not: a flipped byte anywhere is refused.
    for (path, member) in members.iter().filter(|(p, _)| p.starts_with("blobs/sha256/")) {
        verify(path, member, &format!("sha256:{}", &path["blobs/sha256/".len()..]))?;
    }
    let index = json(members, "index.json")?;
    let manifests = index["manifests"].as_array().ok_or("index.json has no manifests")?;
    for desc in manifests {
        if let Some(name) = desc["annotations"][CONTAINERD_NAME].as_str() {
            plan.names.push(name.to_string());
        }
        check_oci_descriptor(members, desc, plan, 0)?;
    }
    Ok(())
}

fn check_oci_descriptor(
    members: &BTreeMap<String, Member>,
    desc: &Value,
    plan: &mut Plan,
    depth: u8,
) -> Result<(), String> {
    let media_type = desc["mediaType"].as_str().unwrap_or_default();
    let platform_is_host =
        desc["platform"]["architecture"].as_str().is_none_or(|a| a == crate::oci::host_architecture());
    let what = format!("manifest {}", desc["digest"].as_str().unwrap_or("?"));
    let found = blob(members, desc, &what);
    // Multi-platform archives often hold only some platforms: only the host's must be complete.
    let (path, _) = match found {
        Err(e) if !platform_is_host && e.contains("is missing") => return Ok(()),
        other => other?,
    };
    let document = json(members, &path)?;
    let is_index =
        media_type.contains("index") || media_type.contains("manifest.list") || document["manifests"].is_array();
    if is_index {
        if depth > 4 {
            return Err(format!("{path}: indexes nested too deep"));
        }
        for child in document["manifests"].as_array().into_iter().flatten() {
            check_oci_descriptor(members, child, plan, depth + 1)?;
        }
        return Ok(());
    }
    let (config_path, _) = blob(members, &document["config"], &format!("config of {path}"))?;
    let config = json(members, &config_path)?;
    let layers = document["layers"].as_array().ok_or_else(|| format!("{path} has no layers"))?;
    let diff_ids =
        config["rootfs"]["diff_ids"].as_array().ok_or_else(|| format!("{config_path} has no rootfs.diff_ids"))?;
    if layers.len() != diff_ids.len() {
        return Err(format!("{path} has {} layers but its config lists {} diff_ids", layers.len(), diff_ids.len()));
    }
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let (layer_path, member) = blob(members, layer, &format!("layer of {path}"))?;
        if layer["mediaType"].as_str().is_some_and(|m| m.ends_with(".tar") || m.ends_with("tar.layer"))
            || layer["mediaType"].as_str() == Some("application/vnd.docker.image.rootfs.diff.tar")
        {
            verify(&layer_path, member, diff_id.as_str().unwrap_or_default())?;
            plan.tar_layers.insert(layer_path);
        }
    }
    Ok(())
}

fn check_docker(members: &BTreeMap<String, Member>, plan: &mut Plan) -> Result<(), String> {
    let manifest = json(members, "manifest.json")?;
    let images = manifest.as_array().ok_or("manifest.json is not a list")?;
    for image in images {
        let config_path = member_path(image["Config"].as_str().ok_or("manifest.json: an entry has no Config")?);
        let config_member = members.get(&config_path).ok_or_else(|| format!("{config_path} is missing"))?;
        // The config's name is its digest (`<hex>.json`, or `blobs/sha256/<hex>` since docker 25).
        let stem = config_path.rsplit('/').next().unwrap_or_default().trim_end_matches(".json");
        if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            verify(&config_path, config_member, &format!("sha256:{stem}"))?;
        }
        let config = json(members, &config_path)?;
        let diff_ids =
            config["rootfs"]["diff_ids"].as_array().ok_or_else(|| format!("{config_path} has no rootfs.diff_ids"))?;
        let layers = image["Layers"].as_array().ok_or_else(|| format!("manifest.json: {config_path} has no Layers"))?;
        if layers.len() != diff_ids.len() {
            return Err(format!(
                "manifest.json lists {} layers, {config_path} {} diff_ids",
                layers.len(),
                diff_ids.len()
            ));
        }
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let path = member_path(layer.as_str().unwrap_or_default());
            let member = members.get(&path).ok_or_else(|| format!("layer {path} is missing"))?;
            // `docker save` layers are uncompressed: their digest is the config's diff_id.
            verify(&path, member, diff_id.as_str().unwrap_or_default())?;
            plan.tar_layers.insert(path);
        }
        for tag in image["RepoTags"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            plan.names.push(normalize(tag));
        }
    }
    Ok(())
}

/// Last pass: each uncompressed layer must read as a tar to its end.
fn check_layers(reader: impl Read, layers: &BTreeSet<String>) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = member_path(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        if !layers.contains(&path) {
            continue;
        }
        let mut layer = tar::Archive::new(entry);
        let unreadable = |e: std::io::Error| format!("layer {path} is not a readable tar: {e}");
        for file in layer.entries().map_err(unreadable)? {
            let mut file = file.map_err(unreadable)?;
            std::io::copy(&mut file, &mut std::io::sink()).map_err(unreadable)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalize("me/app"), "docker.io/me/app:latest");
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalize("rkube.io/pause:1.0"), "rkube.io/pause:1.0");
        assert_eq!(normalize("a.io/x@sha256:00"), "a.io/x@sha256:00");
    }

    fn image() -> Vec<u8> {
        crate::oci::ImageBuilder::new("t.io/x:1").file("hello", b"hi".to_vec(), 0o644).cmd(["/hello"]).build().unwrap()
    }

    fn check(bytes: &[u8]) -> Result<Vec<String>> {
        validate_with(Path::new("x.tar"), || Ok(bytes))
    }

    #[test]
    fn good_archive() {
        assert_eq!(check(&image()).unwrap(), ["t.io/x:1"]);
    }

    #[test]
    fn truncated_and_flipped_are_refused() {
        let good = image();
        for cut in [good.len() / 3, good.len() / 2, good.len() - 1100] {
            let err = check(&good[..cut]).unwrap_err().to_string();
            assert!(err.starts_with("image archive x.tar: "), "{err}");
        }
        // Flip a byte inside the layer's "hi" content.
        let at = good.windows(2).position(|w| w == b"hi").unwrap();
        let mut flipped = good.clone();
        flipped[at] ^= 1;
        let err = check(&flipped).unwrap_err().to_string();
        assert!(err.contains("is corrupt: its content has digest"), "{err}");
    }

    #[test]
    fn docker_archive() {
        let layer = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#, crate::oci::digest(&layer));
        let config_name = format!("{}.json", &crate::oci::digest(config.as_bytes())[7..]);
        let manifest = format!(r#"[{{"Config":"{config_name}","RepoTags":["app:2"],"Layers":["l/layer.tar"]}}]"#);
        let build = |layer: &[u8]| {
            let mut b = tar::Builder::new(Vec::new());
            for (path, data) in
                [("manifest.json", manifest.as_bytes()), (&config_name, config.as_bytes()), ("l/layer.tar", layer)]
            {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, data).unwrap();
            }
            b.into_inner().unwrap()
        };
        assert_eq!(check(&build(&layer)).unwrap(), ["docker.io/library/app:2"]);
        let mut bad = layer.clone();
        bad[0] ^= 1;
        let err = check(&build(&bad)).unwrap_err().to_string();
        assert!(err.contains("l/layer.tar is corrupt"), "{err}");
    }
}
