//! The QA tool end to end: `sma call` scenarios against the runtime and against baresip in
//! auto-answer mode, a misbehaving far end, bad scenario files, load mode, and
//! `sma simulate` on the example handler.

use serde_json::Value;
use sma_e2e::calls::{best_correlation, prompt_signal, read_wav, Baresip};
use sma_e2e::{built_example, cache_dir, root, rust_component, sma, PythonWebhook, Serve};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const NUMBER: &str = "+12065550100";

fn ivr_config(media: (u16, u16), storage: &Path) -> String {
    format!(
        r#"
[media]
port_range = [{lo}, {hi}]
[storage]
root = "{storage}"
[[phone_numbers]]
number = "{NUMBER}"
[[applications]]
id = "ivr"
name = "ivr-menu"
endpoint = "{ivr}"
[[sip_rules]]
id = "rule-1"
name = "demo"
trigger_type = "ToPhoneNumber"
trigger_value = "{NUMBER}"
targets = [{{ application = "ivr", priority = 1 }}]
"#,
        lo = media.0,
        hi = media.1,
        storage = storage.display(),
        ivr = rust_component("ivr_menu_rust.wasm").display()
    )
}

fn sma_call(args: &[&str]) -> Output {
    Command::new(sma())
        .arg("call")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run sma call")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_example_scenario_passes_against_the_runtime_with_every_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(
        &ivr_config((26000, 26099), dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let scenario = root().join("examples/scenarios/ivr-menu-sales.yaml");
    let (junit, json, recordings) = (
        dir.path().join("junit.xml"),
        dir.path().join("summary.json"),
        dir.path().join("rec"),
    );
    let target = serve.addr("udp").to_string();
    let out = sma_call(&[
        "--scenario",
        scenario.to_str().unwrap_or_default(),
        "--target",
        &target,
        "--rtp-ports",
        "26100-26199",
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--json",
        json.to_str().unwrap_or_default(),
        "--record-dir",
        recordings.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS: 6 steps"), "{stdout}");
    assert!(stdout.contains("far end hung up"), "{stdout}");

    let summary: Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).unwrap();
    assert_eq!(summary["passed"], true);
    assert_eq!(summary["codec"], "PCMU/8000");
    assert_eq!(summary["steps"].as_array().map(Vec::len), Some(6));
    assert_eq!(summary["steps"][3]["step"], "send_digits \"1\"");
    assert!(summary["setup_ms"].as_f64().is_some_and(|ms| ms > 0.0));

    let junit = std::fs::read_to_string(&junit).expect("junit");
    assert!(junit.contains("tests=\"6\" failures=\"0\""), "{junit}");
    assert_eq!(junit.matches("<testcase").count(), 6, "{junit}");

    // Both directions, as a stereo WAV: the IVR's speech left, our DTMF-bearing audio right.
    let wav = recordings.join("ivr-menu-press-1-for-sales-1.wav");
    let (channels, rate, samples) = read_wav(&wav);
    assert_eq!((channels, rate), (2, 8000));
    let left_energy: f64 = samples.iter().step_by(2).map(|s| f64::from(*s).abs()).sum();
    assert!(samples.len() > 2 * 8000 * 2, "at least 2 s recorded");
    assert!(left_energy > 0.0, "the IVR's speech is in the left channel");
    serve.wait_for_log(
        "invoking handler sequence=3 event=\"HANGUP\"",
        1,
        Duration::from_secs(5),
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn a_scenario_against_baresip_hears_its_prompt_and_sends_it_digits() {
    let dir = tempfile::tempdir().expect("tempdir");
    // baresip plays a known prompt (after half a second of quiet); the scenario expects it
    // by cross-correlation, presses keys, plays a file back and hangs up.
    let prompt = prompt_signal(8000, 1.5);
    let mut mic = vec![0i16; 4000];
    mic.extend(&prompt);
    mic.extend(vec![0i16; 8000 * 30]);
    std::fs::write(
        dir.path().join("prompt.wav"),
        sma_e2e::calls::wav(&prompt, 8000),
    )
    .expect("prompt");
    let (mut phone, address) = Baresip::answering((26200, 26299), &mic);
    let scenario = write(
        dir.path(),
        "baresip.yaml",
        &format!(
            "name: baresip far end\ncall:\n  to: sip:+14255550199@{address}\nsteps:\n  - expect: answered\n  - expect_prompt: {{file: prompt.wav, within: 6s}}\n  - send_digits: {{digits: \"42\", duration_ms: 120}}\n  - play: prompt.wav\n  - say: one two three\n  - expect_digits: {{digits: \"7#\", within: 15s}}\n  - expect_silence: {{min_ms: 500}}\n  - hangup\n"
        ),
    );
    let child = Command::new(sma())
        .args([
            "call",
            "-s",
            &scenario,
            "--rtp-ports",
            "26300-26399",
            "--no-record",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sma call");
    // baresip presses 7 and # once our speech has started (RFC 4733 from its side).
    phone.wait_for_log("Call established", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(4_500));
    phone.send_digits("7#", Duration::from_millis(300));
    let out = child.wait_with_output().expect("sma call output");
    assert!(
        out.status.success(),
        "{}\nbaresip:\n{}",
        text(&out),
        phone.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("matched with score"), "{stdout}");
    assert!(stdout.contains("received \"7#\""), "{stdout}");
    let log = phone.log();
    assert!(
        log.contains("received event: '4'") && log.contains("received event: '2'"),
        "baresip did not report our RFC 4733 digits:\n{log}"
    );
    // What the scenario played reached baresip intact.
    phone.wait_for_log("session closed", Duration::from_secs(5));
    let heard = phone.received();
    let score = best_correlation(&heard, &prompt);
    assert!(
        score > 0.9,
        "baresip heard the played file with correlation {score}"
    );
}

#[test]
fn bad_scenarios_and_unreachable_targets_fail_before_dialing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown = write(
        dir.path(),
        "unknown.yaml",
        "call:\n  to: sip:x@127.0.0.1:5999\nsteps:\n  - expect: answered\n  - press: 1\n",
    );
    let out = sma_call(&["-s", &unknown]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown.yaml:5: steps[1]"), "{err}");
    assert!(err.contains("unknown variant `press`"), "{err}");

    let missing = write(
        dir.path(),
        "missing.yaml",
        "call:\n  to: sip:x@127.0.0.1:5999\nsteps:\n  - expect: answered\n  - play: gone.wav\n",
    );
    let out = sma_call(&["-s", &missing]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.yaml:5: steps[1].play.file"), "{err}");
    assert!(err.contains("gone.wav"), "{err}");

    // Nothing listens on this port: refused before any INVITE.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("port");
    let nobody = write(
        dir.path(),
        "nobody.yaml",
        &format!("call:\n  to: sip:x@127.0.0.1:{port}\nsteps:\n  - expect: answered\n"),
    );
    let out = sma_call(&["-s", &nobody, "--no-record"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing listens for SIP"),
        "{}",
        text(&out)
    );
}

/// A far end that misbehaves on purpose: it answers every request it must, but its INVITE
/// handling depends on `mode`.
fn misbehaving_uas(mode: &'static str) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = socket.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let method = request.split(' ').next().unwrap_or_default().to_owned();
            let header = |name: &str| -> String {
                request
                    .lines()
                    .filter(|l| {
                        l.to_ascii_lowercase()
                            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                    })
                    .map(|l| l.to_owned() + "\r\n")
                    .collect()
            };
            let respond = |status: &str, body: &str, tag: bool| {
                let to = header("To").trim_end().to_owned();
                let to = if tag && !to.contains("tag=") {
                    format!("{to};tag=far")
                } else {
                    to
                };
                let ctype = if body.is_empty() {
                    ""
                } else {
                    "Content-Type: application/sdp\r\n"
                };
                let msg = format!(
                    "SIP/2.0 {status}\r\n{}{}{to}\r\n{}{}Contact: <sip:far@{address}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
                    header("Via"), header("From"), header("Call-ID"), header("CSeq"), body.len()
                );
                let _ = socket.send_to(msg.as_bytes(), from);
            };
            match method.as_str() {
                "INVITE" => match mode {
                    "never-answers" => {
                        respond("100 Trying", "", false);
                        respond("180 Ringing", "", true);
                    }
                    "garbage-sdp" => respond("200 OK", "this is not SDP\r\n", true),
                    _ => {
                        // Valid SDP, then garbage instead of RTP at the caller's port.
                        let sdp = format!(
                            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                            address.port() + 2
                        );
                        respond("200 OK", &sdp, true);
                        let port = request
                            .lines()
                            .find_map(|l| l.strip_prefix("m=audio "))
                            .and_then(|l| l.split(' ').next())
                            .and_then(|p| p.parse::<u16>().ok());
                        if let Some(port) = port {
                            let junk = UdpSocket::bind("127.0.0.1:0").expect("junk");
                            for i in 0..20u8 {
                                let _ = junk.send_to(&[0xff, i, 0, 1, 2], ("127.0.0.1", port));
                            }
                        }
                    }
                },
                "CANCEL" => {
                    respond("200 OK", "", true);
                }
                "BYE" | "OPTIONS" => respond("200 OK", "", true),
                _ => {}
            }
        }
    });
    address
}

#[test]
fn a_misbehaving_far_end_fails_a_step_with_the_reason_never_hangs() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (mode, steps, reason) in [
        (
            "never-answers",
            "  answer_timeout: 2s\nsteps:\n  - expect: ringing\n  - expect: answered\n",
            "no final response within 2.0 s (last: 180 Ringing)",
        ),
        (
            "garbage-sdp",
            "steps:\n  - expect: answered\n",
            "answered, but the SDP answer is unusable",
        ),
        (
            "no-rtp",
            "steps:\n  - expect: answered\n  - expect_audio: {within: 1s}\n",
            "no RTP received within 1.0 s",
        ),
    ] {
        let far = misbehaving_uas(mode);
        let scenario = write(
            dir.path(),
            &format!("{mode}.yaml"),
            &format!("call:\n  to: sip:far@{far}\n{steps}"),
        );
        let started = std::time::Instant::now();
        let out = sma_call(&["-s", &scenario, "--rtp-ports", "26400-26499", "--no-record"]);
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(reason), "{mode}: {stdout}");
        assert!(stdout.contains("FAIL: step"), "{mode}: {stdout}");
        // By design at most answer_timeout + the 5 s clearing wait (about 8 s idle). The bound
        // leaves room for a loaded CI machine (20 s was once exceeded under a parallel build)
        // and stays below the 32 s an INVITE transaction would take to time out by itself,
        // which is what "hangs" would look like.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{mode} took too long"
        );
    }
}

#[test]
fn load_mode_runs_many_calls_and_summarises_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(
        &ivr_config((26500, 26699), dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let scenario = write(
        dir.path(),
        "short.yaml",
        &format!(
            "name: short\ncall:\n  to: sip:{NUMBER}@127.0.0.1\nmedia:\n  silence: suppress\nsteps:\n  - expect: answered\n  - expect_audio: {{min_ms: 200, within: 5s}}\n  - hangup\n"
        ),
    );
    let json = dir.path().join("load.json");
    let target = serve.addr("udp").to_string();
    let out = sma_call(&[
        "-s",
        &scenario,
        "--target",
        &target,
        "--calls",
        "20",
        "--rate",
        "20",
        "--concurrency",
        "10",
        "--rtp-ports",
        "26700-26899",
        "--json",
        json.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("attempted 20  answered 20  passed 20  failed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("call setup (INVITE to 2xx) ms: p50"),
        "{stdout}"
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).unwrap();
    assert_eq!(summary["passed"], 20);
    assert!(summary["peak_in_progress"]
        .as_u64()
        .is_some_and(|p| p <= 10));
    assert!(summary["setup_ms"]["p99"].as_f64().is_some());
    assert!(summary["rtp"]["frames_received"]
        .as_u64()
        .is_some_and(|n| n > 0));
}

#[test]
fn simulate_runs_the_example_flows_and_reports_broken_expectations() {
    let ivr = rust_component("ivr_menu_rust.wasm");
    let examples = root().join("examples/simulations");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples/simulations")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    // Every example application implements the same menu: each flow passes on each of them,
    // components and webhook alike.
    let webhook = PythonWebhook::start("sim-secret");
    let handlers = [
        ivr.display().to_string(),
        built_example("examples/hello-js/dist/hello-js.wasm")
            .display()
            .to_string(),
        built_example("examples/hello-python/dist/hello-python.wasm")
            .display()
            .to_string(),
        webhook.url.clone(),
    ];
    for handler in &handlers {
        for file in &files {
            let out = Command::new(sma())
                .args(["simulate", "--handler", handler, "--secret", "sim-secret"])
                .arg("--cache-dir")
                .arg(cache_dir())
                .arg("--scenario")
                .arg(file)
                .output()
                .expect("sma simulate");
            assert!(
                out.status.success(),
                "{handler} {}: {}",
                file.display(),
                text(&out)
            );
            assert!(String::from_utf8_lossy(&out.stdout).ends_with("PASS\n"));
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = write(
        dir.path(),
        "wrong.yaml",
        "script:\n  - digits: \"2\"\n  - digits: \"9\"\nexpect:\n  actions: [SpeakAndGetDigits, Hangup]\n  attributes: {department: sales}\n",
    );
    let json = dir.path().join("timeline.json");
    let out = Command::new(sma())
        .args(["simulate", "--handler"])
        .arg(&ivr)
        .args(["--scenario", &wrong, "--json"])
        .arg(&json)
        .output()
        .expect("sma simulate");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ReceivedDigits=2"), "{stdout}");
    assert!(
        stdout.contains("FAIL: script item 2 (digits \"9\") was never used"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL: expected actions [SpeakAndGetDigits, Hangup], the handler returned [SpeakAndGetDigits, Speak, Hangup]"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "attribute `department`: expected \"sales\", the call ended with \"support\""
        ),
        "{stdout}"
    );
    let timeline: Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).unwrap();
    assert_eq!(timeline["passed"], false);
    assert_eq!(
        timeline["timeline"][0]["event"]["InvocationEventType"],
        "NEW_INBOUND_CALL"
    );

    let bad = write(dir.path(), "bad.yaml", "script:\n  - press: 1\n");
    let out = Command::new(sma())
        .args(["simulate", "--handler"])
        .arg(&ivr)
        .args(["--scenario", &bad])
        .output()
        .expect("sma simulate");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:2: script[0]"), "{err}");
}

/// `examples/scenarios/sma.toml` with this run's paths: the built components, the webhook's
/// port, and free media ports.
fn examples_config(webhook: &str, media: (u16, u16)) -> String {
    let text = std::fs::read_to_string(root().join("examples/scenarios/sma.toml"))
        .expect("examples/scenarios/sma.toml");
    let replaced = text
        .replace(
            "../../target/wasm32-wasip2/guest/ivr_menu_rust.wasm",
            &rust_component("ivr_menu_rust.wasm").display().to_string(),
        )
        .replace(
            "../hello-js/dist/hello-js.wasm",
            &built_example("examples/hello-js/dist/hello-js.wasm")
                .display()
                .to_string(),
        )
        .replace(
            "../hello-python/dist/hello-python.wasm",
            &built_example("examples/hello-python/dist/hello-python.wasm")
                .display()
                .to_string(),
        )
        .replace(
            "../../target/wasm32-wasip2/guest/forward_rust.wasm",
            &rust_component("forward_rust.wasm").display().to_string(),
        )
        .replace(
            "../../target/wasm32-wasip2/guest/meeting_pin.wasm",
            &rust_component("meeting_pin.wasm").display().to_string(),
        )
        .replace("http://127.0.0.1:8088/", webhook)
        .replace(
            "port_range = [20000, 20999]",
            &format!("port_range = [{}, {}]", media.0, media.1),
        );
    assert_ne!(text, replaced);
    replaced
}

#[test]
fn every_example_scenario_passes_against_its_example_application() {
    let webhook = PythonWebhook::start("dev-secret");
    let serve = Serve::start(
        &examples_config(&webhook.url, (27000, 27199)),
        &["udp:127.0.0.1:0"],
        &["--cache-dir", &cache_dir().display().to_string()],
    );
    let mut scenarios: Vec<_> = std::fs::read_dir(root().join("examples/scenarios"))
        .expect("examples/scenarios")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 4, "one scenario per example application");
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("examples.xml");
    let target = serve.addr("udp").to_string();
    let mut args = vec![
        "--target".to_owned(),
        target,
        "--rtp-ports".into(),
        "27200-27399".into(),
        "--no-record".into(),
        "--junit".into(),
        junit.display().to_string(),
    ];
    for s in &scenarios {
        args.push("-s".into());
        args.push(s.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sma_call(&args);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    let junit = std::fs::read_to_string(&junit).expect("junit");
    assert_eq!(
        junit.matches("<testsuite ").count(),
        scenarios.len(),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
}

#[test]
fn scenarios_dial_over_tcp_and_tls_with_digest_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("dev-cert.pem");
    let extra = r#"
[[voice_connectors]]
name = "auth pbx"
outbound_host_name = "auth.vc.example"
require_encryption = true
termination = { cidr_allow_list = ["127.0.0.1/32"], credentials = [{ username = "pbx", password = "s3cret" }] }
[[sip_rules]]
name = "auth trunk"
trigger_type = "RequestUriHostname"
trigger_value = "auth.vc.example"
targets = [{ application = "ivr", priority = 1 }]
"#;
    let serve = Serve::start(
        &(ivr_config((27400, 27499), dir.path()) + extra),
        &["tcp:127.0.0.1:0", "tls:127.0.0.1:0"],
        &["--tls-dev-cert-out", &cert.display().to_string()],
    );
    let tcp = write(
        dir.path(),
        "tcp.yaml",
        &format!("call:\n  to: \"{NUMBER}\"\n  server: {}\n  transport: tcp\nsteps:\n  - expect: answered\n  - expect_audio: {{min_ms: 500}}\n  - hangup\n", serve.addr("tcp")),
    );
    let out = sma_call(&["-s", &tcp, "--rtp-ports", "27500-27599", "--no-record"]);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("over TCP"));

    let tls = |password: &str| {
        format!(
            "call:\n  to: sip:+12065550100@auth.vc.example\n  server: {}\n  transport: tls\n  credentials: {{username: pbx, password: {password}}}\nmedia: {{srtp: required}}\nsteps:\n  - expect: answered\n  - expect_audio: {{min_ms: 500}}\n  - hangup\n",
            serve.addr("tls")
        )
    };
    let good = write(dir.path(), "tls.yaml", &tls("s3cret"));
    let cert_arg = cert.display().to_string();
    let out = sma_call(&[
        "-s",
        &good,
        "--ca-file",
        &cert_arg,
        "--rtp-ports",
        "27500-27599",
        "--no-record",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    // The connector requires encryption: the call was SRTP, and a plain offer is refused.
    assert!(
        serve.log().contains("srtp=\"AEAD_AES_256_GCM\""),
        "{}",
        serve.log()
    );
    let plain = write(
        dir.path(),
        "tls-plain.yaml",
        &tls("s3cret").replace("media: {srtp: required}\n", ""),
    );
    let out = sma_call(&[
        "-s",
        &plain,
        "--ca-file",
        &cert_arg,
        "--rtp-ports",
        "27500-27599",
        "--no-record",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rejected: 488"),
        "{}",
        text(&out)
    );
    assert!(
        serve.log().contains("requires SRTP"),
        "the refusal says why: {}",
        serve.log()
    );

    // A wrong password is refused, and the step says so.
    let bad = write(dir.path(), "tls-bad.yaml", &tls("wrong"));
    let out = sma_call(&[
        "-s",
        &bad,
        "--ca-file",
        &cert_arg,
        "--rtp-ports",
        "27500-27599",
        "--no-record",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the call was rejected: 40"),
        "{}",
        text(&out)
    );
    // TLS without something to trust fails before dialing.
    let out = sma_call(&["-s", &good, "--no-record"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-file"));
}

#[test]
fn scenario_headers_and_caller_reach_the_handler() {
    use sma_e2e::calls::{actions, kind, ScriptedWebhook};
    let webhook = ScriptedWebhook::start(|event| {
        let leg = event["CallDetails"]["Participants"][0]["CallId"].clone();
        match kind(event) {
            "NEW_INBOUND_CALL" => actions(serde_json::json!([
                {"Type": "Speak", "Parameters": {"Text": "Thanks for calling.", "CallId": leg}},
                {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "CallId": leg}}
            ])),
            _ => actions(serde_json::json!([])),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ivr_config((27600, 27699), dir.path()).replace(
        &format!(
            "endpoint = \"{}\"",
            rust_component("ivr_menu_rust.wasm").display()
        ),
        &format!("endpoint = \"{}\"", webhook.url),
    );
    let serve = Serve::start(&config, &["udp:127.0.0.1:0"], &[]);
    let scenario = write(
        dir.path(),
        "headers.yaml",
        &format!(
            "call:\n  to: sip:{NUMBER}@127.0.0.1\n  from: sip:+14255550123@127.0.0.1\n  headers: {{X-Account: \"42\", X-Campaign: spring}}\nsteps:\n  - expect: answered\n  - expect_audio: {{min_ms: 300}}\n  - expect_hangup: 10s\n"
        ),
    );
    let target = serve.addr("udp").to_string();
    let out = sma_call(&[
        "-s",
        &scenario,
        "--target",
        &target,
        "--rtp-ports",
        "27700-27799",
        "--no-record",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}\n{:?}",
        text(&out),
        serve.log(),
        webhook.events()
    );
    let events = webhook.wait_for(1, Duration::from_secs(5));
    let leg = &events[0]["CallDetails"]["Participants"][0];
    assert_eq!(leg["SipHeaders"]["X-Account"], "42", "{leg}");
    assert_eq!(leg["SipHeaders"]["X-Campaign"], "spring", "{leg}");
    assert_eq!(leg["From"], "+14255550123");
    assert_eq!(leg["To"], NUMBER);
}

/// A free UDP port on loopback (for a callee scenario to listen on).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn the_two_leg_examples_run_with_a_scenario_per_leg() {
    let webhook = PythonWebhook::start("dev-secret");
    let reminders =
        PythonWebhook::start_script("examples/click-to-call-python/app.py", "dev-secret");
    let (agents, customers) = (free_port(), free_port());
    let config = examples_config(&webhook.url, (30400, 30499))
        .replace("http://127.0.0.1:8089/", &reminders.url)
        .replace("sip:127.0.0.1:5090", &format!("sip:127.0.0.1:{agents}"))
        .replace("sip:127.0.0.1:5091", &format!("sip:127.0.0.1:{customers}"));
    let serve = Serve::start(
        &config,
        &["udp:127.0.0.1:0"],
        &["--cache-dir", &cache_dir().display().to_string()],
    );
    // The scenarios as shipped, listening where this run's carriers point.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = |name: &str| {
        let text = std::fs::read_to_string(root().join("examples/scenarios/two-legs").join(name))
            .expect("scenario")
            .replace("127.0.0.1:5090", &format!("127.0.0.1:{agents}"))
            .replace("127.0.0.1:5091", &format!("127.0.0.1:{customers}"));
        write(dir.path(), name, &text)
    };
    let (agent, caller, customer) = (
        copy("forward-agent.yaml"),
        copy("forward-caller.yaml"),
        copy("click-to-call-customer.yaml"),
    );
    let target = serve.addr("udp").to_string();

    // forward-rust: both legs in one command.
    let out = sma_call(&[
        "-s",
        &agent,
        "-s",
        &caller,
        "--target",
        &target,
        "--rtp-ports",
        "30500-30599",
        "--no-record",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());

    // click-to-call: the customer listens, call.py asks the API (boto3) for the call.
    let listening = Command::new(sma())
        .args([
            "call",
            "-s",
            &customer,
            "--rtp-ports",
            "30600-30699",
            "--no-record",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sma call");
    std::thread::sleep(Duration::from_millis(500));
    let placed = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("examples/click-to-call-python/call.py"))
        .args(["--endpoint-url", serve.api.as_deref().expect("api")])
        .args([
            "--app",
            "click-to-call",
            "--from",
            "+12065550100",
            "--to",
            "+14255550142",
        ])
        .output()
        .expect("call.py");
    assert!(
        placed.status.success(),
        "{}\n{}",
        text(&placed),
        serve.log()
    );
    let transaction = String::from_utf8_lossy(&placed.stdout).trim().to_owned();
    assert_eq!(transaction.len(), 36, "a TransactionId: {transaction}");
    let out = listening.wait_with_output().expect("sma call");
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
}
