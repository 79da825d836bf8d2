//! Services (PORT(S) `80:30080/TCP`, EXTERNAL-IP), endpoints and endpoint slices.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::column;
use crate::descriptions::{
    EP_SUBSETS, ES_ADDRTYPE, ES_ENDPOINTS, ES_PORTS, SVC_CLUSTERIP, SVC_EXTIPS, SVC_PORTS, SVC_SELECTOR, SVC_TYPE,
};
use crate::format::{join_host_port, labels, list_with_more};
use crate::value::{age, arr_at, int_at, map_at, name, opt_int, opt_str, str_at};

/// `services`.
pub(crate) const SERVICES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Type", SVC_TYPE),
            column::string("Cluster-IP", SVC_CLUSTERIP),
            column::string("External-IP", SVC_EXTIPS),
            column::string("Port(s)", SVC_PORTS),
            column::age(),
            column::wide("Selector", SVC_SELECTOR),
        ]
    },
    cells: service_cells,
};

fn service_cells(o: &Value, now: SystemTime) -> Vec<Value> {
    // spec.type defaults to ClusterIP.
    let type_ = match str_at(o, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    // Upstream reads clusterIPs, which defaulting fills from clusterIP.
    let cluster_ip = arr_at(o, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(o, "/spec/clusterIP"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let ports = service_ports(arr_at(o, "/spec/ports"));
    vec![
        name(o),
        json!(type_),
        json!(cluster_ip),
        json!(external_ip(o, type_)),
        json!(if ports.is_empty() { "<none>".to_owned() } else { ports }),
        age(o, now),
        json!(labels(map_at(o, "/spec/selector"))),
    ]
}

/// `80/TCP,443:30443/TCP`: port, node port when allocated, protocol (defaulting to TCP).
fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let protocol = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            let port = int_at(p, "/port");
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// EXTERNAL-IP: external IPs, load-balancer ingress (`<pending>` until assigned), or the external name.
fn external_ip(o: &Value, type_: &str) -> String {
    let external: Vec<&str> = arr_at(o, "/spec/externalIPs").iter().filter_map(Value::as_str).collect();
    match type_ {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            // The server prints wide, so upstream's 16-character clipping never applies here.
            let mut ingress: Vec<&str> = arr_at(o, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match str_at(i, "/ip") {
                    "" => str_at(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            ingress.sort_unstable();
            ingress.dedup();
            let all: Vec<&str> = ingress.into_iter().chain(external).collect();
            if all.is_empty() { "<pending>".to_owned() } else { all.join(",") }
        }
        "ExternalName" => str_at(o, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// `endpoints`.
pub(crate) const ENDPOINTS: Printer = Printer {
    columns: || vec![column::name(), column::string("Endpoints", EP_SUBSETS), column::age()],
    cells: |o, now| vec![name(o), json!(endpoints_cell(o)), age(o, now)],
};

/// `ip:port` for each ready address and port, at most three, then `+ N more...`; bare IPs for subsets
/// without ports (headless services); `<none>` without subsets.
fn endpoints_cell(o: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(o, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| str_at(a, "/ip").to_owned()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| join_host_port(str_at(a, "/ip"), int_at(port, "/port"))));
        }
    }
    list.truncate(MAX);
    let shown = list.join(",");
    if count > MAX { format!("{shown} + {} more...", count - MAX) } else { shown }
}

/// `endpointslices`.
pub(crate) const ENDPOINT_SLICES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("AddressType", ES_ADDRTYPE),
            column::string("Ports", ES_PORTS),
            column::string("Endpoints", ES_ENDPOINTS),
            column::age(),
        ]
    },
    cells: |o, now| {
        let ports: Vec<String> = arr_at(o, "/ports")
            .iter()
            .map(|p| match (opt_int(p, "/port"), opt_str(p, "/name")) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.to_owned(),
                (None, None) => "*".to_owned(),
            })
            .collect();
        let addresses: Vec<String> = arr_at(o, "/endpoints")
            .iter()
            .flat_map(|e| arr_at(e, "/addresses").iter().filter_map(Value::as_str).map(str::to_owned))
            .collect();
        vec![
            name(o),
            json!(str_at(o, "/addressType")),
            json!(list_with_more(&ports, 3)),
            json!(list_with_more(&addresses, 3)),
            age(o, now),
        ]
    },
};

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
