//! Support for end-to-end tests: building and locating the `sma` binary and the example
//! handlers, and running the Python webhook example.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The repository root.
///
/// Found at run time from the `CARGO_MANIFEST_DIR` cargo sets for the test or bench being run,
/// not baked in at compile time: clones at different paths may share one `CARGO_TARGET_DIR`,
/// and cargo can then reuse this crate compiled in another clone, whose path may be gone.
pub fn root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let start = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        start
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file() && dir.join("actions").is_dir())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
    })
    .clone()
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(args)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// The `sma` binary (debug build). Building it with the same selection as
/// `cargo test --workspace` keeps one feature set, so this is a no-op after that build
/// instead of a second compile of wasmtime with other features.
pub fn sma() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| cargo(&["build", "--workspace", "--tests"]));
    target_dir().join("debug/sma")
}

/// A Rust component of the workspace, built on first use.
pub fn rust_component(file: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        cargo(&[
            "build",
            "--profile",
            "guest",
            "--target",
            "wasm32-wasip2",
            "-p",
            "ivr-menu-rust",
            "-p",
            "forward-rust",
            "-p",
            "meeting-pin",
            "-p",
            "chaos-guest",
            "-p",
            "chaos-nostd-guest",
        ])
    });
    target_dir().join("wasm32-wasip2/guest").join(file)
}

/// A component built by `./dev build-examples` (JavaScript, Python).
pub fn built_example(relative: &str) -> PathBuf {
    let path = root().join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `./dev build-examples` (the README's test command does)",
        path.display()
    );
    path
}

/// Compiled-component cache shared by the tests.
pub fn cache_dir() -> PathBuf {
    target_dir().join("sma-test-component-cache")
}

/// An event fixture's path.
pub fn fixture(name: &str) -> PathBuf {
    root().join("actions/tests/fixtures/events").join(name)
}

/// An event fixture's text.
pub fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("read fixture")
}

/// The Python webhook example, running on a free loopback port until dropped.
pub struct PythonWebhook {
    child: Child,
    /// Its URL.
    pub url: String,
}

impl PythonWebhook {
    /// Starts `examples/webhook-python/server.py` with `secret`.
    pub fn start(secret: &str) -> Self {
        Self::start_script("examples/webhook-python/server.py", secret)
    }

    /// Starts another example webhook (`relative` to the repository) that takes `--host`
    /// and `--port` and prints `listening on URL` first, like webhook-python.
    pub fn start_script(relative: &str, secret: &str) -> Self {
        let mut child = Command::new("python3")
            .arg(root().join(relative))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env("SMA_WEBHOOK_SECRET", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 {relative}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the webhook: {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for PythonWebhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sma serve` running on free loopback ports until dropped. Its log (stderr) goes to a file
/// the test can read.
pub struct Serve {
    child: Child,
    /// `(transport, address)` of each listener, from the lines `sma serve` prints.
    pub listeners: Vec<(String, std::net::SocketAddr)>,
    /// The management API's URL (`http://127.0.0.1:<port>`), unless it is off.
    pub api: Option<String>,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Serve {
    /// Starts `sma serve` with a config holding `config_toml` and the given listeners
    /// (e.g. `udp:127.0.0.1:0`).
    pub fn start(config_toml: &str, listen: &[&str], extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut serve = Serve::start_in(dir.path(), config_toml, listen, extra);
        serve._dir = Some(dir);
        serve
    }

    /// Like [`Serve::start`], in a directory the caller keeps (its `sma.toml`, log and store
    /// live there), so a second server can start on what the first left.
    pub fn start_in(dir: &Path, config_toml: &str, listen: &[&str], extra: &[&str]) -> Serve {
        let config = dir.join("sma.toml");
        std::fs::write(&config, config_toml).expect("write sma.toml");
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("serve-{n}.log"));
        let mut cmd = Command::new(sma());
        cmd.arg("serve").arg("--config").arg(&config);
        for l in listen {
            cmd.args(["--sip-listen", l]);
        }
        if !extra.contains(&"--api-listen") {
            cmd.args(["--api-listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(extra)
            .env("SMA_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start sma serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut listeners = Vec::new();
        for _ in 0..listen.len() {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a listening line");
            let spec = line.trim().strip_prefix("listening ").unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("sma serve did not start: {line:?}\n{log}")
            });
            let spec = spec.split(' ').next().unwrap_or(spec);
            let (transport, addr) = spec.split_once(':').expect("transport:addr");
            listeners.push((
                transport.to_owned(),
                addr.parse().expect("listener address"),
            ));
        }
        // Calls are answered once the handlers are loaded (components compiled): `ready`.
        let mut api = None;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("sma serve exited before it was ready:\n{log}");
            }
            if let Some(url) = line.trim().strip_prefix("api listening ") {
                api = Some(url.to_owned());
            }
            if line.trim() == "ready" {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Serve {
            child,
            listeners,
            api,
            log,
            _dir: None,
        }
    }

    /// The server's process id (to read its resident memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address of the first listener of a transport (`udp`, `tcp`, `tls`).
    pub fn addr(&self, transport: &str) -> std::net::SocketAddr {
        self.listeners
            .iter()
            .find(|(t, _)| t == transport)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {transport} listener"))
    }

    /// The log so far, without terminal colours.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Sends SIGHUP (reload the configuration and the TLS certificate).
    pub fn signal_hangup(&self) {
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -HUP {}", self.child.id())])
            .status()
            .expect("kill -HUP");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Waits until the log contains `needle` `count` times, or panics with the log.
    pub fn wait_for_log(&self, needle: &str, count: usize, within: std::time::Duration) {
        let end = std::time::Instant::now() + within;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return;
            }
            if std::time::Instant::now() > end {
                panic!("`{needle}` not logged {count} times within {within:?}:\n{log}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed P-256 certificate for 127.0.0.1 and the DNS name `name` (an end-entity
/// certificate, not a CA) in `dir` as `{name}.crt` / `{name}.key`, made by openssl.
pub fn self_signed_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let openssl = require_program("openssl", "openssl");
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let status = std::process::Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args([
            "-addext",
            &format!("subjectAltName=IP:127.0.0.1,DNS:{name}"),
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl req");
    assert!(status.success(), "openssl req failed");
    (crt, key)
}

/// A program from a Debian package the tests need (installed by `./dev setup`).
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is missing: install the Debian package `{package}` (./dev setup does)")
    })
}

/// The call records `sma serve` wrote to `<storage>/cdr.jsonl` (the tests' `cdr_path`).
pub fn call_records(storage: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(storage.join("cdr.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `done` every 50 ms until it holds; fails the test after `within`.
pub fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub mod calls;
pub mod lambda;
