//! Interoperability of `sma serve` with SIP peers nobody here wrote: SIPp's built-in `uac`
//! scenario and baresip, over UDP and TCP on loopback.

use serde_json::json;
use sma_e2e::calls::{actions, kind, ScriptedWebhook};
use sma_e2e::{require_program, Serve};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Every call to 127.0.0.1 (any user part) goes to `webhook`.
fn config(media_ports: (u16, u16), webhook: &str) -> String {
    format!(
        "[media]\nport_range = [{}, {}]\n\
[[applications]]\nid = \"app\"\nname = \"app\"\nendpoint = \"{webhook}\"\n\
[[sip_rules]]\nname = \"loopback\"\ntrigger_type = \"RequestUriHostname\"\ntrigger_value = \"127.0.0.1\"\n\
targets = [{{ application = \"app\", priority = 1 }}]\n",
        media_ports.0, media_ports.1
    )
}

/// A handler that answers with speech and keeps the call up until the caller hangs up.
fn answer_and_wait() -> ScriptedWebhook {
    ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([
            {"Type": "Speak", "Parameters": {"Text": "Hello.", "CallId": event["CallDetails"]["Participants"][0]["CallId"]}},
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 30000}}
        ])),
        _ => actions(json!([])),
    })
}

/// A handler that says hello and hangs up after about two seconds.
fn answer_and_hang_up() -> ScriptedWebhook {
    ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([
            {"Type": "Speak", "Parameters": {"Text": "Hello.", "CallId": event["CallDetails"]["Participants"][0]["CallId"]}},
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 1500}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}
        ])),
        _ => actions(json!([])),
    })
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sipp_uac(target: SocketAddr, transport: &str, calls: u32) -> Output {
    let sipp = require_program("sipp", "sip-tester");
    Command::new(sipp)
        .args(["-sn", "uac", &target.to_string()])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-ci", "127.0.0.1"])
        .args(["-p", &free_port().to_string()])
        .args(["-cp", &free_port().to_string()])
        .args(["-mp", &free_port().to_string()])
        .args(["-t", transport])
        .args(["-m", &calls.to_string(), "-r", "20", "-d", "200"])
        .args(["-timeout", "30", "-timeout_error", "-nostdin"])
        .output()
        .expect("run sipp")
}

#[test]
fn sipp_uac_scenario_completes_over_udp_and_tcp() {
    let webhook = answer_and_wait();
    let serve = Serve::start(
        &config((41000, 41999), &webhook.url),
        &["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
        &[],
    );
    let out = sipp_uac(serve.addr("udp"), "u1", 20);
    assert!(
        out.status.success(),
        "sipp uac over UDP failed:\n{}\n{}",
        text(&out),
        serve.log()
    );
    serve.wait_for_log("reason=RemoteBye", 20, Duration::from_secs(10));
    let out = sipp_uac(serve.addr("tcp"), "t1", 20);
    assert!(
        out.status.success(),
        "sipp uac over TCP failed:\n{}\n{}",
        text(&out),
        serve.log()
    );
    serve.wait_for_log("reason=RemoteBye", 40, Duration::from_secs(10));
    let log = serve.log();
    assert_eq!(log.matches("call accepted").count(), 40, "{log}");
    // Every call's transaction reported its end to the handler.
    webhook.wait_for(80, Duration::from_secs(10));
    let hangups = webhook
        .events()
        .iter()
        .filter(|e| kind(e) == "HANGUP")
        .count();
    assert_eq!(hangups, 40);
    assert!(!log.contains("offer not acceptable"), "{log}");
    // Each caller hung up during the handler's Pause: every transaction still ended.
    serve.wait_for_log("transaction finished", 40, Duration::from_secs(10));
}

/// A baresip configuration in `dir` that plays a 30 s tone (a source that reaches its end
/// hangs the call up) and uses RTP ports from `rtp_ports`.
fn baresip_config(dir: &Path, rtp_ports: (u16, u16), ca_file: Option<&Path>) {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * 30)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin())
                as i16
        })
        .collect();
    let wav = sma_e2e::calls::wav(&samples, rate);
    std::fs::write(dir.join("tone.wav"), wav).expect("write tone");
    let config = format!(
        "poll_method epoll\n\
sip_listen 127.0.0.1:0\n\
audio_player aufile,{received}\n\
audio_source aufile,{tone}\n\
audio_alert aufile,/dev/null\n\
rtp_ports {lo}-{hi}\n\
module_path /usr/lib/baresip/modules\n\
module g711.so\n\
module aufile.so\n\
module_app account.so\n\
module_app menu.so\n",
        received = dir.join("received.wav").display(),
        tone = dir.join("tone.wav").display(),
        lo = rtp_ports.0,
        hi = rtp_ports.1,
    );
    let config = match ca_file {
        // Trust sma's generated development certificate for TLS.
        Some(ca) => format!("{config}sip_cafile {}\n", ca.display()),
        None => config,
    };
    std::fs::write(dir.join("config"), config).expect("write config");
    std::fs::write(dir.join("accounts"), "<sip:tester@127.0.0.1>;regint=0\n").expect("accounts");
}

/// Runs baresip dialing `uri` for `seconds`, then it quits (hanging up if still in a call).
fn baresip_dial(uri: &str, seconds: u32, rtp_ports: (u16, u16), ca_file: Option<&Path>) -> String {
    let baresip = require_program("baresip", "baresip");
    let dir = tempfile::tempdir().expect("tempdir");
    baresip_config(dir.path(), rtp_ports, ca_file);
    let out = Command::new(baresip)
        .args(["-n", "127.0.0.1", "-f"])
        .arg(dir.path())
        .args(["-e", &format!("/dial {uri}"), "-t", &seconds.to_string()])
        .output()
        .expect("run baresip");
    text(&out)
}

/// The remote RTP port sma negotiated for the one call in its log.
fn negotiated_remote_port(log: &str) -> u16 {
    let line = log
        .lines()
        .find(|l| l.contains("call accepted"))
        .unwrap_or_else(|| panic!("no negotiation logged:\n{log}"));
    let remote = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("remote="))
        .expect("remote=");
    remote.parse::<SocketAddr>().expect("remote address").port()
}

/// Starts `sma serve` on one listener; for TLS with a generated certificate written to
/// `cert`.
fn serve_on(
    transport: &str,
    media: (u16, u16),
    cert: &Path,
    webhook: &ScriptedWebhook,
    extra: &[&str],
) -> Serve {
    let mut args: Vec<&str> = extra.to_vec();
    let cert = cert.to_str().expect("utf-8 path");
    if transport == "tls" {
        args.extend(["--tls-dev-cert-out", cert]);
    }
    Serve::start(
        &config(media, &webhook.url),
        &[&format!("{transport}:127.0.0.1:0")],
        &args,
    )
}

#[test]
fn baresip_calls_over_udp_tcp_and_tls_and_hangs_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("dev.pem");
    for (transport, rtp) in [
        ("udp", (42000, 42099)),
        ("tcp", (42100, 42199)),
        ("tls", (42400, 42499)),
    ] {
        let webhook = answer_and_wait();
        let serve = serve_on(transport, (43000, 43999), &cert, &webhook, &[]);
        let addr = serve.addr(transport);
        let uri = format!("sip:+15550100@{addr};transport={transport}");
        let out = baresip_dial(&uri, 4, rtp, (transport == "tls").then_some(cert.as_path()));
        assert!(
            out.contains("Call established"),
            "{transport}: {out}\n{}",
            serve.log()
        );
        assert!(
            out.contains("Set audio encoder: PCMU"),
            "{transport}: {out}"
        );
        serve.wait_for_log("reason=RemoteBye", 1, Duration::from_secs(5));
        serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
        let log = serve.log();
        assert!(
            log.contains(&format!("transport={}", transport.to_uppercase())),
            "{log}"
        );
        let port = negotiated_remote_port(&log);
        assert!(
            (rtp.0..=rtp.1).contains(&port),
            "{transport}: baresip's RTP port {port} not negotiated from its range {rtp:?}\n{log}"
        );
        assert!(log.contains("local_port=43"), "{log}");
    }
}

#[test]
fn serve_hangs_up_baresip_calls_over_udp_tcp_and_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("dev.pem");
    for (transport, rtp) in [
        ("udp", (42200, 42299)),
        ("tcp", (42300, 42399)),
        ("tls", (42500, 42599)),
    ] {
        let webhook = answer_and_hang_up();
        let serve = serve_on(transport, (44000, 44999), &cert, &webhook, &[]);
        let addr = serve.addr(transport);
        let uri = format!("sip:+15550100@{addr};transport={transport}");
        let out = baresip_dial(&uri, 6, rtp, (transport == "tls").then_some(cert.as_path()));
        assert!(
            out.contains("Call established"),
            "{transport}: {out}\n{}",
            serve.log()
        );
        assert!(
            out.contains("terminated (duration:"),
            "{transport}: baresip did not see sma's BYE:\n{out}\n{}",
            serve.log()
        );
        serve.wait_for_log("reason=LocalBye", 1, Duration::from_secs(5));
    }
}
