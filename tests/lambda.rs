//! Lambda-style handlers (a Python module with `lambda_handler`, a Node module exporting
//! `handler`) served as webhooks by the thin adapters in `tests/handlers/`, their code
//! untouched; each exchange the handler had is read back from the adapter's log.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A handler behind its adapter, on a free loopback port until dropped.
pub struct LambdaWebhook {
    child: Child,
    /// The webhook URL to configure as an application's endpoint.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LambdaWebhook {
    /// `tests/handlers/python/<file>` behind `lambda_adapter.py`.
    pub fn python(file: &str) -> LambdaWebhook {
        let handlers = crate::root().join("tests/handlers");
        let mut cmd = Command::new("python3");
        cmd.arg(handlers.join("lambda_adapter.py"))
            .arg("--handler")
            .arg(handlers.join("python").join(file));
        LambdaWebhook::start(cmd)
    }

    /// `tests/handlers/node/<file>` behind `lambda_adapter.mjs`.
    pub fn node(file: &str) -> LambdaWebhook {
        let handlers = crate::root().join("tests/handlers");
        let mut cmd = Command::new("node");
        cmd.arg(handlers.join("lambda_adapter.mjs"))
            .arg("--handler")
            .arg(handlers.join("node").join(file));
        LambdaWebhook::start(cmd)
    }

    fn start(mut cmd: Command) -> LambdaWebhook {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("exchanges.jsonl");
        let mut child = cmd
            .arg("--events")
            .arg(&log)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a Lambda adapter");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("read the listening line");
        // Handlers log to standard output (`print`, `console.log`): keep reading it, or a
        // closed pipe ends the adapter on the handler's next log line.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the adapter: {line:?}"))
            .to_owned();
        LambdaWebhook {
            child,
            url,
            log,
            _dir: dir,
        }
    }

    /// Every exchange so far: `{"event": ..., "response": ...}`.
    pub fn exchanges(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `count` exchanges happened; returns them.
    pub fn wait_for(&self, count: usize, within: Duration) -> Vec<Value> {
        let end = Instant::now() + within;
        loop {
            let seen = self.exchanges();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                Instant::now() < end,
                "only {} of {count} exchanges: {}",
                seen.len(),
                serde_json::to_string_pretty(&seen).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Forgets the exchanges so far (between calls of one test).
    pub fn clear(&self) {
        let _ = std::fs::write(&self.log, "");
    }
}

impl Drop for LambdaWebhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(InvocationEventType, ActionData.Type, ActionData.ErrorType)` of each exchange's event.
pub fn summary(exchanges: &[Value]) -> Vec<(String, String, String)> {
    exchanges
        .iter()
        .map(|x| {
            let e = &x["event"];
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&e["InvocationEventType"]),
                s(&e["ActionData"]["Type"]),
                s(&e["ActionData"]["ErrorType"]),
            )
        })
        .collect()
}
