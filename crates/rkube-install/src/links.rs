//! Network links rkube makes: the pods' bridge (`cni0` or `--cni-bridge`), flannel's VXLAN device
//! (`flannel.1`) and the ipvs proxy's dummy device (`kube-ipvs0`). Pods' veths go with their sandboxes.

use crate::Result;

/// The links rkube may have made, given the bridge name in use.
pub fn owned(bridge: &str) -> Vec<String> {
    let mut names = vec![bridge.to_owned()];
    for n in [rkube_net::files::CNI_BRIDGE, rkube_net::backend::VXLAN_DEVICE, rkube_proxy::ipvs::desired::DUMMY_DEVICE]
    {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    names
}

/// Whether `name` exists in this process's network namespace (asked through `ip`, not /sys/class/net, which
/// shows the namespace sysfs was mounted in).
fn exists(name: &str) -> bool {
    crate::run("ip", &["-o", "link", "show", "dev", name], None).is_ok()
}

/// Deletes each of `names` that exists; returns those deleted.
pub fn delete(names: &[String]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if let Err(e @ crate::Error::NotInstalled { .. }) = crate::run("ip", &["-V"], None) {
        return Err(e);
    }
    for n in names {
        if exists(n) {
            crate::run("ip", &["link", "delete", "dev", n], None)?;
            done.push(n.clone());
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_configured_bridge_comes_first_and_once() {
        assert_eq!(super::owned("cni0"), ["cni0", "flannel.1", "kube-ipvs0"]);
        assert_eq!(super::owned("br-x"), ["br-x", "cni0", "flannel.1", "kube-ipvs0"]);
    }
}
