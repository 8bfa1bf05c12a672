//! A voice connector with encryption on, as a PBX reaches it: the INVITE of seed 001 (TLS,
//! `RTP/SAVP` with six `a=crypto` lines, a `;transport=tls` Request-URI with a join-token
//! parameter) written byte for byte over an openssl TLS connection that presents the PBX's
//! client certificate; sma answers with SRTP and audio is checked both ways with the test's
//! own SRTP contexts. Mutual TLS: a connector with a client CA refuses callers without a
//! trusted certificate.

use serde_json::{json, Value};
use sma_e2e::calls::{
    actions, assert_ports_free, best_correlation, kind, prompt_signal, read_wav, wav,
    ScriptedWebhook,
};
use sma_e2e::{require_program, self_signed_certificate, Serve};
use sma_media::codec::g711;
use sma_media::srtp::{Context, CryptoAttribute, Direction, MasterKey, Suite};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HOST: &str = "abcdef1ghij2klmno3pqr4.voiceconnector.example";

fn config(endpoint: &str, media: (u16, u16), storage: &Path, client_ca: &Path) -> String {
    format!(
        r#"
[media]
port_range = [{lo}, {hi}]
[storage]
root = "{storage}"
[node]
cdr_path = "{storage}/cdr.jsonl"
[[applications]]
id = "app-1"
name = "pbx calls"
endpoint = "{endpoint}"
[[voice_connectors]]
id = "abcdef1ghij2klmno3pqr4"
name = "pbx"
outbound_host_name = "{HOST}"
require_encryption = true
termination = {{ cidr_allow_list = ["127.0.0.1/32"], tls_client_ca_file = "{ca}" }}
[[sip_rules]]
id = "rule-1"
name = "pbx trunk"
trigger_type = "RequestUriHostname"
trigger_value = "{HOST}"
targets = [{{ application = "app-1", priority = 1 }}]
"#,
        lo = media.0,
        hi = media.1,
        storage = storage.display(),
        ca = client_ca.display(),
    )
}

/// A SIP peer on a TLS connection opened by `openssl s_client`: what the test writes goes
/// out as is; messages read back are split by Content-Length.
struct TlsPeer {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<String>,
}

impl TlsPeer {
    fn connect(server: &str, ca: &Path, identity: Option<(&Path, &Path)>) -> TlsPeer {
        let mut command = Command::new(require_program("openssl", "openssl"));
        command
            .args([
                "s_client",
                "-quiet",
                "-verify_return_error",
                "-connect",
                server,
            ])
            .arg("-CAfile")
            .arg(ca);
        if let Some((crt, key)) = identity {
            command.arg("-cert").arg(crt).arg("-key").arg(key);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == "\r\n" && head.is_empty() {
                        continue; // keep-alive CRLF
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        (name.eq_ignore_ascii_case("content-length") || name == "l")
                            .then(|| value.trim().parse::<usize>().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                head.push_str(&String::from_utf8_lossy(&body));
                if tx.send(head).is_err() {
                    return;
                }
            }
        });
        TlsPeer {
            child,
            stdin,
            messages,
        }
    }

    fn send(&mut self, message: &str) {
        self.stdin
            .write_all(message.as_bytes())
            .and_then(|_| self.stdin.flush())
            .expect("write to the TLS connection");
    }

    /// The next message whose first line starts with `start` (others are skipped), within
    /// `within`.
    fn expect(&self, start: &str, within: Duration, serve: &Serve) -> String {
        let end = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if m.starts_with(start) => return m,
                Ok(m) => seen.push(m),
                Err(_) => panic!(
                    "no `{start}` within {within:?}; received {seen:?}\n{}",
                    serve.log()
                ),
            }
        }
    }
}

impl Drop for TlsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `inline:` key of the right length for `suite`, fresh.
fn key(suite: Suite) -> (MasterKey, String) {
    let key = MasterKey::generate(suite).expect("random key");
    let inline = format!("inline:{}", key.inline());
    (key, inline)
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The INVITE of seed 001 (a FreePBX/Asterisk trunk to a Chime voice connector), with real
/// keys in place of its `EXAMPLE` placeholders and this test's RTP port.
fn seed_invite(rtp_port: u16, keys: &[(u8, &str, String)], target: &str) -> String {
    seed_invite_as("seed-001", rtp_port, keys, target)
}

/// [`seed_invite`] as a call of its own: `call` goes into its Call-ID, branch and tag.
fn seed_invite_as(call: &str, rtp_port: u16, keys: &[(u8, &str, String)], target: &str) -> String {
    let mut sdp = format!(
        "v=0\r\no=- 1879046384 1879046384 IN IP4 127.0.0.1\r\ns=Asterisk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/SAVP 0 8 101\r\n"
    );
    for (tag, suite, inline) in keys {
        sdp.push_str(&format!("a=crypto:{tag} {suite} {inline}\r\n"));
    }
    sdp.push_str(
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:140\r\na=sendrecv\r\n",
    );
    format!(
        "INVITE {target} SIP/2.0\r\n\
Via: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-{call}-invite;alias\r\n\
From: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-{call}\r\n\
To: <{target}>\r\n\
Contact: <sip:+15105550101@127.0.0.1:5061;transport=tls>\r\n\
Call-ID: 5b1a3f9e-{call}@pbx.example.com\r\n\
CSeq: 29671 INVITE\r\n\
Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, MESSAGE, REFER\r\n\
Supported: 100rel, timer, replaces, norefersub\r\n\
Session-Expires: 1800\r\n\
Min-SE: 90\r\n\
Max-Forwards: 70\r\n\
User-Agent: FPBX-16.0.40.7(18.20.0)\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// An RTP packet: PCMU, 20 ms.
fn rtp(seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// What the PBX heard over SRTP while it sent `tone` (20 ms PCMU packets, paced), and how many
/// of sma's packets authenticated and how many did not.
struct Exchange {
    heard: Vec<i16>,
    received: usize,
    refused: usize,
}

/// Sends `tone` protected with `outbound` to `destination` in real time while receiving and
/// unprotecting what sma sends with `inbound`.
fn exchange(
    socket: &UdpSocket,
    destination: (&str, u16),
    outbound: &mut Context,
    inbound: &mut Context,
    tone: &[i16],
    ssrc: u32,
) -> Exchange {
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let mut out = Exchange {
        heard: Vec::new(),
        received: 0,
        refused: 0,
    };
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    for (i, frame) in tone.chunks(160).enumerate() {
        let mut payload = Vec::with_capacity(160);
        g711::ulaw_encode_into(frame, &mut payload);
        let mut packet = rtp(i as u16, 160 * i as u32, ssrc, &payload);
        outbound.protect_rtp(&mut packet).expect("protect");
        socket.send_to(&packet, destination).expect("send");
        let next = start + Duration::from_millis(20 * (i as u64 + 1));
        while Instant::now() < next {
            if let Ok(n) = socket.recv(&mut buf) {
                match inbound.unprotect_rtp(&mut buf[..n]) {
                    Ok(len) if len > 12 && buf[1] & 0x7f == 0 => {
                        out.received += 1;
                        g711::ulaw_decode_into(&buf[12..len], &mut out.heard);
                    }
                    Ok(_) => {}
                    Err(_) => out.refused += 1,
                }
            }
        }
    }
    out
}

/// The seed's INVITE (its join token left out) over mutual TLS to a connector with encryption
/// on: answered with SRTP
/// in the best suite of the six offered (AEAD_AES_256_GCM; the `_8` line is skipped), a key
/// of sma's own; the PBX hears the prompt and sma records the PBX's tone, both through SRTP.
#[test]
fn the_seed_invite_over_mutual_tls_is_answered_with_srtp_and_audio_flows_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path();
    let prompt = prompt_signal(8000, 1.5);
    std::fs::create_dir_all(storage.join("prompts")).expect("bucket");
    std::fs::write(storage.join("prompts/menu.wav"), wav(&prompt, 8000)).expect("prompt");
    let webhook = ScriptedWebhook::start(|event: &Value| {
        let call = event["CallDetails"]["Participants"][0]["CallId"].clone();
        match kind(event) {
            "NEW_INBOUND_CALL" => actions(json!([
                {"Type": "PlayAudio", "Parameters": {
                    "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "menu.wav"}}},
                {"Type": "RecordAudio", "Parameters": {"CallId": call, "DurationInSeconds": "2",
                    "RecordingDestination": {"Type": "S3", "BucketName": "voicemail", "Prefix": "pbx/"}}}
            ])),
            _ => actions(json!([])),
        }
    });
    let (pbx_crt, pbx_key) = self_signed_certificate(storage, "pbx");
    let media = (29400, 29499);
    let server_cert = storage.join("server.pem");
    let serve = Serve::start(
        &config(&webhook.url, media, storage, &pbx_crt),
        &["tls:127.0.0.1:0"],
        &["--tls-dev-cert-out", server_cert.to_str().expect("utf-8")],
    );
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    let rtp_port = rtp_socket.local_addr().expect("addr").port();
    let offered = [
        (1, "AEAD_AES_256_GCM", key(Suite::AeadAes256Gcm)),
        // Not a suite sma has (an 8-byte GCM tag): its line must be passed over.
        (2, "AEAD_AES_256_GCM_8", key(Suite::AeadAes256Gcm)),
        (
            3,
            "AES_256_CM_HMAC_SHA1_80",
            key(Suite::AesCm256HmacSha1_80),
        ),
        (
            4,
            "AES_256_CM_HMAC_SHA1_32",
            key(Suite::AesCm256HmacSha1_32),
        ),
        (
            5,
            "AES_CM_128_HMAC_SHA1_80",
            key(Suite::AesCm128HmacSha1_80),
        ),
        (
            6,
            "AES_CM_128_HMAC_SHA1_32",
            key(Suite::AesCm128HmacSha1_32),
        ),
    ];
    let lines: Vec<(u8, &str, String)> = offered
        .iter()
        .map(|(tag, suite, (_, inline))| (*tag, *suite, inline.clone()))
        .collect();
    let mut pbx = TlsPeer::connect(
        &serve.addr("tls").to_string(),
        &server_cert,
        Some((&pbx_crt, &pbx_key)),
    );
    // Without its join token the seed's INVITE is an ordinary trunk call: the connector's
    // RequestUriHostname rule runs the handler. (With a token it is a meeting dial-in: the
    // next test.)
    pbx.send(&seed_invite(
        rtp_port,
        &lines,
        &format!("sip:17035550122@{HOST};transport=tls"),
    ));
    let ok = pbx.expect("SIP/2.0 200", Duration::from_secs(10), &serve);
    // The answer: RTP/SAVP with exactly one crypto line, the best suite, sma's own key.
    assert!(ok.contains("RTP/SAVP"), "{ok}");
    let crypto: Vec<&str> = ok
        .lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .collect();
    assert_eq!(crypto.len(), 1, "one crypto line in the answer: {ok}");
    let answer = CryptoAttribute::parse(crypto[0]).expect("the answer's crypto line parses");
    assert_eq!(answer.tag, 1, "{ok}");
    assert_eq!(answer.key.suite(), Suite::AeadAes256Gcm, "{ok}");
    assert!(
        !lines
            .iter()
            .any(|(_, _, inline)| crypto[0].contains(inline.as_str())),
        "sma answered with a key of its own, never the offerer's"
    );
    let to = header(&ok, "To").expect("To").to_owned();
    let sma_rtp: u16 = ok
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("the answer's RTP port");
    pbx.send(&format!(
        "ACK sip:17035550122@{HOST};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-seed-001-ack\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29671 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));

    // Media: the PBX sends a 440 Hz tone with its tag-1 key and decrypts sma's with the
    // answer's key.
    let mut outbound = Context::new(&offered[0].2 .0, Direction::Outbound);
    let mut inbound = Context::new(&answer.key, Direction::Inbound);
    let destination = ("127.0.0.1", sma_rtp);
    let tone: Vec<i16> = (0..8000 * 5)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect();
    // Hostile packets first: a replay-free stream under another line's key (tag 3, which
    // sma did not take), truncated packets, and noise. Each is refused and counted; none
    // disturbs the call.
    let mut wrong = Context::new(&offered[2].2 .0, Direction::Outbound);
    for i in 0..8u16 {
        let mut packet = rtp(1000 + i, 0, 0x0bad_0bad, &[0xff; 160]);
        wrong.protect_rtp(&mut packet).expect("protect");
        rtp_socket.send_to(&packet, destination).expect("send");
    }
    for noise in [&[0x80u8, 0, 0, 1][..], &[0u8; 11][..], &[0x80u8; 40][..]] {
        rtp_socket.send_to(noise, destination).expect("send");
    }
    let Exchange {
        heard,
        received,
        refused,
    } = exchange(
        &rtp_socket,
        destination,
        &mut outbound,
        &mut inbound,
        &tone,
        0x5eed_0001,
    );
    assert_eq!(refused, 0, "every packet from sma authenticated");
    assert!(received > 100, "only {received} SRTP packets from sma");
    let score = best_correlation(&heard, &prompt);
    assert!(score > 0.9, "the PBX heard the prompt at {score:.3}");

    // The handler's recording holds the PBX's tone, decrypted by sma.
    let events = webhook.wait_for(2, Duration::from_secs(10));
    let recorded = events
        .iter()
        .find(|e| e["ActionData"]["Type"] == "RecordAudio")
        .and_then(|e| e["ActionData"]["RecordingDestination"]["Key"].as_str())
        .map(str::to_owned)
        .expect("RecordAudio reported its key");
    let (_, _, samples) = read_wav(&storage.join("voicemail").join(&recorded));
    let share = sma_e2e::calls::tone_share(&samples, 440.0);
    assert!(share > 0.5, "440 Hz share {share:.2} in the recording");
    assert_eq!(kind(&events[0]), "NEW_INBOUND_CALL");

    pbx.send(&format!(
        "BYE sip:17035550122@{HOST};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-seed-001-bye\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29672 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));
    pbx.expect("SIP/2.0 200", Duration::from_secs(5), &serve);
    let events = webhook.wait_for(3, Duration::from_secs(10));
    assert_eq!(kind(&events[2]), "HANGUP");
    let log = serve.log();
    assert!(log.contains("srtp=\"AEAD_AES_256_GCM\""), "{log}");
    assert!(!log.contains("inline:"), "a key reached the log:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("SRTP packets refused")
            && l.contains("authentication failed")
            && l.contains("count=8")),
        "the packets under the wrong key were refused and counted:\n{log}"
    );
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    assert_ports_free(media);
}

/// Mutual TLS on the connector: no client certificate, or one the connector's CA file does
/// not hold, gets 403 (the reason in the log); the PBX's certificate gets through.
#[test]
fn a_connector_with_a_client_ca_refuses_callers_without_a_trusted_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let webhook = ScriptedWebhook::start(|event: &Value| match kind(event) {
        "NEW_INBOUND_CALL" => actions(json!([{"Type": "Speak",
            "Parameters": {"Text": "Welcome."}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}])),
        _ => actions(json!([])),
    });
    let (pbx_crt, pbx_key) = self_signed_certificate(dir.path(), "pbx");
    let (stranger_crt, stranger_key) = self_signed_certificate(dir.path(), "stranger");
    let server_cert = dir.path().join("server.pem");
    let serve = Serve::start(
        &config(&webhook.url, (29600, 29699), dir.path(), &pbx_crt),
        &["tls:127.0.0.1:0"],
        &["--tls-dev-cert-out", server_cert.to_str().expect("utf-8")],
    );
    let scenario = dir.path().join("pbx.yaml");
    std::fs::write(
        &scenario,
        format!(
            "call:\n  to: sip:+12065550100@{HOST}\n  server: {}\n  transport: tls\nmedia: {{srtp: required}}\nsteps:\n  - expect: answered\n  - expect_hangup: 10s\n",
            serve.addr("tls")
        ),
    )
    .expect("scenario");
    let call = |identity: Option<(&Path, &Path)>| {
        let mut command = Command::new(sma_e2e::sma());
        command
            .args(["call", "--no-record", "--rtp-ports", "29500-29599", "-s"])
            .arg(&scenario)
            .arg("--ca-file")
            .arg(&server_cert);
        if let Some((crt, key)) = identity {
            command.arg("--tls-cert").arg(crt).arg("--tls-key").arg(key);
        }
        let out = command.output().expect("sma call");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = call(None);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("rejected: 403"), "{text}");
    assert!(
        serve.log().contains("no client certificate"),
        "{}",
        serve.log()
    );
    let (code, text) = call(Some((&stranger_crt, &stranger_key)));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("rejected: 403"), "{text}");
    assert!(
        serve.log().contains("client certificate not trusted"),
        "{}",
        serve.log()
    );
    let (code, text) = call(Some((&pbx_crt, &pbx_key)));
    assert_eq!(code, Some(0), "{text}\n{}", serve.log());
    // The `sips:` form: the answer's Contact is `sips:` too (RFC 3261 §8.1.1.8).
    let mut pbx = TlsPeer::connect(
        &serve.addr("tls").to_string(),
        &server_cert,
        Some((&pbx_crt, &pbx_key)),
    );
    let (_, inline) = key(Suite::AesCm128HmacSha1_80);
    pbx.send(&seed_invite(
        40000,
        &[(1, "AES_CM_128_HMAC_SHA1_80", inline)],
        &format!("sips:+12065550100@{HOST}"),
    ));
    let ok = pbx.expect("SIP/2.0 200", Duration::from_secs(10), &serve);
    let contact = header(&ok, "Contact").expect("Contact");
    assert!(contact.starts_with("<sips:"), "{ok}");
    let to = header(&ok, "To").expect("To");
    pbx.send(&format!(
        "ACK sips:+12065550100@{HOST} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-sips-ack\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29671 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));
    pbx.send(&format!(
        "BYE sips:+12065550100@{HOST} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-sips-bye\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29672 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));
    pbx.expect("SIP/2.0 200", Duration::from_secs(5), &serve);
    assert_ports_free((29600, 29699));
}

/// The seed's INVITE as it is, with a real join token (boto3 created the meeting and its
/// attendees), over mutual TLS with SRTP: a meeting dial-in with no handler of ours. A second
/// attendee joins from a phone number through `JoinChimeMeeting`; each hears the other's tone.
/// A token that lets nobody in gets 403 with a Warning saying why.
#[test]
fn the_seed_invite_with_a_real_join_token_dials_into_the_meeting_over_tls_and_srtp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path();
    let tokens: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
    let webhook = {
        let tokens = tokens.clone();
        ScriptedWebhook::start(move |event: &Value| match kind(event) {
            "NEW_INBOUND_CALL" => {
                let token = tokens.lock().unwrap().clone();
                actions(json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": token}}]))
            }
            _ => actions(json!([])),
        })
    };
    let (pbx_crt, pbx_key) = self_signed_certificate(storage, "pbx");
    let media = (24100, 24199);
    let server_cert = storage.join("server.pem");
    let extra = "[[phone_numbers]]\nnumber = \"+12065550100\"\n[[sip_rules]]\nid = \"rule-2\"\nname = \"attendees\"\ntrigger_type = \"ToPhoneNumber\"\ntrigger_value = \"+12065550100\"\ntargets = [{ application = \"app-1\", priority = 1 }]\n";
    let serve = Serve::start(
        &(config(&webhook.url, media, storage, &pbx_crt) + extra),
        &["udp:127.0.0.1:0", "tls:127.0.0.1:0"],
        &["--tls-dev-cert-out", server_cert.to_str().expect("utf-8")],
    );
    let url = serve.api.clone().expect("the API is on");
    let out = Command::new(sma_e2e::root().join(".venv/bin/python"))
        .arg(sma_e2e::root().join("tests/api/meeting_setup.py"))
        .args([
            url.as_str(),
            "AKIASMADEVELOPMENT01",
            "sma/dev/secret/key/do/not/use/in/production",
            "2",
        ])
        .output()
        .expect("meeting_setup.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let pbx_token = created["Attendees"][0]["JoinToken"]
        .as_str()
        .expect("token")
        .to_owned();
    *tokens.lock().unwrap() = created["Attendees"][1]["JoinToken"]
        .as_str()
        .expect("token")
        .to_owned();

    // A token nobody was given: 403, and the Warning says why.
    let mut stranger = TlsPeer::connect(
        &serve.addr("tls").to_string(),
        &server_cert,
        Some((&pbx_crt, &pbx_key)),
    );
    let (_, inline) = key(Suite::AeadAes256Gcm);
    stranger.send(&seed_invite_as(
        "stranger",
        40000,
        &[(1, "AEAD_AES_256_GCM", inline)],
        &format!("sip:17035550122@{HOST};transport=tls;X-chime-join-token=00ff00ff"),
    ));
    let refused = stranger.expect("SIP/2.0 403", Duration::from_secs(10), &serve);
    assert!(
        header(&refused, "Warning").is_some_and(|w| w.contains("no attendee has this join token")),
        "{refused}"
    );
    drop(stranger);

    // The attendee on a phone: plays 1 kHz for 6 s and records what it hears.
    let signal: Vec<i16> = (0..8000 * 6)
        .map(|n| {
            (6000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin()) as i16
        })
        .collect();
    std::fs::write(storage.join("tone.wav"), wav(&signal, 8000)).expect("wav");
    std::fs::write(
        storage.join("phone.yaml"),
        format!(
            "name: phone\ncall:\n  to: sip:+12065550100@{}\nsteps:\n  - expect: answered\n  - play: tone.wav\n  - hangup\n",
            serve.addr("udp")
        ),
    )
    .expect("scenario");
    let recordings = storage.join("rec");
    let phone = Command::new(sma_e2e::sma())
        .args([
            "call",
            "-s",
            "phone.yaml",
            "--rtp-ports",
            "29500-29549",
            "--record-dir",
        ])
        .arg(&recordings)
        .current_dir(storage)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sma call");

    // The PBX dials in with the seed's INVITE and its own attendee's token.
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    let rtp_port = rtp_socket.local_addr().expect("addr").port();
    let (offer_key, inline) = key(Suite::AeadAes256Gcm);
    let mut pbx = TlsPeer::connect(
        &serve.addr("tls").to_string(),
        &server_cert,
        Some((&pbx_crt, &pbx_key)),
    );
    pbx.send(&seed_invite(
        rtp_port,
        &[(1, "AEAD_AES_256_GCM", inline)],
        &format!("sip:17035550122@{HOST};transport=tls;X-chime-join-token={pbx_token}"),
    ));
    let ok = pbx.expect("SIP/2.0 200", Duration::from_secs(10), &serve);
    let answer = ok
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| CryptoAttribute::parse(v).expect("crypto"))
        .expect("the answer has a crypto line");
    let sma_rtp: u16 = ok
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("the answer's RTP port");
    let to = header(&ok, "To").expect("To").to_owned();
    pbx.send(&format!(
        "ACK sip:17035550122@{HOST};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-dial-in-ack\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29671 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));
    let mut outbound = Context::new(&offer_key, Direction::Outbound);
    let mut inbound = Context::new(&answer.key, Direction::Inbound);
    let tone: Vec<i16> = (0..8000 * 5)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect();
    let heard = exchange(
        &rtp_socket,
        ("127.0.0.1", sma_rtp),
        &mut outbound,
        &mut inbound,
        &tone,
        0x5eed_0002,
    )
    .heard;
    let out = phone.wait_with_output().expect("sma call");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The PBX heard the phone's 1 kHz through the meeting, decrypted.
    let share = sma_e2e::calls::tone_share(&heard, 1000.0);
    assert!(
        share > 0.3,
        "the PBX heard the phone at {share:.3}\n{}",
        serve.log()
    );
    // The phone heard the PBX's 440 Hz (left channel of its recording, 2 s to 4 s in).
    let (_, _, samples) = read_wav(&recordings.join("phone-1.wav"));
    let left: Vec<i16> = samples
        .iter()
        .step_by(2)
        .copied()
        .skip(8000 * 2)
        .take(8000 * 2)
        .collect();
    let share = sma_e2e::calls::tone_share(&left, 440.0);
    assert!(share > 0.3, "the phone heard the PBX at {share:.3}");
    let log = serve.log();
    assert!(log.contains("meeting dial-in"), "{log}");
    assert!(log.contains("srtp=\"AEAD_AES_256_GCM\""), "{log}");
    pbx.send(&format!(
        "BYE sip:17035550122@{HOST};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;rport;branch=z9hG4bKPj-dial-in-bye\r\nFrom: \"PBX\" <sip:+15105550101@pbx.example.com>;tag=3c2a1b59-seed-001\r\nTo: {to}\r\nCall-ID: 5b1a3f9e-seed-001@pbx.example.com\r\nCSeq: 29672 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ));
    pbx.expect("SIP/2.0 200", Duration::from_secs(5), &serve);
    assert_ports_free(media);
}
