//! Two-leg calls end to end: `CallAndBridge` to real SIP peers (baresip answering, SIPp busy
//! or ringing), through a voice connector's origination routes and to this runtime's own
//! rules, with audio and digits checked in both directions, failover between routes, and
//! each leg's hang-up reported on its own.

use serde_json::{json, Value};
use sma_e2e::calls::{
    actions, assert_ports_free, best_correlation, kind, prompt_signal, wav, Baresip,
    ScriptedWebhook,
};
use sma_e2e::{call_records, wait_until};
use sma_e2e::{require_program, root, sma, Serve};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NUMBER: &str = "+12065550100";
const CONNECTOR_ARN: &str = "arn:aws:chime:us-east-1:000000000000:vc/pbx";

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The number goes to `webhook`; the voice connector `pbx` originates to `routes`
/// (`(port, priority)` on 127.0.0.1, UDP); `extra` is more TOML.
fn config(
    media: (u16, u16),
    webhook: &str,
    storage: &Path,
    routes: &[(u16, u32)],
    extra: &str,
) -> String {
    let routes: String = routes
        .iter()
        .map(|(port, priority)| {
            format!(
                "[[voice_connectors.origination.routes]]\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"UDP\"\npriority = {priority}\nweight = 1\n"
            )
        })
        .collect();
    format!(
        r#"[media]
port_range = [{lo}, {hi}]
[node]
cdr_path = "{storage}/cdr.jsonl"
[storage]
root = "{storage}"
[calls]
route_response_timeout_ms = 600
[[phone_numbers]]
number = "{NUMBER}"
[[applications]]
id = "app"
name = "app"
endpoint = "{webhook}"
[[sip_rules]]
name = "number"
trigger_type = "ToPhoneNumber"
trigger_value = "{NUMBER}"
targets = [{{ application = "app", priority = 1 }}]
[[voice_connectors]]
id = "pbx"
name = "pbx"
outbound_host_name = "pbx.vc.example"
[voice_connectors.origination]
{routes}
{extra}
"#,
        lo = media.0,
        hi = media.1,
        storage = storage.display(),
    )
}

/// The answer to a leg's `HANGUP`: hang up the other leg if it is still connected (contract
/// §7.6: a leg's hang-up does not end the other; the handler must).
fn release_the_other_leg(event: &Value) -> Value {
    let left = &event["ActionData"]["Parameters"]["ParticipantTag"];
    let other = if left == "LEG-A" { "LEG-B" } else { "LEG-A" };
    let still_up = event["CallDetails"]["Participants"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["ParticipantTag"] == other && p["Status"] == "Connected");
    if still_up {
        actions(json!([{"Type": "Hangup", "Parameters": {"ParticipantTag": other}}]))
    } else {
        actions(json!([]))
    }
}

/// A handler that bridges every new call to `endpoint` and, when either party leaves, hangs
/// up the other.
fn bridging(endpoint: Value, timeout: u32) -> ScriptedWebhook {
    ScriptedWebhook::start(move |event| match kind(event) {
        "NEW_INBOUND_CALL" => {
            let caller = event["CallDetails"]["Participants"][0]["From"].clone();
            actions(json!([{"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": timeout, "CallerIdNumber": caller,
                "Endpoints": [endpoint.clone()],
                "SipHeaders": {"X-Ticket": "42"}}}]))
        }
        "HANGUP" => release_the_other_leg(event),
        "ACTION_FAILED" => actions(json!([
            {"Type": "Speak", "Parameters": {"Text": "The call could not be connected."}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}
        ])),
        _ => actions(json!([])),
    })
}

fn connector_endpoint(user: &str) -> Value {
    json!({"BridgeEndpointType": "AWS", "Arn": CONNECTOR_ARN, "Uri": user})
}

/// Starts `sma call` with `steps` (the caller, LEG-A).
fn caller(serve: &Serve, dir: &Path, rtp: &str, steps: &str) -> Child {
    let scenario = dir.join("caller.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: caller\ncall:\n  to: sip:{NUMBER}@{}\n  from: sip:+15555550123@127.0.0.1\nsteps:\n{steps}",
            serve.addr("udp")
        ),
    )
    .expect("scenario");
    Command::new(sma())
        .args(["call", "-s"])
        .arg(&scenario)
        .args(["--rtp-ports", rtp, "--no-record"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sma call")
}

fn finished(child: Child) -> (bool, String) {
    let out = child.wait_with_output().expect("sma call output");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `(event type, action type, participant tag)` of each event.
fn flow(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                kind(e).to_owned(),
                e["ActionData"]["Type"].as_str().unwrap_or("").to_owned(),
                e["ActionData"]["Parameters"]["ParticipantTag"]
                    .as_str()
                    .or(e["ActionData"]["ErrorType"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// `signal` over and over for 30 s: baresip hangs up when its microphone file ends.
fn looped(signal: &[i16]) -> Vec<i16> {
    signal.iter().copied().cycle().take(8000 * 30).collect()
}

#[test]
fn a_bridged_call_carries_audio_and_digits_both_ways_and_each_leg_hangs_up_on_its_own() {
    let media = (27000, 27099);
    let dir = tempfile::tempdir().expect("tempdir");
    // B plays a distinctive signal; the caller plays another.
    let b_signal = prompt_signal(8000, 2.0);
    let a_signal: Vec<i16> = prompt_signal(8000, 3.0).into_iter().rev().collect();
    std::fs::write(dir.path().join("b.wav"), wav(&b_signal, 8000)).expect("b.wav");
    std::fs::write(dir.path().join("a.wav"), wav(&a_signal, 8000)).expect("a.wav");
    let (phone, address) = Baresip::answering((27100, 27199), &looped(&b_signal));
    let handler = bridging(connector_endpoint("+14255550199"), 20);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(address.port(), 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let child = caller(
        &serve,
        dir.path(),
        "27200-27299",
        "  - expect: answered\n  - expect_prompt: {file: b.wav, within: 8s}\n  - play: a.wav\n  - send_digits: {digits: \"58\", duration_ms: 120}\n  - wait: 1s\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}\n{}", serve.log(), phone.log());
    // B heard the caller's audio (relayed: both legs PCMU at 20 ms) and digits. Its dump is
    // complete once the handler has hung it up.
    handler.wait_for(4, Duration::from_secs(10));
    phone.wait_for_log("session closed", Duration::from_secs(10));
    let heard = phone.received();
    let score = best_correlation(&heard, &a_signal[..8000]);
    assert!(
        score > 0.6,
        "B did not hear the caller: correlation {score:.2} over {} samples (peak {})\n{}",
        heard.len(),
        heard.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0),
        serve.log()
    );
    let log = phone.log();
    assert!(
        log.contains("received event: '5'") && log.contains("received event: '8'"),
        "B did not get the caller's RFC 4733 digits:\n{log}"
    );
    // The caller left first: its HANGUP, then the handler's Hangup of B, then B's HANGUP.
    let events = handler.wait_for(4, Duration::from_secs(10));
    let flow = flow(&events);
    assert_eq!(
        flow,
        vec![
            ("NEW_INBOUND_CALL".into(), "".into(), "".into()),
            (
                "ACTION_SUCCESSFUL".into(),
                "CallAndBridge".into(),
                "".into()
            ),
            ("HANGUP".into(), "Hangup".into(), "LEG-A".into()),
            ("HANGUP".into(), "Hangup".into(), "LEG-B".into()),
        ],
        "{}",
        serve.log()
    );
    let bridged = &events[1];
    let participants = bridged["CallDetails"]["Participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[1]["ParticipantTag"], "LEG-B");
    assert_eq!(participants[1]["Status"], "Connected");
    assert_eq!(participants[1]["Direction"], "Outbound");
    assert_eq!(participants[1]["To"], "+14255550199");
    assert_eq!(
        bridged["ActionData"]["Parameters"]["CallId"],
        participants[0]["CallId"]
    );
    // One record per leg; B's says where it went.
    wait_until("two call records", Duration::from_secs(5), || {
        call_records(dir.path()).len() >= 2
    });
    let cdr = call_records(dir.path());
    let b = cdr
        .iter()
        .find(|r| r["Direction"] == "Outbound")
        .expect("B's record");
    assert_eq!(b["Status"], "Completed");
    assert!(
        b["Route"]
            .as_str()
            .unwrap_or("")
            .contains("voice connector pbx"),
        "{b}"
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_dead_route_is_skipped_for_the_next_and_the_record_says_so() {
    let media = (27300, 27399);
    let dir = tempfile::tempdir().expect("tempdir");
    let b_signal = prompt_signal(8000, 2.0);
    std::fs::write(dir.path().join("b.wav"), wav(&b_signal, 8000)).expect("b.wav");
    let (phone, address) = Baresip::answering((27400, 27499), &looped(&b_signal));
    let dead = free_udp_port();
    let handler = bridging(connector_endpoint("+14255550199"), 20);
    let serve = Serve::start(
        &config(
            media,
            &handler.url,
            dir.path(),
            &[(dead, 1), (address.port(), 2)],
            "",
        ),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let child = caller(
        &serve,
        dir.path(),
        "27500-27599",
        "  - expect: answered\n  - expect_prompt: {file: b.wav, within: 8s}\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}\n{}", serve.log(), phone.log());
    wait_until("B's record", Duration::from_secs(10), || {
        call_records(dir.path())
            .iter()
            .any(|r| r["Direction"] == "Outbound")
    });
    let cdr = call_records(dir.path());
    let b = cdr.iter().find(|r| r["Direction"] == "Outbound").unwrap();
    let failures = b["Failures"].to_string();
    assert!(
        failures.contains(&format!("127.0.0.1:{dead}")) && failures.contains("no response"),
        "{b}"
    );
    assert!(b["Route"]
        .as_str()
        .unwrap_or("")
        .contains(&address.port().to_string()));
}

/// A SIPp far end on its own port, playing `scenario` (tests/sipp) once.
fn sipp_far_end(scenario: &str) -> (Child, u16) {
    sipp_far_end_with(scenario, &[])
}

/// [`sipp_far_end`] with more SIPp options (`-rtp_echo`: what sma sends comes back).
fn sipp_far_end_with(scenario: &str, options: &[&str]) -> (Child, u16) {
    let sipp = require_program("sipp", "sip-tester");
    // Build sma first: SIPp gives up after its 60 s timeout, which a first build can outlast.
    sma();
    let port = free_udp_port();
    let child = Command::new(sipp)
        .arg("-sf")
        .arg(root().join("tests/sipp").join(scenario))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-timeout", "60", "-timeout_error", "-nostdin"])
        .args(options)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp");
    // Ready once SIPp holds its port (on a loaded machine that takes longer than a fixed
    // pause: an INVITE sent earlier would be refused and the route skipped).
    wait_until("SIPp to bind its port", Duration::from_secs(10), || {
        UdpSocket::bind(("127.0.0.1", port)).is_err()
    });
    (child, port)
}

#[test]
fn busy_and_no_answer_fail_the_bridge_with_call_not_answered() {
    for (scenario, timeout, expect_cancel) in
        [("uas-busy.xml", 20, false), ("uas-ring.xml", 2, true)]
    {
        let media = (27600, 27699);
        let dir = tempfile::tempdir().expect("tempdir");
        let (sipp, port) = sipp_far_end(scenario);
        // A busy far end ends the dialing: the second route is never tried.
        let never = free_udp_port();
        let handler = bridging(connector_endpoint("5550"), timeout);
        let serve = Serve::start(
            &config(
                media,
                &handler.url,
                dir.path(),
                &[(port, 1), (never, 2)],
                "",
            ),
            &["udp:127.0.0.1:0"],
            &[],
        );
        let child = caller(
            &serve,
            dir.path(),
            "27700-27799",
            "  - expect: answered\n  - expect_audio: {min_ms: 500, within: 15s}\n  - expect_hangup: 15s\n",
        );
        let (ok, out) = finished(child);
        assert!(ok, "{scenario}: {out}\n{}", serve.log());
        let sipp_out = sipp.wait_with_output().expect("sipp");
        assert!(
            sipp_out.status.success(),
            "{scenario}: SIPp far end failed{}:\n{}",
            if expect_cancel { " (no CANCEL?)" } else { "" },
            String::from_utf8_lossy(&sipp_out.stdout)
        );
        let events = handler.wait_for(3, Duration::from_secs(10));
        assert_eq!(
            flow(&events)[1],
            (
                "ACTION_FAILED".into(),
                "CallAndBridge".into(),
                "CallNotAnswered".into()
            ),
            "{scenario}"
        );
        assert_eq!(
            events[1]["CallDetails"]["Participants"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let cdr = call_records(dir.path());
        let b = cdr
            .iter()
            .find(|r| r["Direction"] == "Outbound")
            .expect("B's record");
        assert_eq!(b["Status"], "Failed", "{scenario}");
        let failures = b["Failures"].to_string();
        assert!(
            !failures.contains(&never.to_string()),
            "{scenario}: {failures}"
        );
        drop(serve);
        assert_ports_free(media);
    }
}

#[test]
fn a_number_served_here_is_delivered_to_its_rule_as_a_new_inbound_call() {
    let media = (27800, 27899);
    let dir = tempfile::tempdir().expect("tempdir");
    let prompt = prompt_signal(8000, 2.0);
    std::fs::create_dir_all(dir.path().join("prompts")).expect("bucket");
    std::fs::write(dir.path().join("prompts/agent.wav"), wav(&prompt, 8000)).expect("prompt");
    std::fs::write(dir.path().join("agent.wav"), wav(&prompt, 8000)).expect("copy");
    // The second application (the "agent" side) answers with a prompt.
    let agent = ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([{"Type": "PlayAudio", "Parameters": {
            "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "agent.wav"}}},
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 5000}}])),
        _ => actions(json!([])),
    });
    let handler = bridging(
        json!({"BridgeEndpointType": "PSTN", "Uri": "+12065550177"}),
        20,
    );
    let extra = format!(
        "[[phone_numbers]]\nnumber = \"+12065550177\"\n[[applications]]\nid = \"agent\"\nname = \"agent\"\nendpoint = \"{}\"\n[[sip_rules]]\nname = \"agent\"\ntrigger_type = \"ToPhoneNumber\"\ntrigger_value = \"+12065550177\"\ntargets = [{{ application = \"agent\", priority = 1 }}]\n",
        agent.url
    );
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[], &extra),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let child = caller(
        &serve,
        dir.path(),
        "27900-27999",
        "  - expect: answered\n  - expect_prompt: {file: agent.wav, within: 8s}\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    let agent_events = agent.wait_for(1, Duration::from_secs(5));
    let leg = &agent_events[0]["CallDetails"]["Participants"][0];
    assert_eq!(leg["To"], "+12065550177");
    assert_eq!(leg["From"], "+15555550123", "the caller ID is LEG-A's From");
    assert_eq!(leg["SipHeaders"]["X-Ticket"], "42");
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_carrier_trunk_with_digest_credentials_is_registered_with_and_takes_the_call() {
    let media = (28000, 28099);
    let dir = tempfile::tempdir().expect("tempdir");
    let sipp = require_program("sipp", "sip-tester");
    sma(); // built before SIPp's timeout starts running
    let port = free_udp_port();
    let carrier = Command::new(sipp)
        .arg("-sf")
        .arg(root().join("tests/sipp/carrier.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "2"])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-timeout", "60", "-timeout_error", "-nostdin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp");
    std::thread::sleep(Duration::from_millis(300));
    let handler = bridging(
        json!({"BridgeEndpointType": "PSTN", "Uri": "+442071234567"}),
        20,
    );
    let extra = format!(
        "[[carriers]]\nname = \"trunk\"\nproxy = \"sip:127.0.0.1:{port}\"\nusername = \"trunk\"\npassword = \"s3cret\"\nprefixes = [\"+44\"]\nregister = \"sip:+12065550100@carrier.example\"\nregister_expires_secs = 300\n"
    );
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[], &extra),
        &["udp:127.0.0.1:0"],
        &[],
    );
    serve.wait_for_log("registered with the carrier", 1, Duration::from_secs(10));
    let child = caller(
        &serve,
        dir.path(),
        "28100-28199",
        "  - expect: answered\n  - wait: 1s\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    let events = handler.wait_for(4, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[1],
        (
            "ACTION_SUCCESSFUL".into(),
            "CallAndBridge".into(),
            "".into()
        ),
        "{}",
        serve.log()
    );
    let out = carrier.wait_with_output().expect("sipp");
    assert!(
        out.status.success(),
        "the carrier saw a registration and a call, both authenticated:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        serve.log()
    );
    wait_until("B's record", Duration::from_secs(5), || {
        call_records(dir.path())
            .iter()
            .any(|r| r["Direction"] == "Outbound")
    });
    let cdr = call_records(dir.path());
    let b = cdr.iter().find(|r| r["Direction"] == "Outbound").unwrap();
    assert_eq!(b["Route"], "carrier trunk");
    drop(serve);
    assert_ports_free(media);
}

/// Runs `sma call` on `scenarios` (file name, text) written to `dir`: callees listen first,
/// then the callers dial.
fn sma_call(dir: &Path, rtp: &str, scenarios: &[(&str, String)]) -> (bool, String) {
    let mut cmd = Command::new(sma());
    cmd.arg("call");
    for (name, text) in scenarios {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("scenario");
        cmd.arg("-s").arg(path);
    }
    let child = cmd
        .args(["--rtp-ports", rtp, "--no-record"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sma call");
    finished(child)
}

fn caller_scenario(serve: &Serve, steps: &str) -> String {
    format!(
        "name: caller\ncall:\n  to: sip:{NUMBER}@{}\n  from: sip:+15555550123@127.0.0.1\nsteps:\n{steps}",
        serve.addr("udp")
    )
}

#[test]
fn a_callee_scenario_is_the_far_end_of_a_bridge_checked_from_both_legs() {
    let media = (30000, 30099);
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = free_udp_port();
    let handler = bridging(connector_endpoint("+14255550199"), 20);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(agent, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let callee = format!(
        "name: agent\nrole: callee\nlisten: 127.0.0.1:{agent}\nsteps:
  - expect_incoming: {{from: \"+15555550123\", to: \"+14255550199\", headers: {{X-Ticket: \"42\"}}}}
  - ring: 1s\n  - answer\n  - expect_audio: {{min_ms: 400, within: 15s}}
  - send_digits: \"42\"\n  - expect_hangup: 15s\n"
    );
    let caller = caller_scenario(
        &serve,
        "  - expect: ringing\n  - expect: answered
  - say: Hello, I would like to speak to somebody about my order please.
  - expect_digits: {digits: \"42\", within: 15s}\n  - hangup\n",
    );
    let (ok, out) = sma_call(
        dir.path(),
        "30100-30199",
        &[("agent.yaml", callee), ("caller.yaml", caller)],
    );
    assert!(ok, "{out}\n{}", serve.log());
    assert!(out.contains("agent: listening on 127.0.0.1:"), "{out}");
    assert!(
        out.contains("INVITE to +14255550199 from sip:+15555550123@"),
        "{out}"
    );
    // B was answered after ringing; the caller's hang-up reached B through the handler.
    let events = handler.wait_for(4, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[1],
        (
            "ACTION_SUCCESSFUL".into(),
            "CallAndBridge".into(),
            "".into()
        )
    );
    drop(serve);
    assert_ports_free(media);
    assert_ports_free((30100, 30199));
}

#[test]
fn a_voice_connector_group_fails_over_to_its_next_connector() {
    let media = (30200, 30299);
    let dir = tempfile::tempdir().expect("tempdir");
    let (busy, agent) = (free_udp_port(), free_udp_port());
    let group = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let arn = group.clone();
    let handler = ScriptedWebhook::start(move |event| match kind(event) {
        "NEW_INBOUND_CALL" => {
            let arn = arn.lock().map(|a| a.clone()).unwrap_or_default();
            actions(json!([{"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+15555550123",
                "Endpoints": [{"BridgeEndpointType": "AWS", "Arn": arn, "Uri": "+14255550199"}]}}]))
        }
        "HANGUP" if event["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-A" => {
            actions(json!([{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}]))
        }
        _ => actions(json!([])),
    });
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // boto3 builds the group: region-1 reaches a far end that is down for maintenance,
    // region-2 an agent.
    let python = root().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg(root().join("tests/api/flow.py"))
        .args(["group", serve.api.as_deref().expect("api")])
        .args([
            "AKIASMADEVELOPMENT01",
            "sma/dev/secret/key/do/not/use/in/production",
        ])
        .args([busy.to_string(), agent.to_string()])
        .output()
        .expect("flow.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let group_arn = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(group_arn.starts_with("arn:aws:chime:"), "{group_arn}");
    *group.lock().expect("lock") = group_arn;
    let down = format!(
        "name: region-1\nrole: callee\nlisten: 127.0.0.1:{busy}\nsteps:
  - expect_incoming: {{to: \"+14255550199\"}}\n  - reject: 503\n"
    );
    let up = format!(
        "name: region-2\nrole: callee\nlisten: 127.0.0.1:{agent}\nsteps:
  - expect_incoming: {{from: \"+15555550123\", to: \"+14255550199\"}}\n  - answer
  - say: {{text: You reached the second region., background: true}}\n  - expect_hangup: 15s\n"
    );
    let caller = caller_scenario(
        &serve,
        "  - expect: answered\n  - expect_audio: {min_ms: 500, within: 10s}\n  - hangup\n",
    );
    let (ok, out) = sma_call(
        dir.path(),
        "30300-30399",
        &[
            ("region-1.yaml", down),
            ("region-2.yaml", up),
            ("caller.yaml", caller),
        ],
    );
    assert!(ok, "{out}\n{}", serve.log());
    assert!(out.contains("reject 503"), "{out}");
    wait_until("the records", Duration::from_secs(5), || {
        call_records(dir.path()).len() >= 2
    });
    let b = call_records(dir.path())
        .into_iter()
        .find(|r| r["Direction"] == "Outbound")
        .expect("B's record");
    assert!(
        b["Route"].as_str().unwrap_or("").contains("region-2"),
        "the record names the connector that took the call: {b}"
    );
    drop(serve);
    assert_ports_free(media);
}

/// Far ends that misbehave after they are reached: each ends with the contract's event, the
/// far end's dialog properly ended (the SIPp scenarios fail otherwise), a record that says
/// why, and every port released.
#[test]
fn far_ends_that_answer_badly_end_cleanly_with_a_record_saying_why() {
    for (scenario, timeout, bridged, why) in [
        ("uas-no-common-codec.xml", 10, false, "unusable media"),
        ("uas-late-answer.xml", 1, false, "not answered within 1 s"),
        ("uas-answer-then-bye.xml", 10, true, ""),
    ] {
        let media = (30700, 30799);
        let dir = tempfile::tempdir().expect("tempdir");
        let (sipp, port) = sipp_far_end(scenario);
        let handler = bridging(connector_endpoint("5550"), timeout);
        let serve = Serve::start(
            &config(media, &handler.url, dir.path(), &[(port, 1)], ""),
            &["udp:127.0.0.1:0"],
            &[],
        );
        let child = caller(
            &serve,
            dir.path(),
            "30800-30899",
            "  - expect: answered\n  - expect_hangup: 20s\n",
        );
        let (ok, out) = finished(child);
        assert!(ok, "{scenario}: {out}\n{}", serve.log());
        let sipp_out = sipp.wait_with_output().expect("sipp");
        assert!(
            sipp_out.status.success(),
            "{scenario}: the far end's dialog was not ended properly:\n{}\n{}",
            String::from_utf8_lossy(&sipp_out.stdout),
            serve.log()
        );
        let events = handler.wait_for(3, Duration::from_secs(10));
        let flow = flow(&events);
        if bridged {
            // Answered, then gone at once: bridged, then B's own HANGUP (or, when the BYE
            // beat the bridge, a failed bridge); either way the caller is released.
            assert!(
                flow.contains(&("HANGUP".into(), "Hangup".into(), "LEG-B".into()))
                    || flow[1].2 == "CallNotAnswered",
                "{scenario}: {flow:?}"
            );
        } else {
            assert_eq!(
                flow[1],
                (
                    "ACTION_FAILED".into(),
                    "CallAndBridge".into(),
                    "CallNotAnswered".into()
                ),
                "{scenario}"
            );
        }
        wait_until("the records", Duration::from_secs(5), || {
            call_records(dir.path()).len() >= 2
        });
        let b = call_records(dir.path())
            .into_iter()
            .find(|r| r["Direction"] == "Outbound")
            .expect("B's record");
        if !bridged {
            assert_eq!(b["Status"], "Failed", "{scenario}: {b}");
            assert!(b.to_string().contains(why), "{scenario}: {b}");
        }
        drop(serve);
        assert_ports_free(media);
    }
}

#[test]
fn a_caller_who_hangs_up_while_the_far_end_rings_cancels_it() {
    let media = (30900, 30999);
    let dir = tempfile::tempdir().expect("tempdir");
    let (sipp, port) = sipp_far_end("uas-ring.xml");
    let handler = bridging(connector_endpoint("5550"), 30);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(port, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let child = caller(
        &serve,
        dir.path(),
        "31000-31099",
        "  - expect: ringing\n  - wait: 1s\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    let sipp_out = sipp.wait_with_output().expect("sipp");
    assert!(
        sipp_out.status.success(),
        "the ringing far end got no CANCEL:\n{}\n{}",
        String::from_utf8_lossy(&sipp_out.stdout),
        serve.log()
    );
    let events = handler.wait_for(2, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[1],
        ("HANGUP".into(), "Hangup".into(), "LEG-A".into()),
        "{}",
        serve.log()
    );
    wait_until("the records", Duration::from_secs(5), || {
        call_records(dir.path()).len() >= 2
    });
    let b = call_records(dir.path())
        .into_iter()
        .find(|r| r["Direction"] == "Outbound")
        .expect("B's record");
    assert_ne!(b["Status"], "Completed", "{b}");
    assert!(
        b["Failures"].to_string().contains("cancelled") && b["SipResponseCode"] == 487,
        "the record says why: {b}"
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_transcoded_bridge_carries_speech_and_digits_while_the_handler_listens_and_records() {
    let media = (31100, 31199);
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = free_udp_port();
    // The caller speaks PCMU only, the agent G.722 only: each direction goes through PCM.
    let handler = ScriptedWebhook::start(|event| {
        let legs = event["CallDetails"]["Participants"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let call_of = |tag: &str| {
            legs.iter()
                .find(|p| p["ParticipantTag"] == tag)
                .map(|p| p["CallId"].clone())
                .unwrap_or(Value::Null)
        };
        match (kind(event), event["ActionData"]["Type"].as_str()) {
            ("NEW_INBOUND_CALL", _) => actions(json!([{"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 15, "CallerIdNumber": "+15555550123",
                "Endpoints": [connector_endpoint("+14255550199")]}}])),
            ("ACTION_SUCCESSFUL", Some("CallAndBridge")) => actions(json!([
                {"Type": "StartCallRecording", "Parameters": {"CallId": call_of("LEG-A"),
                    "Track": "BOTH", "Destination": {"Type": "S3", "Location": "recordings/bridged"}}},
                {"Type": "ReceiveDigits", "Parameters": {"CallId": call_of("LEG-B"),
                    "InputDigitsRegex": "^\\d{2}$", "InBetweenDigitsDurationInMilliseconds": 1000,
                    "FlushDigitsDurationInMilliseconds": 3000}}
            ])),
            ("HANGUP", _) => release_the_other_leg(event),
            _ => actions(json!([])),
        }
    });
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(agent, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let callee = format!(
        "name: agent\nrole: callee\nlisten: 127.0.0.1:{agent}\nmedia: {{codecs: [g722]}}\nsteps:
  - expect_incoming: {{to: \"+14255550199\"}}\n  - answer\n  - expect_audio: {{min_ms: 600, within: 15s}}
  - send_digits: \"55\"\n  - wait: 1s\n  - say: {{text: \"Thank you, I can hear you well.\", background: true}}\n  - expect_hangup: 20s\n"
    );
    let caller = caller_scenario(
        &serve,
        "  - expect: answered\n  - wait: 1s\n  - say: Hello, is anybody there? I have a question about my bill.
  - expect_digits: {digits: \"55\", within: 15s}\n  - expect_audio: {min_ms: 600, within: 15s}\n  - hangup\n",
    )
    .replace("call:\n", "media: {codecs: [pcmu]}\ncall:\n");
    let (ok, out) = sma_call(
        dir.path(),
        "31200-31299",
        &[("agent.yaml", callee), ("caller.yaml", caller)],
    );
    assert!(ok, "{out}\n{}", serve.log());
    assert!(
        serve.log().contains("bridge: through PCM"),
        "{}",
        serve.log()
    );
    // The handler heard LEG-B's digits, and the recording holds both parties.
    let events = handler.wait_for(6, Duration::from_secs(10));
    let digits = events
        .iter()
        .find(|e| kind(e) == "DIGITS_RECEIVED")
        .expect("DIGITS_RECEIVED");
    assert_eq!(digits["ActionData"]["ReceivedDigits"], "55", "{digits}");
    let recording = events
        .iter()
        .find(|e| e["ActionData"]["Type"] == "StartCallRecording")
        .and_then(|e| e["ActionData"]["CallRecordingDestination"]["Location"].as_str())
        .map(str::to_owned)
        .expect("StartCallRecording reported");
    serve.wait_for_log("call recording delivered", 1, Duration::from_secs(10));
    let (channels, _, samples) = sma_e2e::calls::read_wav(&dir.path().join(&recording));
    assert_eq!(channels, 2);
    let loud = |channel: usize| {
        samples
            .iter()
            .skip(channel)
            .step_by(2)
            .filter(|s| s.unsigned_abs() > 1500)
            .count()
    };
    assert!(
        loud(0) > 2000 && loud(1) > 2000,
        "both parties in the recording: caller {} agent {}",
        loud(0),
        loud(1)
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn an_unanswered_caller_hears_the_ringback_tone_as_early_media_while_the_far_end_rings() {
    let media = (31300, 31399);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("tones")).expect("bucket");
    std::fs::write(
        dir.path().join("tones/ringback.wav"),
        wav(&prompt_signal(8000, 2.0), 8000),
    )
    .expect("ringback.wav");
    let (sipp, port) = sipp_far_end("uas-ring.xml");
    let handler = ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([{"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 3, "CallerIdNumber": "+15555550123",
            "RingbackTone": {"Type": "S3", "BucketName": "tones", "Key": "ringback.wav"},
            "Endpoints": [connector_endpoint("5550")]}}])),
        "ACTION_FAILED" => actions(json!([
            {"Type": "Speak", "Parameters": {"Text": "Sorry, nobody answered your call. Please try again later."}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}
        ])),
        _ => actions(json!([])),
    });
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(port, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // 183 with sma's SDP while B rings: the caller hears the ringback tone as early media;
    // then the answer for the apology.
    let child = caller(
        &serve,
        dir.path(),
        "31400-31499",
        "  - expect: {sip_status: 183}\n  - expect_audio: {min_ms: 1000, within: 3s}\n  - expect: answered\n  - expect_audio: {min_ms: 300, within: 10s}\n  - expect_hangup: 15s\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    assert!(
        sipp.wait_with_output().expect("sipp").status.success(),
        "B was cancelled at the timeout\n{}",
        serve.log()
    );
    let events = handler.wait_for(2, Duration::from_secs(10));
    assert_eq!(flow(&events)[1].2, "CallNotAnswered");
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_bridged_call_counts_as_two_calls_for_admission_control() {
    let media = (31500, 31599);
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = free_udp_port();
    let handler = bridging(connector_endpoint("+14255550199"), 10);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(agent, 1)], "")
            .replace("[calls]\n", "[calls]\nmax_concurrent_calls = 2\n"),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let callee = format!(
        "name: agent\nrole: callee\nlisten: 127.0.0.1:{agent}\nsteps:\n  - expect: incoming\n  - answer\n  - expect_hangup: 20s\n"
    );
    let caller = caller_scenario(&serve, "  - expect: answered\n  - wait: 3s\n  - hangup\n");
    let mut cmd = Command::new(sma());
    cmd.arg("call");
    for (name, text) in [("agent.yaml", callee), ("caller.yaml", caller)] {
        std::fs::write(dir.path().join(name), text).expect("scenario");
        cmd.arg("-s").arg(dir.path().join(name));
    }
    let child = cmd
        .args(["--rtp-ports", "31600-31699", "--no-record"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sma call");
    // Once both legs are up, the node is full: one more caller gets 503.
    handler.wait_for(2, Duration::from_secs(10));
    let target = format!("sip:{NUMBER}@{}", serve.addr("udp"));
    let third = sma_e2e::calls::SipCaller::new(serve.addr("udp")).invite(
        &target,
        &[],
        Duration::from_secs(5),
    );
    assert_eq!(third.status, 503, "{}", serve.log());
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_prompt_played_to_one_leg_interrupts_the_bridge_there_and_the_bridge_resumes() {
    let media = (31700, 31799);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("prompts")).expect("bucket");
    std::fs::write(
        dir.path().join("prompts/notice.wav"),
        wav(&prompt_signal(8000, 2.0), 8000),
    )
    .expect("notice.wav");
    let agent = free_udp_port();
    // Once bridged, the agent (LEG-B only) hears a notice; the caller's audio resumes after.
    let handler = ScriptedWebhook::start(|event| {
        let legs = event["CallDetails"]["Participants"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let leg_b = legs
            .iter()
            .find(|p| p["ParticipantTag"] == "LEG-B")
            .map(|p| p["CallId"].clone())
            .unwrap_or(Value::Null);
        match (kind(event), event["ActionData"]["Type"].as_str()) {
            ("NEW_INBOUND_CALL", _) => actions(json!([{"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+15555550123",
                "Endpoints": [connector_endpoint("+14255550199")]}}])),
            ("ACTION_SUCCESSFUL", Some("CallAndBridge")) => actions(json!([{"Type": "PlayAudio",
                "Parameters": {"CallId": leg_b, "AudioSource":
                    {"Type": "S3", "BucketName": "prompts", "Key": "notice.wav"}}}])),
            ("HANGUP", _) => release_the_other_leg(event),
            _ => actions(json!([])),
        }
    });
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(agent, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let callee = format!(
        "name: agent\nrole: callee\nlisten: 127.0.0.1:{agent}\nsteps:
  - expect: incoming\n  - answer\n  - expect_prompt: {{file: prompts/notice.wav, within: 10s}}
  - expect_audio: {{min_ms: 600, within: 15s}}\n  - expect_hangup: 20s\n"
    );
    // The caller stays quiet while the notice plays, then speaks.
    let caller = caller_scenario(
        &serve,
        "  - expect: answered\n  - wait: 3s\n  - say: Hello, I am still here and waiting for an answer.
  - wait: 500ms\n  - hangup\n",
    );
    let (ok, out) = sma_call(
        dir.path(),
        "31800-31899",
        &[("agent.yaml", callee), ("caller.yaml", caller)],
    );
    assert!(ok, "{out}\n{}", serve.log());
    let events = handler.wait_for(3, Duration::from_secs(10));
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "ACTION_SUCCESSFUL" && e["ActionData"]["Type"] == "PlayAudio"),
        "{:?}",
        flow(&events)
    );
    drop(serve);
    assert_ports_free(media);
}

/// A continuous tone: never silent, so a listener hears it for as long as it is relayed.
fn tone(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect()
}

#[test]
fn the_far_end_holds_and_changes_codec_by_re_invite_without_dropping_the_caller() {
    let media = (32000, 32099);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tone.wav"), wav(&tone(8000, 20.0), 8000)).expect("tone");
    // SIPp echoes what sma sends it: the caller hears itself through the bridge.
    let (sipp, port) = sipp_far_end_with("uas-reinvite-echo.xml", &["-rtp_echo"]);
    let handler = bridging(connector_endpoint("+14255550199"), 15);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(port, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // Relayed on PCMU, then held (nothing comes back), then transcoded PCMU <-> PCMA.
    let child = caller(
        &serve,
        dir.path(),
        "32100-32199",
        "  - expect: answered\n  - play: {file: tone.wav, background: true}
  - expect_audio: {min_ms: 800, within: 3s}\n  - expect_silence: {min_ms: 1200, within: 6s}
  - expect_audio: {min_ms: 800, within: 8s}\n  - hangup\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    let sipp_out = sipp.wait_with_output().expect("sipp");
    assert!(
        sipp_out.status.success(),
        "SIPp far end failed:\n{}\n{}",
        String::from_utf8_lossy(&sipp_out.stdout),
        serve.log()
    );
    let log = serve.log();
    assert!(log.contains("bridge: through PCM"), "{log}");
    // Neither re-INVITE ended a leg: the caller's hang-up is the first HANGUP.
    let events = handler.wait_for(4, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[2],
        ("HANGUP".into(), "Hangup".into(), "LEG-A".into()),
        "{log}"
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn re_invites_on_both_legs_at_once_are_each_answered_and_the_bridge_follows_both() {
    let media = (32200, 32299);
    let dir = tempfile::tempdir().expect("tempdir");
    let (far_end, port) = sipp_far_end("uas-reinvite-glare.xml");
    let handler = bridging(connector_endpoint("+14255550199"), 15);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(port, 1)], ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // Both legs move from PCMU to PCMA 2 s after their ACKs, which the bridge's answer
    // sends within a millisecond of each other.
    let sipp = require_program("sipp", "sip-tester");
    let caller = Command::new(sipp)
        .arg(serve.addr("udp").to_string())
        .arg("-sf")
        .arg(root().join("tests/sipp/uac-reinvite-glare.xml"))
        .args(["-s", NUMBER, "-m", "1"])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-timeout", "60", "-timeout_error", "-nostdin"])
        .output()
        .expect("sipp caller");
    let log = serve.log();
    assert!(
        caller.status.success(),
        "SIPp caller failed:\n{}\n{log}",
        String::from_utf8_lossy(&caller.stdout)
    );
    let far = far_end.wait_with_output().expect("sipp far end");
    assert!(
        far.status.success(),
        "SIPp far end failed:\n{}\n{log}",
        String::from_utf8_lossy(&far.stdout)
    );
    // Each offer rebuilt its leg's media; the last bridge set up relays PCMA both ways.
    let log = serve.log();
    assert_eq!(
        log.matches("media follows the new offer/answer").count(),
        2,
        "{log}"
    );
    let last: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("bridge: relayed") || l.contains("bridge: through PCM"))
        .collect();
    assert!(
        last.len() >= 2
            && last[last.len() - 2..]
                .iter()
                .all(|l| l.contains("bridge: relayed") && l.contains("Pcma")),
        "{last:#?}"
    );
    let events = handler.wait_for(4, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[2..],
        [
            ("HANGUP".into(), "Hangup".into(), "LEG-A".into()),
            ("HANGUP".into(), "Hangup".into(), "LEG-B".into()),
        ],
        "{log}"
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_far_end_that_answers_and_sends_no_rtp_is_released_when_media_times_out() {
    let media = (32300, 32399);
    let dir = tempfile::tempdir().expect("tempdir");
    let (far_end, port) = sipp_far_end("uas-silent.xml");
    let handler = bridging(connector_endpoint("+14255550199"), 15);
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(port, 1)], "")
            .replace("[calls]\n", "[calls]\nmedia_inactivity_secs = 2\n"),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // The caller talks all along; the far end never does: its leg ends, and the handler
    // releases the caller.
    let child = caller(
        &serve,
        dir.path(),
        "32400-32499",
        "  - expect: answered\n  - say: {text: \"Hello? Hello? Is anybody there? I cannot hear you at all.\", background: true}\n  - expect_hangup: 15s\n",
    );
    let (ok, out) = finished(child);
    assert!(ok, "{out}\n{}", serve.log());
    let far = far_end.wait_with_output().expect("sipp far end");
    assert!(
        far.status.success(),
        "SIPp far end got no BYE:\n{}\n{}",
        String::from_utf8_lossy(&far.stdout),
        serve.log()
    );
    let events = handler.wait_for(4, Duration::from_secs(10));
    assert_eq!(
        flow(&events)[2],
        ("HANGUP".into(), "Hangup".into(), "LEG-B".into()),
        "{}",
        serve.log()
    );
    wait_until("two call records", Duration::from_secs(5), || {
        call_records(dir.path()).len() >= 2
    });
    let cdr = call_records(dir.path());
    let b = cdr
        .iter()
        .find(|r| r["Direction"] == "Outbound")
        .expect("B's record");
    assert!(
        b["Failures"].to_string().contains("no RTP"),
        "B's record does not say why: {b}"
    );
    drop(serve);
    assert_ports_free(media);
}

#[test]
fn a_route_that_does_not_resolve_is_skipped_and_an_opus_agent_is_bridged_to_a_g711_caller() {
    let media = (32500, 32599);
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = free_udp_port();
    let handler = bridging(connector_endpoint("+14255550199"), 20);
    let unresolvable = "[[voice_connectors.origination.routes]]\nhost = \"no-such-host.invalid\"\nport = 5060\nprotocol = \"UDP\"\npriority = 1\nweight = 1\n";
    let serve = Serve::start(
        &config(media, &handler.url, dir.path(), &[(agent, 2)], unresolvable),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let callee = format!(
        "name: agent\nrole: callee\nlisten: 127.0.0.1:{agent}\nmedia: {{codecs: [opus]}}\nsteps:
  - expect_incoming: {{to: \"+14255550199\"}}\n  - answer\n  - expect_audio: {{min_ms: 600, within: 15s}}
  - say: {{text: \"Good morning, this is the support desk, how can I help?\", background: true}}\n  - expect_hangup: 20s\n"
    );
    let caller = caller_scenario(
        &serve,
        "  - expect: answered\n  - wait: 1s\n  - say: Hello, I am calling about the delivery of my parcel.
  - expect_audio: {min_ms: 600, within: 15s}\n  - hangup\n",
    )
    .replace("call:\n", "media: {codecs: [pcmu]}\ncall:\n");
    let (ok, out) = sma_call(
        dir.path(),
        "32600-32699",
        &[("agent.yaml", callee), ("caller.yaml", caller)],
    );
    let log = serve.log();
    assert!(ok, "{out}\n{log}");
    assert!(out.contains("opus/48000"), "the agent's leg is Opus: {out}");
    assert!(
        log.contains("bridge: through PCM") && log.contains("Opus"),
        "{log}"
    );
    handler.wait_for(4, Duration::from_secs(10));
    wait_until("two call records", Duration::from_secs(5), || {
        call_records(dir.path()).len() >= 2
    });
    let cdr = call_records(dir.path());
    let b = cdr
        .iter()
        .find(|r| r["Direction"] == "Outbound")
        .expect("B's record");
    assert_eq!(b["Status"], "Completed", "{b}");
    let failures = b["Failures"].to_string();
    assert!(
        failures.contains("no-such-host.invalid"),
        "B's record names the route that failed: {b}"
    );
    drop(serve);
    assert_ports_free(media);
}
