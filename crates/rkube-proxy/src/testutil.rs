//! Fixtures for the golden tests: service ports and endpoints built by hand, as upstream's proxier tests do.

use std::net::Ipv4Addr;

use crate::model::{Endpoint, Protocol, ProxyState, ServicePort, ServicePortName};

pub(crate) fn spn(ns: &str, name: &str, port: &str) -> ServicePortName {
    ServicePortName { namespace: ns.into(), name: name.into(), port: port.into(), protocol: Protocol::Tcp }
}

pub(crate) fn svc(ip: &str, port: u16) -> ServicePort {
    ServicePort {
        cluster_ip: ip.parse().unwrap(),
        port,
        node_port: 0,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        affinity_seconds: None,
        internal_local: false,
        external_local: false,
    }
}

pub(crate) fn ep(ip: &str, port: u16, local: bool) -> Endpoint {
    Endpoint { ip: ip.parse::<Ipv4Addr>().unwrap(), port, ready: true, serving: true, terminating: false, local }
}

pub(crate) fn state(items: Vec<(ServicePortName, ServicePort, Vec<Endpoint>)>) -> ProxyState {
    let mut st = ProxyState::default();
    for (n, s, e) in items {
        st.services.insert(n.clone(), s);
        if !e.is_empty() {
            st.endpoints.insert(n, e);
        }
    }
    st
}
