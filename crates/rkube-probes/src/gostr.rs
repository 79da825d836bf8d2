//! Go's formatting of the values that appear in upstream's messages (`%q`, `time.Duration`, `format.Pod`,
//! `net.JoinHostPort`, syscall errno texts), so events and hook errors read exactly as the kubelet's.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// Go's `%q` of a string: double-quoted, with Go's escapes for quotes, backslashes and non-printables.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of bytes that may not be UTF-8 (command output): invalid bytes become `\xNN` as Go prints them.
pub(crate) fn quote_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => quote(s),
        Err(_) => {
            let mut out = String::from("\"");
            for chunk in b.utf8_chunks() {
                let inner = quote(chunk.valid());
                out.push_str(&inner[1..inner.len() - 1]);
                for byte in chunk.invalid() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            out.push('"');
            out
        }
    }
}

/// Go's `time.Duration.String()` for whole and fractional seconds (`1s`, `1m30s`, `1h0m0s`, `500ms`).
pub(crate) fn duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        return format!("{}ms", trim_float(ms));
    }
    let total = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let secs = if frac == 0 { s.to_string() } else { trim_float(s as f64 + f64::from(frac) / 1e9) };
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The kubelet's `format.Pod`: `name_namespace(uid)`.
pub(crate) fn pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// Go's `net.JoinHostPort`: IPv6 literals in brackets.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Go's text for an OS error (its errno table is strerror in lower case): `connection refused`.
pub(crate) fn os_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::TimedOut && e.raw_os_error().is_none() {
        return "i/o timeout".to_owned();
    }
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("a \"b\"\n\tc\\"), r#""a \"b\"\n\tc\\""#);
        assert_eq!(quote("\u{1}é"), r#""\x01é""#);
        assert_eq!(quote_bytes(b"ok\xff"), r#""ok\xff""#);
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn os_errors_like_go() {
        assert_eq!(os_error(&std::io::Error::from_raw_os_error(111)), "connection refused");
        assert_eq!(os_error(&std::io::Error::from_raw_os_error(113)), "no route to host");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
    }
}
