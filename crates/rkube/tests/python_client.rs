//! The Python `kubernetes` client (PyPI) runs the everyday flows against a real rkube server:
//! CRUD, selectors, paging, a watch resumed from a resourceVersion, the scale subresource.

mod common;

#[test]
fn python_kubernetes_client_flows() {
    let s = common::Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/flows.py");
    let out = std::process::Command::new("python3").arg(script).arg(&s.kubeconfig).output().expect("run python3");
    assert!(
        out.status.success(),
        "python flows failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_tail()
    );
}
