//! Golden tests of both renderers: exact rule text for upstream's cases (ClusterIP with two endpoints, no
//! endpoints, NodePort, ClientIP affinity, externalTrafficPolicy Local) and which chains a partial sync
//! rewrites.

use crate::iptables::{Iptables, RuleOptions, render_service};
use crate::nftables::{self, Nftables};
use crate::testutil::*;

fn opts() -> RuleOptions {
    RuleOptions { cluster_cidr: Some("172.30.0.0/16".into()), ..Default::default() }
}

fn ipt_chain(rules: &crate::iptables::ServiceRules, name: &str) -> String {
    rules.chains.iter().find(|(n, _)| n == name).map(|(_, r)| r.join("\n")).unwrap_or_default()
}

#[test]
fn iptables_cluster_ip_with_two_endpoints() {
    let (n, s) = (spn("ns1", "svc1", "p80"), svc("10.254.0.10", 80));
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.1.2", 8080, false), ep("172.30.2.2", 8080, false)])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &opts());
    assert_eq!(
        r.nat_services,
        vec![
            "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 10.254.0.10 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O"
        ]
    );
    assert_eq!(
        ipt_chain(&r, "KUBE-SVC-XPGD46QRK7WJZT7O"),
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 10.254.0.10 --dport 80 ! -s 172.30.0.0/16 -j KUBE-MARK-MASQ\n\
         -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 172.30.1.2:8080\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-PQOD2E5VFTQM3LFC\n\
         -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 172.30.2.2:8080\" -j KUBE-SEP-7NSMTTYDBQKEQHMR"
    );
    assert_eq!(
        ipt_chain(&r, "KUBE-SEP-PQOD2E5VFTQM3LFC"),
        "-A KUBE-SEP-PQOD2E5VFTQM3LFC -m comment --comment ns1/svc1:p80 -s 172.30.1.2 -j KUBE-MARK-MASQ\n\
         -A KUBE-SEP-PQOD2E5VFTQM3LFC -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 172.30.1.2:8080"
    );
    assert!(r.filter_services.is_empty() && r.filter_external.is_empty());
    assert_eq!(crate::iptables::probability(3), "0.3333333333");
}

#[test]
fn iptables_no_endpoints_rejects_in_filter() {
    let (n, mut s) = (spn("ns1", "empty", "p80"), svc("10.254.0.11", 80));
    s.node_port = 30011;
    let st = state(vec![(n.clone(), s.clone(), vec![])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &opts());
    assert!(r.chains.is_empty() && r.nat_services.is_empty() && r.nat_nodeports.is_empty());
    assert_eq!(
        r.filter_services,
        vec![
            "-A KUBE-SERVICES -m comment --comment \"ns1/empty:p80 has no endpoints\" -m tcp -p tcp -d 10.254.0.11 --dport 80 -j REJECT"
        ]
    );
    assert_eq!(
        r.filter_external,
        vec![
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/empty:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30011 -j REJECT"
        ]
    );
}

#[test]
fn iptables_nodeport_and_external_ip() {
    let (n, mut s) = (spn("ns2", "np", "http"), svc("10.254.0.20", 8080));
    s.node_port = 30080;
    s.external_ips = vec!["192.0.2.10".parse().unwrap()];
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.1.3", 8080, true)])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &opts());
    assert_eq!(
        r.nat_nodeports,
        vec![
            "-A KUBE-NODEPORTS -m comment --comment ns2/np:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-CNWPH4VFLNYVSHDP"
        ]
    );
    assert_eq!(
        r.nat_services[1],
        "-A KUBE-SERVICES -m comment --comment \"ns2/np:http external IP\" -m tcp -p tcp -d 192.0.2.10 --dport 8080 -j KUBE-EXT-CNWPH4VFLNYVSHDP"
    );
    assert_eq!(
        ipt_chain(&r, "KUBE-EXT-CNWPH4VFLNYVSHDP"),
        "-A KUBE-EXT-CNWPH4VFLNYVSHDP -m comment --comment \"masquerade traffic for ns2/np:http external destinations\" -j KUBE-MARK-MASQ\n\
         -A KUBE-EXT-CNWPH4VFLNYVSHDP -j KUBE-SVC-CNWPH4VFLNYVSHDP"
    );
    let with_addrs = RuleOptions { nodeport_addresses: vec!["192.168.1.5".parse().unwrap()], ..opts() };
    let text = Iptables::new(with_addrs).render(&st, true).text;
    assert!(text.contains("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d 192.168.1.5 -j KUBE-NODEPORTS\n"), "{text}");
}

#[test]
fn iptables_session_affinity() {
    let (n, mut s) = (spn("ns3", "aff", ""), svc("10.254.0.30", 80));
    s.affinity_seconds = Some(10800);
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.1.4", 80, false), ep("172.30.2.4", 80, false)])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &RuleOptions { masquerade_all: true, ..Default::default() });
    assert_eq!(
        ipt_chain(&r, "KUBE-SVC-237YWUV5CIU6U5IP"),
        "-A KUBE-SVC-237YWUV5CIU6U5IP -m comment --comment \"ns3/aff cluster IP\" -m tcp -p tcp -d 10.254.0.30 --dport 80 -j KUBE-MARK-MASQ\n\
         -A KUBE-SVC-237YWUV5CIU6U5IP -m comment --comment \"ns3/aff -> 172.30.1.4:80\" -m recent --name KUBE-SEP-7UWN7QZNBRQO3YLI --rcheck --seconds 10800 --reap -j KUBE-SEP-7UWN7QZNBRQO3YLI\n\
         -A KUBE-SVC-237YWUV5CIU6U5IP -m comment --comment \"ns3/aff -> 172.30.2.4:80\" -m recent --name KUBE-SEP-NPSBCAJT55DKRSSH --rcheck --seconds 10800 --reap -j KUBE-SEP-NPSBCAJT55DKRSSH\n\
         -A KUBE-SVC-237YWUV5CIU6U5IP -m comment --comment \"ns3/aff -> 172.30.1.4:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-7UWN7QZNBRQO3YLI\n\
         -A KUBE-SVC-237YWUV5CIU6U5IP -m comment --comment \"ns3/aff -> 172.30.2.4:80\" -j KUBE-SEP-NPSBCAJT55DKRSSH"
    );
    assert_eq!(
        ipt_chain(&r, "KUBE-SEP-7UWN7QZNBRQO3YLI").lines().nth(1),
        Some(
            "-A KUBE-SEP-7UWN7QZNBRQO3YLI -m comment --comment ns3/aff -m recent --name KUBE-SEP-7UWN7QZNBRQO3YLI --set -m tcp -p tcp -j DNAT --to-destination 172.30.1.4:80"
        )
    );
}

#[test]
fn iptables_external_traffic_policy_local() {
    let (n, mut s) = (spn("ns4", "loc", "http"), svc("10.254.0.40", 80));
    s.node_port = 30040;
    s.external_local = true;
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.1.5", 80, true), ep("172.30.2.5", 80, false)])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &opts());
    assert_eq!(
        ipt_chain(&r, "KUBE-EXT-7FQIXJR6MK6SKWOP"),
        "-A KUBE-EXT-7FQIXJR6MK6SKWOP -m comment --comment \"pod traffic for ns4/loc:http external destinations\" -s 172.30.0.0/16 -j KUBE-SVC-7FQIXJR6MK6SKWOP\n\
         -A KUBE-EXT-7FQIXJR6MK6SKWOP -m comment --comment \"masquerade LOCAL traffic for ns4/loc:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n\
         -A KUBE-EXT-7FQIXJR6MK6SKWOP -m comment --comment \"route LOCAL traffic for ns4/loc:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-7FQIXJR6MK6SKWOP\n\
         -A KUBE-EXT-7FQIXJR6MK6SKWOP -j KUBE-SVL-7FQIXJR6MK6SKWOP"
    );
    assert_eq!(
        ipt_chain(&r, "KUBE-SVL-7FQIXJR6MK6SKWOP"),
        "-A KUBE-SVL-7FQIXJR6MK6SKWOP -m comment --comment \"ns4/loc:http -> 172.30.1.5:80\" -j KUBE-SEP-M53HPSQGN6TGP6LV"
    );
    // No local endpoint: external traffic is dropped, the cluster IP still works.
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.2.5", 80, false)])]);
    let r = render_service(&n, &s, &st.categorize(&n, &s), &opts());
    assert_eq!(
        r.filter_external,
        vec![
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns4/loc:http has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30040 -j DROP"
        ]
    );
    assert!(!ipt_chain(&r, "KUBE-EXT-7FQIXJR6MK6SKWOP").contains("KUBE-SVL"));
}

#[test]
fn iptables_partial_sync_rewrites_only_the_changed_service() {
    let a = (spn("ns1", "svc1", "p80"), svc("10.254.0.10", 80));
    let b = (spn("ns1", "other", "p80"), svc("10.254.0.12", 80));
    let mk = |ip: &str| {
        state(vec![
            (a.0.clone(), a.1.clone(), vec![ep("172.30.1.2", 8080, false), ep(ip, 8080, false)]),
            (b.0.clone(), b.1.clone(), vec![ep("172.30.1.9", 8080, false)]),
        ])
    };
    let mut ipt = Iptables::new(opts());
    let first = ipt.render(&mk("172.30.2.2"), false);
    assert_eq!(first.written.len(), 5, "{:?}", first.written);
    ipt.commit(first);
    let second = ipt.render(&mk("172.30.2.3"), false);
    let new_sep = crate::names::ipt_endpoint_chain(&a.0, &ep("172.30.2.3", 8080, false));
    assert_eq!(second.written, vec!["KUBE-SVC-XPGD46QRK7WJZT7O".to_string(), new_sep]);
    assert_eq!(second.deleted, vec!["KUBE-SEP-7NSMTTYDBQKEQHMR".to_string()]);
    assert!(
        second.text.contains(":KUBE-SEP-7NSMTTYDBQKEQHMR - [0:0]\n")
            && second.text.contains("-X KUBE-SEP-7NSMTTYDBQKEQHMR\n")
    );
    assert!(!second.text.contains("KUBE-SEP-PQOD2E5VFTQM3LFC -m"), "unchanged endpoint chain rewritten");
    // A full render rewrites everything again.
    assert_eq!(ipt.render(&mk("172.30.2.3"), true).written.len(), 5);
}

#[test]
fn nftables_service_objects() {
    let (n, s) = (spn("ns1", "svc1", "p80"), svc("10.254.0.10", 80));
    let st = state(vec![(n.clone(), s.clone(), vec![ep("172.30.1.2", 8080, false), ep("172.30.2.2", 8080, false)])]);
    let o = nftables::render_service(&n, &s, &st.categorize(&n, &s), &opts());
    let chain = |c: &str| o.chains.iter().find(|(n, _)| n == c).map(|(_, r)| r.join("\n")).unwrap_or_default();
    assert_eq!(
        chain("service-ULMVA6XW-ns1/svc1/tcp/p80"),
        "ip daddr 10.254.0.10 tcp dport 80 ip saddr != 172.30.0.0/16 jump mark-for-masquerade\n\
         numgen random mod 2 vmap { 0 : goto endpoint-KIDZWWKB-ns1/svc1/tcp/p80__172.30.1.2/8080, 1 : goto endpoint-TGYQB6VL-ns1/svc1/tcp/p80__172.30.2.2/8080 }"
    );
    assert_eq!(
        chain("endpoint-KIDZWWKB-ns1/svc1/tcp/p80__172.30.1.2/8080"),
        "ip saddr 172.30.1.2 jump mark-for-masquerade\nmeta l4proto tcp dnat to 172.30.1.2:8080"
    );
    assert_eq!(o.elements.len(), 1);
    assert_eq!((o.elements[0].map, o.elements[0].key.as_str()), ("service-ips", "10.254.0.10 . tcp . 80"));
    assert_eq!(o.elements[0].value, ": goto service-ULMVA6XW-ns1/svc1/tcp/p80");

    let (e, mut es) = (spn("ns1", "empty", "p80"), svc("10.254.0.11", 80));
    es.node_port = 30011;
    let st = state(vec![(e.clone(), es.clone(), vec![])]);
    let o = nftables::render_service(&e, &es, &st.categorize(&e, &es), &opts());
    assert!(o.chains.is_empty());
    let els: Vec<String> = o.elements.iter().map(|e| format!("{} {{ {} {} }}", e.map, e.key, e.value)).collect();
    assert_eq!(
        els,
        vec![
            "no-endpoint-services { 10.254.0.11 . tcp . 80 comment \"ns1/empty:p80\" : goto reject-chain }",
            "no-endpoint-nodeports { tcp . 30011 comment \"ns1/empty:p80\" : goto reject-chain }",
        ]
    );
}

#[test]
fn nftables_partial_sync_changes_only_elements_and_chains_that_changed() {
    let a = (spn("ns1", "svc1", "p80"), svc("10.254.0.10", 80));
    let b = (spn("ns1", "other", "p80"), svc("10.254.0.12", 80));
    let mk = |eps: Vec<crate::model::Endpoint>| {
        state(vec![(a.0.clone(), a.1.clone(), eps), (b.0.clone(), b.1.clone(), vec![ep("172.30.1.9", 8080, false)])])
    };
    let mut nft = Nftables::new(opts());
    let first = nft.render(&mk(vec![ep("172.30.1.2", 8080, false)]), false);
    assert!(first.text.starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
    nft.commit(first);
    // Scale svc1 to zero: its service-ips element becomes a no-endpoint-services element.
    let second = nft.render(&mk(vec![]), false);
    assert!(second.written.is_empty(), "{:?}", second.written);
    assert_eq!(second.element_ops, 2);
    assert!(!second.text.contains("add chain") && !second.text.contains("flush map"), "{}", second.text);
    assert_eq!(
        second.text,
        "delete element ip kube-proxy service-ips { 10.254.0.10 . tcp . 80 }\n\
         add element ip kube-proxy no-endpoint-services { 10.254.0.10 . tcp . 80 comment \"ns1/svc1:p80\" : goto reject-chain }\n\
         flush chain ip kube-proxy endpoint-KIDZWWKB-ns1/svc1/tcp/p80__172.30.1.2/8080\n\
         flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80\n\
         delete chain ip kube-proxy endpoint-KIDZWWKB-ns1/svc1/tcp/p80__172.30.1.2/8080\n\
         delete chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80\n"
    );
}

#[test]
fn iptables_adopts_leftover_chains_and_deletes_them() {
    let (n, s) = (spn("ns1", "svc1", "p80"), svc("10.254.0.10", 80));
    let st = state(vec![(n, s, vec![ep("172.30.1.2", 8080, false)])]);
    let mut ipt = Iptables::new(opts());
    ipt.adopt("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n:KUBE-SEP-OLDOLDOLDOLDOLD1 - [0:0]\n:OTHER - [0:0]\n");
    let r = ipt.render(&st, false);
    assert_eq!(r.deleted, vec!["KUBE-SEP-OLDOLDOLDOLDOLD1".to_string()]);
    assert!(r.written.contains(&"KUBE-SVC-XPGD46QRK7WJZT7O".to_string()));
}
