//! Helpers for end-to-end call tests: a scripted webhook handler (real HTTP, the test decides
//! each response and sees every event), a baresip phone driven over its `ctrl_tcp` socket, a
//! minimal UDP SIP caller for signalling-only checks, and audio analysis.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Script = dyn Fn(&Value) -> Value + Send + Sync;

/// A webhook handler whose responses a closure decides; every event it received is kept.
pub struct ScriptedWebhook {
    pub url: String,
    events: Arc<Mutex<Vec<Value>>>,
}

fn serve_connection(stream: TcpStream, script: Arc<Script>, events: Arc<Mutex<Vec<Value>>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let response = script(&event).to_string();
        events.lock().unwrap().push(event);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{response}",
            response.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

impl ScriptedWebhook {
    pub fn start(script: impl Fn(&Value) -> Value + Send + Sync + 'static) -> ScriptedWebhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let seen = events.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_nodelay(true);
                let (script, seen) = (script.clone(), seen.clone());
                std::thread::spawn(move || serve_connection(stream, script, seen));
            }
        });
        ScriptedWebhook { url, events }
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `count` events arrived; returns them.
    pub fn wait_for(&self, count: usize, within: Duration) -> Vec<Value> {
        let end = Instant::now() + within;
        loop {
            let events = self.events();
            if events.len() >= count {
                return events;
            }
            assert!(
                Instant::now() < end,
                "only {} of {count} events arrived: {}",
                events.len(),
                serde_json::to_string_pretty(&events).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The event type of an event.
pub fn kind(event: &Value) -> &str {
    event["InvocationEventType"].as_str().unwrap_or("")
}

/// A handler response with these actions.
pub fn actions(list: Value) -> Value {
    serde_json::json!({"SchemaVersion": "1.0", "Actions": list})
}

/// PCM16 mono WAV bytes.
pub fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Reads a PCM16 WAV: (channels, rate, interleaved samples).
pub fn read_wav(path: &Path) -> (u16, u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[0..4],
        b"RIFF",
        "{} is not a WAV file",
        path.display()
    );
    let mut pos = 12;
    let (mut channels, mut rate) = (0u16, 0u32);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + size).min(bytes.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let samples = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (channels, rate, samples);
        }
        pos += 8 + size + size % 2;
    }
    panic!("{}: no data chunk", path.display());
}

/// A test prompt: a rising chirp with a three-tone melody, distinctive for correlation.
pub fn prompt_signal(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let f = 300.0 + 900.0 * t / seconds;
            let melody = [523.0, 659.0, 784.0][((t * 4.0) as usize) % 3];
            let s = 0.45 * (2.0 * std::f64::consts::PI * f * t).sin()
                + 0.25 * (2.0 * std::f64::consts::PI * melody * t).sin();
            (s * 12_000.0) as i16
        })
        .collect()
}

/// The best normalized cross-correlation of `needle` anywhere in `haystack` (1.0 = identical
/// shape), searched with a coarse step then refined.
pub fn best_correlation(haystack: &[i16], needle: &[i16]) -> f64 {
    if haystack.len() < needle.len() || needle.is_empty() {
        return 0.0;
    }
    let n: Vec<f64> = needle.iter().map(|s| f64::from(*s)).collect();
    let n_energy: f64 = n.iter().map(|x| x * x).sum::<f64>().sqrt();
    let score = |offset: usize| {
        let h = &haystack[offset..offset + n.len()];
        let mut dot = 0.0;
        let mut energy = 0.0;
        for (a, b) in h.iter().zip(&n) {
            let a = f64::from(*a);
            dot += a * b;
            energy += a * a;
        }
        if energy == 0.0 {
            0.0
        } else {
            dot / (energy.sqrt() * n_energy)
        }
    };
    let last = haystack.len() - needle.len();
    let (mut best, mut at) = (f64::MIN, 0);
    for offset in (0..=last).step_by(4) {
        let s = score(offset);
        if s > best {
            (best, at) = (s, offset);
        }
    }
    for offset in at.saturating_sub(4)..=(at + 4).min(last) {
        best = best.max(score(offset));
    }
    best
}

/// A baresip phone with a WAV file as its microphone, dumping what it hears (and sends) to
/// WAV files, controlled over `ctrl_tcp`.
pub struct Baresip {
    child: Child,
    control: TcpStream,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Baresip {
    pub fn start(rtp_ports: (u16, u16)) -> Baresip {
        let rate = 8000;
        // The caller's side: a quiet 200 Hz hum, so the far end receives real audio.
        let hum: Vec<i16> = (0..rate * 60)
            .map(|i| {
                (600.0
                    * (2.0 * std::f64::consts::PI * 200.0 * f64::from(i) / f64::from(rate)).sin())
                    as i16
            })
            .collect();
        Baresip::launch(rtp_ports, &hum, 0, false, false, None)
    }

    /// Like [`Baresip::start`], playing `mic` (8 kHz; baresip hangs up when it ends).
    pub fn calling(rtp_ports: (u16, u16), mic: &[i16]) -> Baresip {
        Baresip::launch(rtp_ports, mic, 0, false, false, None)
    }

    /// Like [`Baresip::start`], calling over TLS (trusting `ca_file`) with SRTP mandatory
    /// (`mediaenc=srtp-mand`: SDES keys in `a=crypto`, libre's own SRTP), playing `mic`.
    pub fn start_secure(rtp_ports: (u16, u16), mic: &[i16], ca_file: &Path) -> Baresip {
        Baresip::launch(rtp_ports, mic, 0, false, true, Some(ca_file))
    }

    /// Like [`Baresip::answering`], with SRTP mandatory (SDES; libre's SRTP answers the
    /// suite it is offered).
    pub fn answering_secure(rtp_ports: (u16, u16), mic: &[i16]) -> (Baresip, std::net::SocketAddr) {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let phone = Baresip::launch(rtp_ports, mic, port, true, true, None);
        (phone, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// A phone that answers every call at once and plays `mic` (8 kHz) into it; returns its
    /// SIP address.
    pub fn answering(rtp_ports: (u16, u16), mic: &[i16]) -> (Baresip, std::net::SocketAddr) {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let phone = Baresip::launch(rtp_ports, mic, port, true, false, None);
        (phone, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn launch(
        rtp_ports: (u16, u16),
        mic: &[i16],
        sip_port: u16,
        auto_answer: bool,
        srtp: bool,
        ca_file: Option<&Path>,
    ) -> Baresip {
        let baresip = crate::require_program("baresip", "baresip");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mic.wav"), wav(mic, 8000)).expect("mic");
        let dumps = dir.path().join("dumps");
        std::fs::create_dir_all(&dumps).expect("dumps");
        let control = free_tcp_port();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\n\
audio_player aufile,/dev/null\naudio_source aufile,{mic}\naudio_alert aufile,/dev/null\n\
rtp_ports {lo}-{hi}\nmodule_path /usr/lib/baresip/modules\n\
module g711.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {dumps}\n\
module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{control}\n",
            mic = dir.path().join("mic.wav").display(),
            dumps = dumps.display(),
            lo = rtp_ports.0,
            hi = rtp_ports.1,
        );
        let config = match ca_file {
            Some(ca) => format!("{config}sip_cafile {}\n", ca.display()),
            None => config,
        };
        let (config, mediaenc) = if srtp {
            (format!("{config}module srtp.so\n"), ";mediaenc=srtp-mand")
        } else {
            (config, "")
        };
        std::fs::write(dir.path().join("config"), config).expect("config");
        let answer = if auto_answer { ";answermode=auto" } else { "" };
        std::fs::write(
            dir.path().join("accounts"),
            format!("<sip:+14255550199@127.0.0.1>;regint=0{answer}{mediaenc}\n"),
        )
        .expect("accounts");
        let log = dir.path().join("baresip.log");
        // `-v`: received DTMF is logged at debug level.
        let child = Command::new(baresip)
            .args(["-v", "-n", "127.0.0.1", "-f"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start baresip");
        let end = Instant::now() + Duration::from_secs(10);
        let control = loop {
            match TcpStream::connect(("127.0.0.1", control)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("baresip control socket: {e}"),
            }
        };
        control
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Baresip {
            child,
            control,
            dir,
            log,
        }
    }

    /// Runs a baresip command (`dial <uri>`, `sndcode 1`, `hangup`).
    pub fn command(&mut self, command: &str, params: &str) {
        let json =
            serde_json::json!({"command": command, "params": params, "token": "t"}).to_string();
        let frame = format!("{}:{json},", json.len());
        self.control
            .write_all(frame.as_bytes())
            .expect("send command");
        let mut buf = [0u8; 4096];
        let _ = self.control.read(&mut buf);
    }

    pub fn dial(&mut self, uri: &str) {
        self.command("dial", uri);
    }

    /// Sends DTMF digits one at a time (RFC 4733), `gap` apart.
    pub fn send_digits(&mut self, digits: &str, gap: Duration) {
        for d in digits.chars() {
            self.command("sndcode", &d.to_string());
            std::thread::sleep(gap);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_for_log(&self, needle: &str, within: Duration) {
        let end = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < end,
                "baresip never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What baresip received (decoded), from its sndfile dump. The dump's header gets its
    /// data size when baresip closes the file, a moment after it logs the session's end:
    /// until then it reads as empty, so this waits (up to 5 s) for the finished file.
    pub fn received(&self) -> Vec<i16> {
        let dumps = self.dir.path().join("dumps");
        let end = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let file = std::fs::read_dir(&dumps)
                .expect("dumps")
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with("-dec.wav"));
            let samples = file.map(|f| read_wav(&f).2).unwrap_or_default();
            if !samples.is_empty() || std::time::Instant::now() >= end {
                return samples;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal UDP SIP caller for signalling checks: sends an INVITE and collects responses.
pub struct SipCaller {
    socket: UdpSocket,
    server: SocketAddr,
    call_id: String,
    cseq: u32,
    /// The RTP port its offer names (its own SIP port + 2 unless set).
    rtp_port: Option<u16>,
}

/// One response: status and raw text.
#[derive(Debug, Clone)]
pub struct SipResponse {
    pub status: u16,
    pub text: String,
}

impl SipResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

impl SipCaller {
    pub fn new(server: SocketAddr) -> SipCaller {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SipCaller {
            socket,
            server,
            call_id: format!("caller-{n}-{}", std::process::id()),
            cseq: 0,
            rtp_port: None,
        }
    }

    /// A caller whose offer names `rtp_port` (a socket the test holds) for its media.
    pub fn with_rtp_port(server: SocketAddr, rtp_port: u16) -> SipCaller {
        SipCaller {
            rtp_port: Some(rtp_port),
            ..SipCaller::new(server)
        }
    }

    /// A request in the dialog a 2xx `answer` to INVITE `uri` established (ACK, BYE).
    fn in_dialog(&self, method: &str, cseq: u32, uri: &str, answer: &SipResponse) -> String {
        let local = self.socket.local_addr().expect("local");
        let to = answer.header("To").unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{method}-{}-{cseq};rport\r\nMax-Forwards: 70\r\n\
From: <sip:+14255550199@127.0.0.1>;tag=caller\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            self.call_id, self.call_id
        )
    }

    /// ACKs a 2xx `answer` (a transaction of its own, RFC 3261 §13.2.2.4).
    pub fn ack_answer(&self, uri: &str, answer: &SipResponse) {
        let ack = self.in_dialog("ACK", self.cseq, uri, answer);
        let _ = self.socket.send_to(ack.as_bytes(), self.server);
    }

    /// Hangs up the call `answer` established; the BYE's final status (0: none within 5 s).
    pub fn bye(&mut self, uri: &str, answer: &SipResponse) -> u16 {
        self.cseq += 1;
        let bye = self.in_dialog("BYE", self.cseq, uri, answer);
        let _ = self.socket.send_to(bye.as_bytes(), self.server);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            match self.recv_response() {
                Some(r) if r.status >= 200 && r.text.contains(" BYE\r\n") => return r.status,
                _ => {}
            }
        }
        0
    }

    /// The ACK for a non-2xx final response (same branch as the INVITE, RFC 3261 §17.1.1.3).
    fn ack(&self, uri: &str, branch: &str, response: &SipResponse) {
        let local = self.socket.local_addr().expect("local");
        let to = response.header("To").unwrap_or_default();
        let ack = format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
From: <sip:+14255550199@127.0.0.1>;tag=caller\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            self.call_id, self.cseq
        );
        let _ = self.socket.send_to(ack.as_bytes(), self.server);
    }

    /// The next datagram as a response with its status (0 when it is not one); `None` when
    /// nothing arrived within the socket's read timeout.
    fn recv_response(&self) -> Option<SipResponse> {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Some(SipResponse { status, text })
    }

    /// Sends an INVITE, waits for `180 Ringing`, then CANCELs it; returns the CANCEL's and the
    /// INVITE's final responses.
    pub fn invite_then_cancel(&mut self, uri: &str, within: Duration) -> (u16, u16) {
        self.cseq += 1;
        let local = self.socket.local_addr().expect("local");
        let branch = format!("z9hG4bK-{}-{}", self.call_id, self.cseq);
        let head = |method: &str| {
            format!(
                "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
From: <sip:+14255550199@127.0.0.1>;tag=caller\r\nTo: <{uri}>\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n",
                self.call_id, self.cseq
            )
        };
        let invite = format!(
            "{}Contact: <sip:caller@{local}>\r\nContent-Length: 0\r\n\r\n",
            head("INVITE")
        );
        self.socket
            .send_to(invite.as_bytes(), self.server)
            .expect("send");
        let end = Instant::now() + within;
        let (mut cancel_status, mut invite_status) = (0, 0);
        let mut cancelled = false;
        while Instant::now() < end && (cancel_status == 0 || invite_status == 0) {
            let Some(SipResponse { status, text }) = self.recv_response() else {
                continue;
            };
            let is_cancel = text.contains(" CANCEL\r\n");
            if status == 180 && !cancelled {
                cancelled = true;
                let cancel = format!("{}Content-Length: 0\r\n\r\n", head("CANCEL"));
                self.socket
                    .send_to(cancel.as_bytes(), self.server)
                    .expect("send");
            } else if status >= 200 && is_cancel {
                cancel_status = status;
            } else if status >= 200 {
                invite_status = status;
                self.ack(uri, &branch, &SipResponse { status, text });
            }
        }
        (cancel_status, invite_status)
    }

    /// Sends an INVITE to `uri` with an SDP offer and `extra` header lines; returns the final
    /// response (after ACKing it when it is not a 2xx), waiting up to `within`.
    pub fn invite(&mut self, uri: &str, extra: &[String], within: Duration) -> SipResponse {
        self.try_invite(uri, extra, within)
            .unwrap_or_else(|| panic!("no final response to INVITE {uri} within {within:?}"))
    }

    /// [`SipCaller::invite`], `None` when no final response came within `within`.
    pub fn try_invite(
        &mut self,
        uri: &str,
        extra: &[String],
        within: Duration,
    ) -> Option<SipResponse> {
        self.cseq += 1;
        let local = self.socket.local_addr().expect("local");
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
            self.rtp_port.unwrap_or(local.port() + 2)
        );
        let branch = format!("z9hG4bK-{}-{}", self.call_id, self.cseq);
        let mut msg = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
From: <sip:+14255550199@127.0.0.1>;tag=caller\r\nTo: <{uri}>\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\n\
Contact: <sip:caller@{local}>\r\nContent-Type: application/sdp\r\n",
            self.call_id, self.cseq
        );
        for h in extra {
            msg.push_str(h);
            msg.push_str("\r\n");
        }
        msg.push_str(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
        self.socket
            .send_to(msg.as_bytes(), self.server)
            .expect("send");
        let end = Instant::now() + within;
        while Instant::now() < end {
            let Some(response) = self.recv_response() else {
                continue;
            };
            let status = response.status;
            if status < 200 {
                continue;
            }
            if status >= 300 {
                self.ack(uri, &branch, &response);
            }
            return Some(response);
        }
        None
    }
}

/// Every port of `range` can be bound: no media socket was left open. Ranges checked this way
/// lie below the kernel's ephemeral range (32768–60999), where no other test's `:0` socket can
/// land by chance.
pub fn assert_ports_free(range: (u16, u16)) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let busy: Vec<u16> = (range.0..=range.1)
            .filter(|p| UdpSocket::bind(("127.0.0.1", *p)).is_err())
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "media ports still held after the calls ended: {busy:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tone's share of the energy in `samples` (Goertzel at 8 kHz).
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        2.0 * power / (energy * samples.len() as f64)
    }
}
