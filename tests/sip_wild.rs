//! SIP as peers in the wild send it, with SIPp scenarios (`tests/sipp/`): media follows every
//! offer/answer (a re-INVITE or UPDATE that moves the far end's port, hold in both forms,
//! resume, a codec change, an offer sma cannot take), late offers answered in the ACK (or
//! not), and a 200 OK never acknowledged.

use serde_json::{json, Value};
use sma_e2e::calls::{actions, assert_ports_free, kind, ScriptedWebhook};
use sma_e2e::{require_program, root, Serve};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every call to 127.0.0.1 goes to `webhook`; records in `storage`; `extra` TOML.
fn config(media: (u16, u16), webhook: &str, storage: &Path, extra: &str) -> String {
    format!(
        "[media]\nport_range = [{}, {}]\n[node]\ncdr_path = \"{}/cdr.jsonl\"\n{extra}\n\
[[applications]]\nid = \"app\"\nname = \"app\"\nendpoint = \"{webhook}\"\n\
[[sip_rules]]\nname = \"loopback\"\ntrigger_type = \"RequestUriHostname\"\ntrigger_value = \"127.0.0.1\"\n\
targets = [{{ application = \"app\", priority = 1 }}]\n",
        media.0,
        media.1,
        storage.display()
    )
}

/// Answers (a listener is a media action) and keeps the call up.
fn answer_and_listen() -> ScriptedWebhook {
    ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([
            {"Type": "ReceiveDigits", "Parameters": {"InputDigitsRegex": "^\\d#$",
                "InBetweenDigitsDurationInMilliseconds": 1000, "FlushDigitsDurationInMilliseconds": 5000}}
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

/// Runs scenario `tests/sipp/<name>` once against `serve` with the `-key` pairs.
fn sipp(serve: &Serve, name: &str, keys: &[(&str, String)]) -> Output {
    let sipp = require_program("sipp", "sip-tester");
    let mut cmd = Command::new(sipp);
    cmd.arg(serve.addr("udp").to_string())
        .arg("-sf")
        .arg(root().join("tests/sipp").join(name))
        .args(["-s", "+12065550100", "-m", "1"])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-ci", "127.0.0.1"])
        .args(["-p", &free_port().to_string()])
        .args(["-cp", &free_port().to_string()])
        .args(["-mp", &free_port().to_string()])
        .args(["-timeout", "90", "-timeout_error", "-nostdin"]);
    for (k, v) in keys {
        cmd.args(["-key", k, v]);
    }
    cmd.output().expect("run sipp")
}

/// One RTP packet a test socket received: when, on which socket, its payload type.
#[derive(Debug, Clone, Copy)]
struct Packet {
    at: Duration,
    socket: usize,
    payload_type: u8,
}

/// Records every RTP packet arriving on `sockets` until dropped.
struct RtpTrap {
    ports: Vec<u16>,
    packets: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RtpTrap {
    fn new(count: usize) -> RtpTrap {
        let started = Instant::now();
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut ports = Vec::new();
        for socket in 0..count {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
            udp.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            ports.push(udp.local_addr().expect("addr").port());
            let (packets, stop) = (packets.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((n, _)) = udp.recv_from(&mut buf) {
                        if n >= 12 && buf[0] >> 6 == 2 {
                            packets.lock().unwrap().push(Packet {
                                at: started.elapsed(),
                                socket,
                                payload_type: buf[1] & 0x7f,
                            });
                        }
                    }
                }
            });
        }
        RtpTrap {
            ports,
            packets,
            stop,
        }
    }

    fn packets(&self) -> Vec<Packet> {
        self.packets.lock().unwrap().clone()
    }
}

impl Drop for RtpTrap {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs of consecutive packets (on one socket, one payload type) with no gap over `gap`.
fn bursts(packets: &[Packet], gap: Duration) -> Vec<(usize, u8, Duration, Duration, usize)> {
    let mut out: Vec<(usize, u8, Duration, Duration, usize)> = Vec::new();
    for p in packets {
        match out.last_mut() {
            Some(b) if b.0 == p.socket && b.1 == p.payload_type && p.at - b.3 <= gap => {
                b.3 = p.at;
                b.4 += 1;
            }
            _ => out.push((p.socket, p.payload_type, p.at, p.at, 1)),
        }
    }
    out
}

fn cdrs(storage: &Path) -> Vec<Value> {
    std::fs::read_to_string(storage.join("cdr.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn media_follows_every_offer_and_answer() {
    let webhook = answer_and_listen();
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28600, 28699);
    let serve = Serve::start(
        &config(media, &webhook.url, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let trap = RtpTrap::new(2);
    let out = sipp(
        &serve,
        "reinvite-media.xml",
        &[
            ("port_a", trap.ports[0].to_string()),
            ("port_b", trap.ports[1].to_string()),
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    std::thread::sleep(Duration::from_millis(300));
    let packets = trap.packets();
    // Each phase lasts 1.5 s: a run of packets is one phase (or two that send alike).
    let runs: Vec<(usize, u8)> = bursts(&packets, Duration::from_millis(400))
        .iter()
        .filter(|b| b.4 >= 10)
        .map(|b| (b.0, b.1))
        .collect();
    // a PCMU; moved to b; held (nothing); resumed on b; PCMA on b, kept through the refused
    // offer; held the old way (nothing); resumed on a by UPDATE, still PCMA.
    assert_eq!(
        runs,
        vec![(0, 0), (1, 0), (1, 0), (1, 8), (0, 8)],
        "{:?}\n{}",
        bursts(&packets, Duration::from_millis(400)),
        serve.log()
    );
    let b = bursts(&packets, Duration::from_millis(400));
    let long: Vec<_> = b.iter().filter(|b| b.4 >= 10).collect();
    // The holds were silences of (nearly) a whole phase.
    assert!(
        long[2].2 - long[1].3 >= Duration::from_millis(1000),
        "{long:?}"
    );
    assert!(
        long[4].2 - long[3].3 >= Duration::from_millis(1000),
        "{long:?}"
    );
    // The refused offer (488) kept PCMA flowing to b: two phases without a break.
    assert!(
        long[3].3 - long[3].2 >= Duration::from_millis(2500),
        "{long:?}"
    );
    let log = serve.log();
    assert!(log.contains("new offer refused with 488"), "{log}");
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    assert_ports_free(media);
}

#[test]
fn a_late_offer_is_answered_in_the_ack_or_the_call_ends_saying_why() {
    let webhook = answer_and_listen();
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28700, 28799);
    let serve = Serve::start(
        &config(media, &webhook.url, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let trap = RtpTrap::new(1);
    let out = sipp(
        &serve,
        "late-offer.xml",
        &[("port_a", trap.ports[0].to_string())],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    let packets = trap.packets();
    assert!(
        packets.len() >= 50,
        "{} packets reached the port the ACK's answer gave\n{}",
        packets.len(),
        serve.log()
    );
    let out = sipp(&serve, "late-offer-no-answer.xml", &[]);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    serve.wait_for_log("transaction finished", 2, Duration::from_secs(5));
    let records = cdrs(storage.path());
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records[1]["Failures"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f
                .as_str()
                .unwrap_or_default()
                .contains("the ACK carried no SDP answer"))),
        "{records:?}"
    );
    assert_ports_free(media);
}

#[test]
fn a_call_never_confirmed_bills_nothing_and_says_why() {
    let webhook = answer_and_listen();
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28800, 28899);
    // A small T1 so 64*T1 (the wait for the ACK) is 3.2 s instead of 32 s.
    let serve = Serve::start(
        &config(media, &webhook.url, storage.path(), "[sip]\nt1_ms = 50\n"),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let trap = RtpTrap::new(1);
    let out = sipp(
        &serve,
        "no-ack.xml",
        &[("port_a", trap.ports[0].to_string())],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    let records = cdrs(storage.path());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["BillableDurationSeconds"], 0, "{records:?}");
    assert!(
        records[0]["Failures"][0]
            .as_str()
            .is_some_and(|f| f.contains("never confirmed")),
        "{records:?}"
    );
    // ReceiveDigits reported at once; then the leg's end.
    let events = webhook.wait_for(3, Duration::from_secs(5));
    assert_eq!(kind(&events[2]), "HANGUP");
    assert_ports_free(media);
}
