//! The whole ipvs sync (desired table -> read-back -> diff -> netlink messages -> acknowledgements) driven
//! through `FakeKernel`. The kernel's IPVS is mocked in every test here because this VM's kernel has no
//! ip_vs (and no dummy driver, so `kube-ipvs0` is `FakeDevice`); the requests are checked as the readable
//! lines `transcript_tests::decode` reads back from their bytes.

use std::net::Ipv4Addr;

use super::backend::IpvsBackend;
use super::desired::IpvsTable;
use super::fake_kernel::{FakeDevice, FakeKernel};
use super::kernel::Kernel;
use crate::iptables::RuleOptions;
use crate::model::ProxyState;
use crate::testutil::{ep, spn, state, svc};

type Backend = IpvsBackend<FakeKernel, FakeDevice>;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// web: ClusterIP 10.96.0.10:80 with `web_eps` endpoints; shop: NodePort 30080 (node address 192.168.1.10).
fn scenario(web_eps: &[&str], with_shop: bool) -> ProxyState {
    let mut items =
        vec![(spn("default", "web", ""), svc("10.96.0.10", 80), web_eps.iter().map(|a| ep(a, 8080, false)).collect())];
    if with_shop {
        let mut shop = svc("10.96.0.20", 80);
        shop.node_port = 30080;
        items.push((spn("default", "shop", ""), shop, vec![ep("10.244.1.4", 8080, true)]));
    }
    state(items)
}

async fn backend(fake: &FakeKernel, device: FakeDevice, scheduler: &str) -> Backend {
    let kernel = Kernel::open(fake.clone()).await.expect("IPVS family");
    let opts = RuleOptions { nodeport_addresses: vec![ip("192.168.1.10")], ..RuleOptions::default() };
    IpvsBackend::new(kernel, device, None, scheduler, opts)
}

/// The state a first sync of `scenario(["10.244.1.2", "10.244.2.3"], true)` leaves (for the restart tests).
async fn synced_once() -> (FakeKernel, IpvsTable, FakeDevice) {
    let fake = FakeKernel::with(IpvsTable::default());
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    b.sync(&scenario(&["10.244.1.2", "10.244.2.3"], true), false).await.unwrap();
    let device = FakeDevice { addrs: b.device().addrs.clone(), log: Vec::new() };
    (fake.clone(), fake.table(), device)
}

#[tokio::test]
async fn fresh_table_gets_every_service_and_an_unchanged_sync_sends_nothing() {
    // Mocked kernel: this VM has no ip_vs.
    let fake = FakeKernel::with(IpvsTable::default());
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    let st = scenario(&["10.244.1.2", "10.244.2.3"], true);
    let r = b.sync(&st, false).await.unwrap();
    assert!(r.adopted, "the first sync reads the kernel back");
    assert_eq!(
        fake.take_log(),
        vec![
            "CTRL_CMD_GETFAMILY IPVS",
            "GET_SERVICE dump",
            "NEW_SERVICE tcp 10.96.0.10:80 sched=rr flags=0x0 timeout=0",
            "NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.2:8080 weight=1",
            "NEW_DEST tcp 10.96.0.10:80 -> 10.244.2.3:8080 weight=1",
            "NEW_SERVICE tcp 10.96.0.20:80 sched=rr flags=0x0 timeout=0",
            "NEW_DEST tcp 10.96.0.20:80 -> 10.244.1.4:8080 weight=1",
            "NEW_SERVICE tcp 192.168.1.10:30080 sched=rr flags=0x0 timeout=0",
            "NEW_DEST tcp 192.168.1.10:30080 -> 10.244.1.4:8080 weight=1",
        ]
    );
    assert_eq!(b.device().log, vec!["addr add 10.96.0.10/32 dev kube-ipvs0", "addr add 10.96.0.20/32 dev kube-ipvs0"]);
    assert_eq!(fake.table(), b.applied().table, "what is remembered is what the kernel has");
    assert_eq!(r.ops.len(), 7);

    let r = b.sync(&st, false).await.unwrap();
    assert!(fake.take_log().is_empty() && r.ops.is_empty(), "nothing changed, nothing sent");
}

#[tokio::test]
async fn one_endpoint_change_is_one_message() {
    // Mocked kernel: this VM has no ip_vs.
    let fake = FakeKernel::with(IpvsTable::default());
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    b.sync(&scenario(&["10.244.1.2", "10.244.2.3"], true), false).await.unwrap();
    fake.take_log();
    b.sync(&scenario(&["10.244.1.2"], true), false).await.unwrap();
    assert_eq!(fake.take_log(), vec!["DEL_DEST tcp 10.96.0.10:80 -> 10.244.2.3:8080"]);
    b.sync(&scenario(&["10.244.1.2", "10.244.3.7"], true), false).await.unwrap();
    assert_eq!(fake.take_log(), vec!["NEW_DEST tcp 10.96.0.10:80 -> 10.244.3.7:8080 weight=1"]);
    assert_eq!(fake.table(), b.applied().table);
}

#[tokio::test]
async fn a_removed_service_loses_its_virtual_servers_and_its_address() {
    // Mocked kernel: this VM has no ip_vs.
    let fake = FakeKernel::with(IpvsTable::default());
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    b.sync(&scenario(&["10.244.1.2"], true), false).await.unwrap();
    fake.take_log();
    let r = b.sync(&scenario(&["10.244.1.2"], false), false).await.unwrap();
    assert_eq!(fake.take_log(), vec!["DEL_SERVICE tcp 10.96.0.20:80", "DEL_SERVICE tcp 192.168.1.10:30080"]);
    assert_eq!(r.unbound, vec![ip("10.96.0.20")]);
    assert_eq!(b.device().addrs.iter().copied().collect::<Vec<_>>(), vec![ip("10.96.0.10")]);
    assert_eq!(fake.table().services.len(), 1);
}

#[tokio::test]
async fn a_restart_adopts_the_kernel_state_and_leaves_foreign_virtual_servers_alone() {
    // Mocked kernel: this VM has no ip_vs. The kernel keeps the table of a previous run, plus a virtual
    // server someone else made on an address rkube does not own.
    let (fake, mut table, device) = synced_once().await;
    let foreign =
        super::desired::VirtualServer { protocol: crate::model::Protocol::Tcp, addr: ip("172.16.0.1"), port: 80 };
    let entry = table.services.values().next().unwrap().clone();
    table.services.insert(foreign, entry);
    fake.0.lock().unwrap().table = table;
    fake.take_log();
    // While rkube was down: web gained an endpoint, shop was deleted.
    let mut b = backend(&fake, device, "rr").await;
    let r = b.sync(&scenario(&["10.244.1.2", "10.244.2.3", "10.244.3.7"], false), false).await.unwrap();
    assert!(r.adopted);
    assert_eq!(
        fake.take_log(),
        vec![
            "CTRL_CMD_GETFAMILY IPVS",
            "GET_SERVICE dump",
            "GET_DEST dump tcp 10.96.0.10:80",
            "GET_DEST dump tcp 10.96.0.20:80",
            "GET_DEST dump tcp 172.16.0.1:80",
            "GET_DEST dump tcp 192.168.1.10:30080",
            "NEW_DEST tcp 10.96.0.10:80 -> 10.244.3.7:8080 weight=1",
            "DEL_SERVICE tcp 10.96.0.20:80",
            "DEL_SERVICE tcp 192.168.1.10:30080",
        ]
    );
    assert!(fake.table().services.contains_key(&foreign), "a virtual server rkube does not own is kept");
    assert_eq!(b.device().log, vec!["addr del 10.96.0.20/32 dev kube-ipvs0"]);
}

#[tokio::test]
async fn a_scheduler_change_updates_every_virtual_server_in_place() {
    // Mocked kernel: this VM has no ip_vs. The node restarts with --ipvs-scheduler lc.
    let (fake, _, device) = synced_once().await;
    fake.take_log();
    let mut b = backend(&fake, device, "lc").await;
    b.sync(&scenario(&["10.244.1.2", "10.244.2.3"], true), false).await.unwrap();
    let log = fake.take_log();
    let changes: Vec<&String> = log.iter().filter(|l| !l.starts_with("GET") && !l.starts_with("CTRL")).collect();
    assert_eq!(
        changes,
        vec![
            "SET_SERVICE tcp 10.96.0.10:80 sched=lc flags=0x0 timeout=0",
            "SET_SERVICE tcp 10.96.0.20:80 sched=lc flags=0x0 timeout=0",
            "SET_SERVICE tcp 192.168.1.10:30080 sched=lc flags=0x0 timeout=0",
        ]
    );
    assert!(fake.table().services.values().all(|e| e.attrs.scheduler == "lc"));
}

#[tokio::test]
async fn a_kernel_error_mid_sync_skips_that_service_only_and_the_next_sync_retries_it() {
    // Mocked kernel: this VM has no ip_vs. It refuses web's second real server with ENOMEM.
    let fake = FakeKernel::with(IpvsTable::default());
    fake.0.lock().unwrap().refuse = Some(("NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.3".into(), 12));
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    let st = state(vec![
        (
            spn("default", "web", ""),
            svc("10.96.0.10", 80),
            ["10.244.1.2", "10.244.1.3", "10.244.1.5"].iter().map(|a| ep(a, 80, false)).collect(),
        ),
        (spn("default", "db", ""), svc("10.96.0.30", 5432), vec![ep("10.244.2.2", 5432, false)]),
    ]);
    let err = b.sync(&st, false).await.expect_err("one change was refused").to_string();
    assert!(err.contains("1 of the IPVS sync's changes failed"), "{err}");
    assert!(err.contains("IPVS NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.3:80 weight=1"), "{err}");
    assert!(err.contains("Cannot allocate memory"), "{err}");
    let log = fake.take_log();
    assert!(!log.iter().any(|l| l.contains("10.244.1.5")), "web's later changes wait for the retry: {log:?}");
    assert!(log.contains(&"NEW_DEST tcp 10.96.0.30:5432 -> 10.244.2.2:5432 weight=1".to_string()), "{log:?}");
    assert_eq!(fake.table(), b.applied().table, "only acknowledged changes are remembered");

    b.sync(&st, false).await.expect("the retry succeeds");
    assert_eq!(
        fake.take_log(),
        vec![
            "NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.3:80 weight=1",
            "NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.5:80 weight=1",
        ]
    );
    assert_eq!(fake.table().services.values().map(|e| e.dests.len()).sum::<usize>(), 4);
}

#[tokio::test]
async fn a_full_resync_repairs_changes_made_behind_our_back() {
    // Mocked kernel: this VM has no ip_vs. Someone deletes a real server with ipvsadm.
    let fake = FakeKernel::with(IpvsTable::default());
    let mut b = backend(&fake, FakeDevice::default(), "rr").await;
    let st = scenario(&["10.244.1.2"], false);
    b.sync(&st, false).await.unwrap();
    for e in fake.0.lock().unwrap().table.services.values_mut() {
        e.dests.clear();
    }
    fake.take_log();
    b.sync(&st, false).await.unwrap();
    assert!(fake.take_log().is_empty(), "a partial sync trusts what it remembers");
    b.sync(&st, true).await.unwrap();
    let log = fake.take_log();
    assert_eq!(log.last().map(String::as_str), Some("NEW_DEST tcp 10.96.0.10:80 -> 10.244.1.2:8080 weight=1"));
}

#[tokio::test]
async fn a_kernel_without_ip_vs_is_named() {
    // Mocked kernel: the controller knows no IPVS family (what this VM's real kernel answers, see tests/ipvs.rs).
    let fake = FakeKernel::default();
    let err = Kernel::open(fake).await.expect_err("no family").to_string();
    assert!(err.contains("can't use the IPVS proxier") && err.contains("modprobe -- ip_vs"), "{err}");
}
