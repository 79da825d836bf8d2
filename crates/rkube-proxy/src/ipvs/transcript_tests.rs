//! ipvs mode's programming tested against a recorded netlink transcript. This machine's kernel has no
//! ip_vs, so no IPVS family exists to talk to: the transcript (`testdata/transcript.txt`) stands in for the
//! kernel. It lists, per sync of a small scenario, every request the kernel would receive — a readable line
//! and the exact bytes — and the test asserts the programmer sends exactly those, and nothing when nothing
//! changed. The bytes are decoded here by an independent reader of `ip_vs.h`'s layout, which must reproduce
//! the readable line, so a wrong attribute number or byte order fails even if the fixture were re-recorded.
//! (The family id 0x24 stands for the one the kernel assigns to "IPVS" at run time.) Re-record with
//! `RKUBE_BLESS=1 cargo test -p rkube-proxy transcript`.

use std::net::Ipv4Addr;

use super::diff::Programmer;
use super::genl::encode;
use crate::model::ProxyState;
use crate::testutil::{ep, spn, state, svc};

const FAMILY: u16 = 0x24;
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ipvs/testdata/transcript.txt");

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The scenario: two services (ClientIP affinity; NodePort on two node addresses), one endpoint removed,
/// an unchanged sync, the NodePort service deleted.
fn steps() -> Vec<(&'static str, ProxyState)> {
    let mut web = svc("10.96.0.10", 80);
    web.affinity_seconds = Some(600);
    let mut shop = svc("10.96.0.20", 80);
    shop.node_port = 30080;
    let web_eps = vec![ep("10.244.1.2", 8080, false), ep("10.244.2.3", 8080, false)];
    let shop_eps = vec![ep("10.244.1.4", 8080, true)];
    let both = state(vec![
        (spn("default", "web", ""), web.clone(), web_eps.clone()),
        (spn("default", "shop", ""), shop.clone(), shop_eps.clone()),
    ]);
    let one_gone = state(vec![
        (spn("default", "web", ""), web.clone(), web_eps[..1].to_vec()),
        (spn("default", "shop", ""), shop, shop_eps),
    ]);
    let shop_deleted = state(vec![(spn("default", "web", ""), web, web_eps[..1].to_vec())]);
    vec![
        ("web (ClientIP 600s) and shop (NodePort 30080 on two node addresses) created", both),
        ("endpoint 10.244.2.3 of web removed", one_gone.clone()),
        ("nothing changed", one_gone),
        ("shop deleted", shop_deleted),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn record() -> String {
    let mut p = Programmer::new("lc", vec![ip("192.168.1.10"), ip("192.168.1.11")]);
    let mut out = String::new();
    let mut seq = 0;
    for (i, (what, st)) in steps().into_iter().enumerate() {
        let plan = p.plan(&st);
        out.push_str(&format!("== sync {}: {what}\n", i + 1));
        let addrs = |v: &[Ipv4Addr]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        out.push_str(&format!("kube-ipvs0 add [{}] del [{}]\n", addrs(&plan.bind), addrs(&plan.unbind)));
        for op in &plan.ops {
            seq += 1;
            out.push_str(&format!("> {op}\n< {}\n", hex(&encode(op, FAMILY, seq))));
        }
        p.commit(plan);
    }
    out
}

/// Attributes of a run: (type without flags, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_le_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_le_bytes([b[2], b[3]]) & 0x3fff;
        out.push((ty, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

fn get<'a>(a: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    a.iter().find(|(t, _)| *t == ty).map(|(_, p)| *p)
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap())
}

/// Reads a request back into the readable line, following `ip_vs.h` (not the encoder).
pub(super) fn decode(m: &[u8]) -> String {
    assert_eq!(u32le(&m[0..4]) as usize, m.len(), "nlmsg_len");
    assert_eq!(u16::from_le_bytes([m[4], m[5]]), FAMILY);
    assert_eq!(u16::from_le_bytes([m[6], m[7]]), 0x1 | 0x4, "NLM_F_REQUEST|NLM_F_ACK");
    assert_eq!(m[17], 1, "IPVS_GENL_VERSION");
    let top = attrs(&m[20..]);
    let svc = attrs(get(&top, 1).expect("IPVS_CMD_ATTR_SERVICE"));
    assert_eq!(get(&svc, 1), Some(&2u16.to_le_bytes()[..]), "IPVS_SVC_ATTR_AF = AF_INET");
    let proto = match u16::from_le_bytes(get(&svc, 2).unwrap().try_into().unwrap()) {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        p => panic!("protocol {p}"),
    };
    let a = get(&svc, 3).unwrap();
    let port = u16::from_be_bytes(get(&svc, 4).unwrap().try_into().unwrap());
    let vs = format!("{proto} {}.{}.{}.{}:{port}", a[0], a[1], a[2], a[3]);
    let full_svc = || {
        let sched = get(&svc, 6).unwrap();
        let flags = get(&svc, 7).unwrap();
        assert_eq!(u32le(&flags[4..8]), u32::MAX, "flags mask");
        assert_eq!(get(&svc, 9), Some(&[0xff; 4][..]), "netmask");
        format!(
            " sched={} flags={:#x} timeout={}",
            std::str::from_utf8(&sched[..sched.len() - 1]).unwrap(),
            u32le(&flags[0..4]),
            u32le(get(&svc, 8).unwrap())
        )
    };
    let dest = || {
        let d = attrs(get(&top, 2).expect("IPVS_CMD_ATTR_DEST"));
        let a = get(&d, 1).unwrap();
        let port = u16::from_be_bytes(get(&d, 2).unwrap().try_into().unwrap());
        assert_eq!(get(&d, 11), Some(&2u16.to_le_bytes()[..]), "IPVS_DEST_ATTR_ADDR_FAMILY");
        let weight = get(&d, 4).map(|w| {
            assert_eq!(get(&d, 3), Some(&[0u8; 4][..]), "IP_VS_CONN_F_MASQ");
            assert!(get(&d, 5).is_some() && get(&d, 6).is_some(), "thresholds");
            format!(" weight={}", u32le(w))
        });
        format!(" -> {}.{}.{}.{}:{port}{}", a[0], a[1], a[2], a[3], weight.unwrap_or_default())
    };
    match m[16] {
        1 => format!("NEW_SERVICE {vs}{}", full_svc()),
        2 => format!("SET_SERVICE {vs}{}", full_svc()),
        3 => format!("DEL_SERVICE {vs}"),
        5 => format!("NEW_DEST {vs}{}", dest()),
        6 => format!("SET_DEST {vs}{}", dest()),
        7 => format!("DEL_DEST {vs}{}", dest()),
        c => panic!("command {c}"),
    }
}

#[cfg(target_endian = "little")]
#[test]
fn programming_matches_the_recorded_netlink_transcript() {
    let got = record();
    if std::env::var_os("RKUBE_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(FIXTURE).parent().unwrap()).unwrap();
        std::fs::write(FIXTURE, &got).unwrap();
    }
    let want = std::fs::read_to_string(FIXTURE).unwrap();
    assert_eq!(got, want, "the requests differ from the recorded transcript");
    // Every recorded request decodes back to its readable line.
    let lines: Vec<&str> = want.lines().collect();
    let mut n = 0;
    for pair in lines.windows(2) {
        if let (Some(readable), Some(bytes)) = (pair[0].strip_prefix("> "), pair[1].strip_prefix("< ")) {
            assert_eq!(decode(&unhex(bytes)), readable);
            n += 1;
        }
    }
    assert_eq!(n, 13, "messages in the transcript");
}
