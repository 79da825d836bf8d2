//! The benchmark's measure on its baseline path (two namespaces joined by a veth, made and removed here): bytes
//! flow, round trips are timed, and the namespaces are gone afterwards.

use std::time::Duration;

#[test]
fn a_veth_path_is_measured_and_removed() {
    let pair = rkube_cluster::netperf::VethPair::new().expect("veth pair");
    let (a, b, ip) = pair.ends();
    assert!(a.exists() && b.exists());
    let f = rkube_cluster::netperf::measure(&a, &b, ip, Duration::from_millis(300), 200).expect("measure");
    assert!(f.gbit_s > 0.01, "{f:?}");
    assert!(f.rtt_p50 > Duration::ZERO && f.rtt_p50 <= f.rtt_p99 && f.rtt_p99 < Duration::from_secs(1), "{f:?}");
    drop(pair);
    assert!(!a.exists() && !b.exists(), "namespaces removed");
}
