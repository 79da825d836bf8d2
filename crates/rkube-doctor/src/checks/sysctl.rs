//! The sysctls pods need: forwarding, bridged traffic through iptables (br_netfilter), and rp_filter not strict
//! (the guides' pit: replies that leave by flannel.1 and return by eth0 are dropped under strict mode).

use super::first_line;
use crate::{Finding, Host};

const G: &str = "network";

pub(crate) fn run(host: &dyn Host, out: &mut Vec<Finding>) {
    out.push(must_be_one(host, "net.ipv4.ip_forward"));
    let bridge = host.exists("/proc/sys/net/bridge/bridge-nf-call-iptables");
    for key in ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] {
        if bridge {
            out.push(must_be_one(host, key));
        } else {
            out.push(Finding::fail(
                G,
                key,
                format!("{key} does not exist: module br_netfilter is not loaded"),
                format!(
                    "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/rkube.conf && sysctl -w {key}=1"
                ),
            ));
        }
    }
    out.push(rp_filter(host));
}

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn persist(key: &str, value: &str) -> String {
    format!("sysctl -w {key}={value} && echo '{key} = {value}' >> /etc/sysctl.d/99-rkube.conf")
}

fn must_be_one(host: &dyn Host, key: &str) -> Finding {
    match host.read(&path(key)).as_deref().map(first_line) {
        Some("1") => Finding::ok(G, key, format!("{key} = 1")),
        Some(v) => Finding::fail(G, key, format!("{key} = {v}"), persist(key, "1")),
        None => Finding::fail(G, key, format!("{key} cannot be read"), persist(key, "1")),
    }
}

fn rp_filter(host: &dyn Host) -> Finding {
    let key = "net.ipv4.conf.all.rp_filter";
    match host.read(&path(key)).as_deref().map(first_line) {
        Some("1") => Finding::warn(
            G,
            key,
            format!("{key} = 1 (strict): replies arriving on another interface than the route back are dropped"),
            persist(key, "2"),
        ),
        Some(v) => Finding::ok(G, key, format!("{key} = {v}")),
        None => Finding::warn(G, key, format!("{key} cannot be read"), persist(key, "2")),
    }
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    fn finding(h: &FakeHost, check: &str) -> crate::Finding {
        check_host(h, &Config::default()).into_iter().find(|x| x.check == check).unwrap()
    }

    #[test]
    fn ip_forward_off_fails_with_sysctl() {
        let mut h = FakeHost::healthy();
        h.file("/proc/sys/net/ipv4/ip_forward", "0\n");
        let f = finding(&h, "net.ipv4.ip_forward");
        assert_eq!((f.status, f.seen.as_str()), (Status::Fail, "net.ipv4.ip_forward = 0"));
        assert!(f.remedy.unwrap().starts_with("sysctl -w net.ipv4.ip_forward=1"));
    }

    #[test]
    fn no_br_netfilter_names_the_module() {
        let mut h = FakeHost::healthy();
        h.files.retain(|k, _| !k.starts_with("/proc/sys/net/bridge"));
        let f = finding(&h, "net.bridge.bridge-nf-call-iptables");
        assert_eq!(f.status, Status::Fail);
        assert!(f.seen.contains("br_netfilter") && f.remedy.unwrap().starts_with("modprobe br_netfilter"));
    }

    #[test]
    fn strict_rp_filter_warns_with_loose_mode() {
        let mut h = FakeHost::healthy();
        h.file("/proc/sys/net/ipv4/conf/all/rp_filter", "1\n");
        let f = finding(&h, "net.ipv4.conf.all.rp_filter");
        assert_eq!(f.status, Status::Warn);
        assert!(f.remedy.unwrap().starts_with("sysctl -w net.ipv4.conf.all.rp_filter=2"));
    }
}
