//! The etcd subnet manager against a real etcd (Debian's /usr/bin/etcd on loopback ports in a temp dir).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Etcd;
use rkube_net::config::NetConfig;
use rkube_net::lease::{LeaseAttrs, LeaseEvent};
use rkube_net::subnet::{EtcdSubnetManager, SubnetManager};
use tokio::sync::mpsc;

const PREFIX: &str = "/kube-centos/network";

fn attrs(ip: &str, mac: &str) -> LeaseAttrs {
    LeaseAttrs {
        public_ip: ip.parse().unwrap(),
        public_ipv6: None,
        backend_type: "vxlan".into(),
        backend_data: serde_json::json!({"VNI": 1, "VtepMAC": mac}),
    }
}

async fn manager(etcd: &Etcd) -> EtcdSubnetManager {
    let c = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await.unwrap();
    EtcdSubnetManager::new(c, PREFIX)
}

async fn next(rx: &mut mpsc::Receiver<LeaseEvent>) -> LeaseEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a lease event").expect("open channel")
}

#[tokio::test]
async fn leases_are_distinct_taken_back_watched_and_flannel_shaped() {
    let etcd = Etcd::start(None, "127.0.0.1");
    let m1 = manager(&etcd).await;
    let err = m1.network_config().await.unwrap_err().to_string();
    assert!(err.contains("no network config at /kube-centos/network/config") && err.contains("etcdctl put"), "{err}");

    let cfg = NetConfig::parse(
        r#"{"Network":"172.30.0.0/16","SubnetLen":24,"SubnetMax":"172.30.3.0","Backend":{"Type":"vxlan"}}"#,
    )
    .unwrap();
    assert!(m1.put_config_if_absent(&cfg).await.unwrap());
    assert!(!m1.put_config_if_absent(&cfg).await.unwrap(), "an existing config is left alone");
    let cfg = m1.network_config().await.unwrap();
    assert_eq!(cfg.capacity(), 3);

    let m2 = manager(&etcd).await;
    let a1 = attrs("10.0.0.1", "aa:bb:cc:00:00:01");
    let a2 = attrs("10.0.0.2", "aa:bb:cc:00:00:02");
    let (l1, l2) = tokio::join!(m1.acquire(&cfg, &a1), m2.acquire(&cfg, &a2));
    let (l1, l2) = (l1.unwrap(), l2.unwrap());
    assert_ne!(l1.subnet, l2.subnet, "two nodes never share a subnet");
    assert!(l1.expiration.is_some());

    // What the guides show, byte for byte.
    let out = etcd.etcdctl(&["get", "--prefix", "/kube-centos/network/subnets"]).unwrap();
    let key1 = format!("/kube-centos/network/subnets/{}", l1.subnet.key());
    assert!(out.contains(&key1), "{out}");
    assert!(
        out.contains(r#"{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:00:00:01"}}"#),
        "{out}"
    );
    // A 24 h TTL through an etcd lease.
    let lease_out = etcd.etcdctl(&["get", &key1, "-w", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&lease_out).unwrap();
    let id = v["kvs"][0]["lease"].as_i64().unwrap();
    let ttl = etcd.etcdctl(&["lease", "timetolive", &format!("{id:x}")]).unwrap();
    assert!(ttl.contains("granted with TTL(86400s)"), "{ttl}");

    // The watch: m2 sees m1's lease first, then a third node arriving and leaving.
    let (tx, mut rx) = mpsc::channel(16);
    let w = tokio::spawn(async move {
        let m = m2;
        let own = l2.clone();
        let _ = m.watch(&own, tx).await;
    });
    match next(&mut rx).await {
        LeaseEvent::Snapshot(all) => {
            assert_eq!(all.len(), 1, "{all:?}");
            assert_eq!(all[0].attrs, a1);
        }
        e => panic!("{e:?}"),
    }
    let m3 = manager(&etcd).await;
    let l3 = m3.acquire(&cfg, &attrs("10.0.0.3", "aa:bb:cc:00:00:03")).await.unwrap();
    assert_eq!(next(&mut rx).await, LeaseEvent::Added(rkube_net::lease::Lease { expiration: None, ..l3.clone() }));
    // Renewal rewrites the same value: no event for an unchanged lease.
    let renewed = m3.renew(&l3).await.unwrap();
    assert_eq!(renewed.subnet, l3.subnet);
    // The network is full now.
    let e = m3.acquire(&cfg, &attrs("10.0.0.4", "aa:bb:cc:00:00:04")).await.unwrap_err().to_string();
    assert!(e.contains("172.30.0.0/16 is exhausted: all 3 /24"), "{e}");
    etcd.etcdctl(&["del", &format!("/kube-centos/network/subnets/{}", l3.subnet.key())]).unwrap();
    assert_eq!(next(&mut rx).await, LeaseEvent::Removed(l3.subnet));
    w.abort();

    // A restart (a new manager, same PublicIP, a new VtepMAC) takes back the same subnet.
    let m1b = manager(&etcd).await;
    let again = m1b.acquire(&cfg, &attrs("10.0.0.1", "aa:bb:cc:00:00:11")).await.unwrap();
    assert_eq!(again.subnet, l1.subnet);
    let out = etcd.etcdctl(&["get", &key1, "--print-value-only"]).unwrap();
    assert!(out.contains("aa:bb:cc:00:00:11"), "{out}");
}

#[tokio::test]
async fn a_bad_stored_config_is_refused_with_the_fix() {
    let etcd = Etcd::start(None, "127.0.0.1");
    etcd.etcdctl(&["put", "/coreos.com/network/config", r#"{"Network":"172.30.0.0/16","Backend":{"Type":"udp"}}"#])
        .unwrap();
    let c = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await.unwrap();
    let m = EtcdSubnetManager::new(c, rkube_net::subnet::DEFAULT_PREFIX);
    let e = m.network_config().await.unwrap_err().to_string();
    assert!(e.contains("Backend Type \"udp\" is not supported"), "{e}");
}
