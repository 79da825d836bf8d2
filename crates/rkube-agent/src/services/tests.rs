//! Validation of the service flags.

use super::*;

fn problems(f: impl FnOnce(&mut ServicesFlags)) -> (ServicesConfig, Vec<String>) {
    let mut flags = ServicesFlags::default();
    f(&mut flags);
    let mut problems = Vec::new();
    let config = ServicesConfig::from_flags(&flags, &mut problems);
    (config, problems)
}

#[test]
fn defaults_are_valid() {
    let (c, p) = problems(|_| {});
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c.mode, rkube_proxy::ProxyMode::Iptables);
    assert_eq!(c.min_sync_period, Duration::from_secs(1));
    assert_eq!(c.sync_period, Duration::from_secs(30));
    assert!(c.nodeport_cidrs.is_empty());
}

#[test]
fn modes_cidrs_and_periods_parse() {
    let (c, p) = problems(|f| {
        f.proxy_mode = "nftables".into();
        f.nodeport_addresses = vec!["192.168.0.0/16".into(), "10.0.0.5/32".into()];
        f.min_sync_period_secs = 0.5;
        f.sync_period_secs = 60.0;
        f.ipvs_scheduler = "sh".into();
    });
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c.mode, rkube_proxy::ProxyMode::Nftables);
    assert_eq!(c.nodeport_cidrs.len(), 2);
    assert!(c.nodeport_cidrs[0].contains("192.168.44.1".parse().unwrap()));
    assert!(!c.nodeport_cidrs[0].contains("192.169.0.1".parse().unwrap()));
    assert!(c.nodeport_cidrs[1].contains("10.0.0.5".parse().unwrap()));
    assert!(!c.nodeport_cidrs[1].contains("10.0.0.6".parse().unwrap()));
    assert_eq!(c.min_sync_period, Duration::from_millis(500));
    assert_eq!(problems(|f| f.proxy_mode = "ipvs".into()).0.mode, rkube_proxy::ProxyMode::Ipvs);
}

#[test]
fn ipvs_mode_takes_the_ipvs_periods_with_upstreams_defaults() {
    let (c, p) = problems(|f| f.proxy_mode = "ipvs".into());
    assert!(p.is_empty(), "{p:?}");
    assert_eq!((c.min_sync_period, c.sync_period), (Duration::ZERO, Duration::from_secs(30)));
    let (c, p) = problems(|f| {
        f.proxy_mode = "ipvs".into();
        f.ipvs_min_sync_period = Duration::from_secs(2);
        f.ipvs_sync_period = Duration::from_secs(60);
    });
    assert!(p.is_empty(), "{p:?}");
    assert_eq!((c.min_sync_period, c.sync_period), (Duration::from_secs(2), Duration::from_secs(60)));
    let (_, p) = problems(|f| f.ipvs_sync_period = Duration::ZERO);
    assert_eq!(p, vec!["--ipvs-sync-period 0s must be greater than 0 (such as 30s)".to_string()]);
    let (_, p) = problems(|f| f.ipvs_min_sync_period = Duration::from_secs(31));
    assert_eq!(
        p,
        vec!["--ipvs-sync-period 30s must be greater than or equal to --ipvs-min-sync-period 31s".to_string()]
    );
    for s in ["rr", "lc", "dh", "sh", "sed", "nq", "wrr", "wlc", "lblc", "lblcr", "mh"] {
        assert!(problems(|f| f.ipvs_scheduler = s.into()).1.is_empty(), "{s}");
    }
}

#[test]
fn every_bad_flag_is_named_with_its_fix() {
    let (_, p) = problems(|f| {
        f.proxy_mode = "userspace".into();
        f.nodeport_addresses = vec!["10.0.0.0/33".into(), "eth0".into(), "10.1.0.0/16".into()];
        f.min_sync_period_secs = 0.0;
        f.sync_period_secs = -3.0;
        f.ipvs_scheduler = "fastest".into();
    });
    let all = p.join("\n");
    assert_eq!(p.len(), 6, "{all}");
    assert!(all.contains("--proxy-mode \"userspace\" is not a proxy mode: use iptables, nftables or ipvs"), "{all}");
    assert!(all.contains("--nodeport-addresses \"10.0.0.0/33\" is not an IPv4 CIDR"), "{all}");
    assert!(all.contains("--nodeport-addresses \"eth0\" is not an IPv4 CIDR"), "{all}");
    assert!(all.contains("--proxy-min-sync-period 0 must be a number of seconds greater than 0"), "{all}");
    assert!(all.contains("--proxy-sync-period -3 must be a number of seconds greater than 0"), "{all}");
    assert!(all.contains("--ipvs-scheduler \"fastest\" is not an IPVS scheduler: use one of rr, wrr"), "{all}");
    let (_, p) = problems(|f| f.proxy_mode = String::new());
    assert_eq!(p.len(), 1, "{p:?}");
    let (_, p) = problems(|f| {
        f.min_sync_period_secs = 60.0;
        f.sync_period_secs = 30.0;
    });
    assert_eq!(
        p,
        vec!["--proxy-sync-period 30 must be greater than or equal to --proxy-min-sync-period 60".to_string()]
    );
    let (_, p) = problems(|f| f.sync_period_secs = f64::NAN);
    assert_eq!(p.len(), 1, "{p:?}");
}
