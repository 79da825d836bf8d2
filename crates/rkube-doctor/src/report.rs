//! The findings as a table grouped by concern (remedies under each WARN and FAIL), or as JSON.

use std::fmt::Write;

use crate::{Finding, Status};

/// A readable report: one line per check, grouped, each problem followed by its remedy, then a summary line.
pub fn render_table(findings: &[Finding]) -> String {
    let mut out = String::new();
    let mut groups: Vec<&str> = Vec::new();
    for f in findings {
        if !groups.contains(&f.group) {
            groups.push(f.group);
        }
    }
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for group in groups {
        let _ = writeln!(out, "{group}:");
        for f in findings.iter().filter(|f| f.group == group) {
            let tag = match f.status {
                Status::Ok => "OK  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            let _ = writeln!(out, "  [{tag}] {:width$}  {}", f.check, f.seen);
            if let Some(remedy) = f.remedy.as_deref().filter(|_| f.status != Status::Ok) {
                let _ = writeln!(out, "         {:width$}  fix: {remedy}", "");
            }
        }
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let _ = writeln!(out, "\n{} OK, {} WARN, {} FAIL", count(Status::Ok), count(Status::Warn), count(Status::Fail));
    out
}

/// `{"findings": [...], "summary": {"ok": n, "warn": n, "fail": n}, "exitCode": n}`.
pub fn render_json(findings: &[Finding]) -> String {
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let doc = serde_json::json!({
        "findings": findings,
        "summary": {"ok": count(Status::Ok), "warn": count(Status::Warn), "fail": count(Status::Fail)},
        "exitCode": crate::exit_code(findings),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::{Finding, render_json, render_table};

    #[test]
    fn table_groups_and_shows_remedies_of_problems_only() {
        let f = vec![
            Finding::ok("network", "net.ipv4.ip_forward", "net.ipv4.ip_forward = 1"),
            Finding::warn("iptables", "FORWARD policy", "FORWARD policy DROP", "iptables -P FORWARD ACCEPT"),
        ];
        let t = render_table(&f);
        assert!(t.starts_with("network:\n  [OK  ] net.ipv4.ip_forward"), "{t}");
        assert!(t.contains("iptables:\n  [WARN] FORWARD policy       FORWARD policy DROP\n"), "{t}");
        assert!(t.contains("fix: iptables -P FORWARD ACCEPT\n"), "{t}");
        assert!(t.ends_with("1 OK, 1 WARN, 0 FAIL\n"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&render_json(&f)).unwrap();
        assert_eq!(j["findings"][1]["status"], "WARN");
        assert_eq!(j["exitCode"], 0);
    }
}
