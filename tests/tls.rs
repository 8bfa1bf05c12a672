//! The TLS listener with the operator's certificate files: TLS 1.2 and 1.3 only, and a
//! renewed certificate served after SIGHUP without a restart (checked with openssl s_client,
//! a client that is not sma's).

use sma_e2e::{self_signed_certificate, Serve};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether openssl completes a handshake with `addr` trusting `ca` (extra `options`).
fn handshake(addr: &str, ca: &Path, options: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-verify_return_error",
            "-brief",
        ])
        .arg("-CAfile")
        .arg(ca)
        .args(options)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("Verification: OK"),
        text,
    )
}

#[test]
fn the_configured_certificate_is_served_with_tls_1_2_or_1_3_and_reloaded_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    self_signed_certificate(dir.path(), "first");
    self_signed_certificate(dir.path(), "second");
    let (crt, key) = (dir.path().join("served.crt"), dir.path().join("served.key"));
    std::fs::copy(dir.path().join("first.crt"), &crt).expect("copy");
    std::fs::copy(dir.path().join("first.key"), &key).expect("copy");
    let config = format!(
        "[sip.tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        crt.display(),
        key.display()
    );
    let serve = Serve::start(&config, &["tls:127.0.0.1:0"], &[]);
    let addr = serve.addr("tls").to_string();
    let first = dir.path().join("first.crt");
    let second = dir.path().join("second.crt");
    let (ok, out) = handshake(&addr, &first, &[]);
    assert!(ok, "{out}");
    assert!(
        handshake(&addr, &first, &["-tls1_2"]).0,
        "TLS 1.2 is accepted"
    );
    let (old, out) = handshake(&addr, &first, &["-tls1_1"]);
    assert!(!old, "TLS 1.1 must be refused: {out}");
    assert!(!handshake(&addr, &second, &[]).0);
    // A renewed certificate: new files, SIGHUP, served to new connections.
    std::fs::copy(dir.path().join("second.crt"), &crt).expect("copy");
    std::fs::copy(dir.path().join("second.key"), &key).expect("copy");
    serve.signal_hangup();
    serve.wait_for_log("tls: certificate reloaded", 1, Duration::from_secs(10));
    let (ok, out) = handshake(&addr, &second, &[]);
    assert!(ok, "{out}\n{}", serve.log());
    assert!(!handshake(&addr, &first, &[]).0);
    // A broken file on the next SIGHUP keeps the certificate in service.
    std::fs::write(&crt, "not a certificate").expect("write");
    serve.signal_hangup();
    serve.wait_for_log("tls: certificate not reloaded", 1, Duration::from_secs(10));
    assert!(handshake(&addr, &second, &[]).0, "{}", serve.log());
}
