//! The management API with real AWS clients: boto3 (from PyPI, in the project's .venv)
//! against a freshly started `sma serve`.

use sma_e2e::{root, Serve};
use std::process::Command;

const KEY: &str = "AKIASMADEVELOPMENT01";
const SECRET: &str = "sma/dev/secret/key/do/not/use/in/production";

#[test]
fn boto3_signs_in_and_gets_the_model_shapes() {
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let url = serve.api.clone().expect("the API is on");
    let python = root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run ./dev setup",
        python.display()
    );
    let out = Command::new(python)
        .arg(root().join("tests/api/smoke.py"))
        .args([url.as_str(), KEY, SECRET])
        .output()
        .expect("run tests/api/smoke.py");
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
