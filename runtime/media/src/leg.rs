//! A call leg's media sockets: the IO shell around the RTP, RTCP, jitter buffer and DTMF
//! cores.
//!
//! One RTP/RTCP socket pair per leg from the configured port range. The receive task latches
//! onto the source of the first valid packet (symmetric RTP, for callers behind NAT), relays
//! packets to a bridged leg at once when its [`ReceiverControl`] says so, decodes audio
//! through the jitter buffer only when something needs it (the call, a bridged leg, in-band
//! digit detection), reports digits from RFC 4733 events or, without them, from the in-band
//! detector, sends RTCP reports, and reports a dead leg when nothing arrives for the
//! inactivity timeout. Sending goes through the [`Pacer`](crate::pacer::Pacer).

use crate::bridge::ReceiverControl;
use crate::codec::{AudioCodec, COMFORT_NOISE_PAYLOAD_TYPE};
use crate::denoise::Denoiser;
use crate::dtmf::detector::{DetectorConfig, DtmfDetector};
use crate::dtmf::rfc4733::{EventReceiver, EventReport};
use crate::dtmf::Digit;
use crate::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::rtcp::{self, NtpTime, RtcpPacket, SenderInfo};
use crate::rtp::{RtpReceiver, SendCounters, MAX_PACKET};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The sockets of one leg.
pub struct LegSockets {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    /// The pool the port pair goes back to when the leg is dropped.
    lease: Option<(Arc<PortPool>, u16)>,
}

impl Drop for LegSockets {
    fn drop(&mut self) {
        if let Some((pool, port)) = self.lease.take() {
            pool.release(port);
        }
    }
}

/// The even RTP ports of a range, handed out longest-free first. Allocation stays O(1) however
/// many legs are up: probing a range for a free pair costs two socket syscalls per pair in
/// use, which at thousands of concurrent legs is most of a call's set-up cost.
pub struct PortPool {
    free: std::sync::Mutex<std::collections::VecDeque<u16>>,
    range: (u16, u16),
}

impl PortPool {
    /// Every even port `p` with `p + 1` inside `[lo, hi]`.
    pub fn new(range: (u16, u16)) -> Arc<PortPool> {
        let (lo, hi) = range;
        let first = lo + lo % 2;
        let free = (first..hi).step_by(2).collect();
        Arc::new(PortPool {
            free: std::sync::Mutex::new(free),
            range,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<u16>> {
        // Nothing is left half-done under the lock: recover from a poisoned one.
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pairs free in the pool (some may still be held by another process).
    pub fn available(&self) -> usize {
        self.queue().len()
    }

    fn release(&self, port: u16) {
        self.queue().push_back(port);
    }

    /// Binds the longest-free pair. A pair another process holds goes to the back of the
    /// queue; after a bounded number of such pairs this gives up with `AddrInUse`.
    pub fn bind(self: &Arc<Self>, ip: IpAddr) -> std::io::Result<LegSockets> {
        for _ in 0..64 {
            let Some(port) = self.queue().pop_front() else {
                break;
            };
            match (
                UdpSocket::bind(SocketAddr::new(ip, port)),
                UdpSocket::bind(SocketAddr::new(ip, port + 1)),
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(LegSockets {
                        rtp: Arc::new(rtp),
                        rtcp: Arc::new(rtcp),
                        lease: Some((self.clone(), port)),
                    })
                }
                _ => self.release(port),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {}-{}", self.range.0, self.range.1),
        ))
    }
}

impl LegSockets {
    /// Binds an even RTP port and the RTCP port above it from `range`, starting at a port
    /// derived from `hint` so concurrent legs do not all probe from the bottom.
    pub fn bind(ip: IpAddr, range: (u16, u16), hint: u64) -> std::io::Result<LegSockets> {
        let (lo, hi) = range;
        let pairs = u64::from(hi.saturating_sub(lo) / 2).max(1);
        for i in 0..pairs {
            let port = lo + (((hint + i) % pairs) * 2) as u16;
            let port = port + port % 2;
            if port >= hi {
                continue;
            }
            let (Ok(rtp), Ok(rtcp)) = (
                UdpSocket::bind(SocketAddr::new(ip, port)),
                UdpSocket::bind(SocketAddr::new(ip, port + 1)),
            ) else {
                continue;
            };
            return Ok(LegSockets {
                rtp: Arc::new(rtp),
                rtcp: Arc::new(rtcp),
                lease: None,
            });
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {lo}-{hi}"),
        ))
    }

    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

/// How the negotiated stream looks.
#[derive(Debug, Clone)]
pub struct LegConfig {
    pub codec: AudioCodec,
    pub audio_payload_type: u8,
    pub telephone_event: Option<u8>,
    pub ptime_ms: u32,
    pub rtcp_mux: bool,
    /// Where SDP said the far end is; replaced by the first valid packet's source.
    pub remote: SocketAddr,
    pub inactivity: Duration,
    pub rtcp_interval: Duration,
    /// Run the in-band detector even when telephone-event was negotiated.
    pub inband_dtmf: bool,
    /// Our SSRC, for RTCP.
    pub ssrc: u32,
    /// What the pacer sent on this leg, for sender reports (and so round-trip time).
    pub sent: Option<Arc<SendCounters>>,
    /// What to do with what arrives besides reporting digits: deliver the audio, relay or
    /// pipe it to a bridged leg, suppress its noise. Changed by the call while it runs.
    pub control: ReceiverControl,
    /// SRTP, when the leg is encrypted.
    pub srtp: Option<LegSrtp>,
}

/// A leg's SRTP contexts: the far end's key unprotects what arrives (RTP and RTCP), ours
/// protects what leaves. The outbound one is shared with the pacer and any relay into the leg.
#[derive(Clone)]
pub struct LegSrtp {
    pub inbound: Arc<std::sync::Mutex<crate::srtp::Context>>,
    pub outbound: crate::pacer::SharedSrtp,
}

impl LegSrtp {
    /// Contexts for `ours` (what we send) and `theirs` (what the far end sends).
    pub fn new(ours: &crate::srtp::MasterKey, theirs: &crate::srtp::MasterKey) -> LegSrtp {
        use crate::srtp::{Context, Direction};
        LegSrtp {
            inbound: Arc::new(std::sync::Mutex::new(Context::new(
                theirs,
                Direction::Inbound,
            ))),
            outbound: Arc::new(std::sync::Mutex::new(Context::new(
                ours,
                Direction::Outbound,
            ))),
        }
    }
}

impl std::fmt::Debug for LegSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegSrtp")
    }
}

/// Packets refused by SRTP on one leg, by reason; logged as they start, never per packet.
#[derive(Default)]
struct Refused {
    counts: std::collections::HashMap<&'static str, u64>,
}

impl Refused {
    fn count(&mut self, error: &crate::srtp::SrtpError, packet: &[u8], rtcp: bool) {
        let n = self.counts.entry(error.kind()).or_default();
        *n += 1;
        if n.is_power_of_two() {
            let at = if rtcp { 4..8 } else { 8..12 };
            let ssrc = packet
                .get(at)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            tracing::warn!(%error, rtcp, len = packet.len(), count = *n, ?ssrc, "SRTP packets refused");
        }
    }
}

fn lock_srtp(
    m: &std::sync::Mutex<crate::srtp::Context>,
) -> std::sync::MutexGuard<'_, crate::srtp::Context> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which path a digit came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    Rfc4733,
    InBand,
}

/// Reception quality for the call's records and the E-model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    pub jitter_ms: f64,
    pub round_trip_ms: Option<f64>,
    pub mos: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// Media now comes from (and goes to) this address.
    Latched(SocketAddr),
    /// Decoded audio after the jitter buffer, one frame at a time (silence for gaps).
    Audio {
        samples: Vec<i16>,
        concealed: bool,
    },
    Digit {
        digit: Digit,
        source: DigitSource,
    },
    /// After each RTCP report exchange.
    Quality(Quality),
    /// Nothing received for the inactivity timeout.
    Inactive,
}

fn ntp_now() -> NtpTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    NtpTime::from_unix(secs)
}

/// Starts the receive task of a leg. Events arrive on the returned channel until the leg is
/// dropped (the channel's receiver) or the task is aborted.
pub fn spawn_receiver(
    sockets: &LegSockets,
    config: LegConfig,
    latched: Option<Arc<dyn Fn(SocketAddr) + Send + Sync>>,
) -> std::io::Result<(mpsc::Receiver<LegEvent>, tokio::task::JoinHandle<()>)> {
    let rtp = ReadOnlyUdp::new(sockets.rtp.try_clone()?)?;
    let rtcp = ReadOnlyUdp::new(sockets.rtcp.try_clone()?)?;
    let (tx, rx) = mpsc::channel(256);
    let task = tokio::spawn(receive(rtp, rtcp, config, tx, latched));
    Ok((rx, task))
}

/// A leg socket registered with the reactor for reading only. The pacer sends on the same
/// socket from its own thread; were write readiness registered too, every packet it sent
/// would wake the reactor when the kernel freed the packet's buffer (50 needless wake-ups a
/// second per call, measured as a fifth of the runtime's CPU with 2,000 calls).
struct ReadOnlyUdp(tokio::io::unix::AsyncFd<UdpSocket>);

impl ReadOnlyUdp {
    fn new(socket: UdpSocket) -> std::io::Result<ReadOnlyUdp> {
        socket.set_nonblocking(true)?;
        // SAFETY: the socket is owned by the `AsyncFd` from here on, so its descriptor stays
        // open and the same until the `AsyncFd` is dropped.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
        };
        fd.map(ReadOnlyUdp)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.0.readable().await?;
            if let Ok(result) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
                return result;
            }
        }
    }

    /// Sends without waiting: a report that finds the send buffer full is dropped, as UDP
    /// would drop it anyway.
    fn send_to(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.0.get_ref().send_to(packet, to)
    }
}

async fn receive(
    rtp: ReadOnlyUdp,
    rtcp: ReadOnlyUdp,
    config: LegConfig,
    events: mpsc::Sender<LegEvent>,
    latched: Option<Arc<dyn Fn(SocketAddr) + Send + Sync>>,
) {
    let clock = config.codec.clock_rate();
    let mut decoder = match config.codec.decoder() {
        Ok(d) => d,
        Err(_) => return,
    };
    let mut accepted = vec![config.audio_payload_type, COMFORT_NOISE_PAYLOAD_TYPE];
    accepted.extend(config.telephone_event);
    let mut receiver = RtpReceiver::new(clock, &accepted);
    let mut jitter = JitterBuffer::new(JitterConfig::telephony(clock, config.ptime_ms));
    let mut telephone_events = EventReceiver::new();
    let mut detector = (config.telephone_event.is_none() || config.inband_dtmf).then(|| {
        DtmfDetector::new(DetectorConfig {
            sample_rate: config.codec.sample_rate(),
            ..DetectorConfig::default()
        })
    });
    let mut remote: Option<SocketAddr> = None;
    // The receiver's count of SSRC changes the jitter buffer has followed: a new SSRC is a
    // new timeline.
    let mut ssrc_changes = 0;
    let mut remote_rtcp = if config.rtcp_mux {
        config.remote
    } else {
        SocketAddr::new(config.remote.ip(), config.remote.port().wrapping_add(1))
    };
    let mut last_packet = Instant::now();
    let mut last_sr: Option<(NtpTime, NtpTime)> = None;
    let mut round_trip: Option<f64> = None;
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut rtcp_buf = vec![0u8; MAX_PACKET + 1];
    // The playout clock runs only while packets arrive (and for a second after, so gaps are
    // concealed): a leg that receives nothing costs no timer wake-ups. Inactivity is checked
    // on its own slower clock.
    let period = Duration::from_millis(u64::from(config.ptime_ms));
    let mut next_tick: Option<tokio::time::Instant> = None;
    // Legs set up together (a bridge, a burst of calls) would otherwise wake on these clocks
    // at the same instants, and the packets due then would wait behind all of them: each
    // leg's phase is spread over the period by its SSRC (RFC 3550 §6.2 also asks for a
    // randomised first report).
    let spread = 0.5 + f64::from(config.ssrc) / f64::from(u32::MAX);
    let started = tokio::time::Instant::now();
    let idle_period = Duration::from_millis(500);
    let mut idle_check =
        tokio::time::interval_at(started + idle_period.mul_f64(spread), idle_period);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval_at(
        started + config.rtcp_interval.mul_f64(spread),
        config.rtcp_interval,
    );
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inactive_reported = false;
    let mut reports = Vec::new();
    let mut digits = Vec::new();
    let frame = config.codec.samples_per_frame(config.ptime_ms);
    let control = config.control.clone();
    let mut denoiser: Option<Denoiser> = None;
    let mut refused = Refused::default();

    let handle_rtcp =
        |data: &[u8], last_sr: &mut Option<(NtpTime, NtpTime)>, round_trip: &mut Option<f64>| {
            let Ok(packets) = rtcp::parse(data) else {
                return;
            };
            let arrival = ntp_now();
            for p in packets {
                let blocks = match p {
                    RtcpPacket::SenderReport { info, blocks, .. } => {
                        *last_sr = Some((info.ntp, arrival));
                        blocks
                    }
                    RtcpPacket::ReceiverReport { blocks, .. } => blocks,
                    RtcpPacket::Other { .. } => continue,
                };
                for b in blocks.iter().filter(|b| b.ssrc == config.ssrc) {
                    if let Some(rtt) = rtcp::round_trip(b, arrival) {
                        *round_trip = Some(rtt);
                    }
                }
            }
        };

    loop {
        tokio::select! {
            received = rtp.recv_from(&mut buf) => {
                let Ok((n, source)) = received else { continue };
                if config.rtcp_mux && rtcp::is_rtcp(&buf[..n]) {
                    let n = match &config.srtp {
                        Some(srtp) => match lock_srtp(&srtp.inbound).unprotect_rtcp(&mut buf[..n]) {
                            Ok(n) => n,
                            Err(e) => {
                                refused.count(&e, &buf[..n], true);
                                continue;
                            }
                        },
                        None => n,
                    };
                    handle_rtcp(&buf[..n], &mut last_sr, &mut round_trip);
                    continue;
                }
                let n = match &config.srtp {
                    Some(srtp) => match lock_srtp(&srtp.inbound).unprotect_rtp(&mut buf[..n]) {
                        Ok(n) => n,
                        Err(e) => {
                            refused.count(&e, &buf[..n], false);
                            continue;
                        }
                    },
                    None => n,
                };
                let data = &buf[..n];
                let now = Instant::now();
                let Ok(packet) = receiver.receive(data, now) else { continue };
                // A bridged leg hears it before anything else is done with it.
                control.relay(data, packet.ssrc, packet.timestamp);
                // Symmetric RTP: the first valid packet's source is where the far end really is.
                if remote != Some(source) {
                    remote = Some(source);
                    if config.rtcp_mux {
                        remote_rtcp = source;
                    }
                    if let Some(cb) = &latched {
                        cb(source);
                    }
                    if events.send(LegEvent::Latched(source)).await.is_err() {
                        return;
                    }
                }
                last_packet = now;
                inactive_reported = false;
                // The playout clock only runs for someone who listens: a leg whose packets
                // are only relayed costs no timer wake-up per packet.
                let listened = detector.is_some() || control.needs_audio();
                if next_tick.is_none() && listened {
                    next_tick = Some(tokio::time::Instant::now() + period);
                }
                if Some(packet.payload_type) == config.telephone_event {
                    reports.clear();
                    telephone_events.receive(packet.timestamp, packet.payload, &mut reports);
                    for r in &reports {
                        if let EventReport::Pressed(digit) = r {
                            // Decoded audio does not carry events: a piped leg gets it again.
                            if let Some(pipe) = control.pcm() {
                                pipe.push_digit(*digit);
                            }
                            let _ = events.send(LegEvent::Digit { digit: *digit, source: DigitSource::Rfc4733 }).await;
                        }
                    }
                } else if packet.payload_type == COMFORT_NOISE_PAYLOAD_TYPE {
                    // RFC 3389: the far end went quiet; the jitter buffer plays silence.
                } else if detector.is_some() || control.needs_audio() {
                    if receiver.counters.ssrc_changes != ssrc_changes {
                        ssrc_changes = receiver.counters.ssrc_changes;
                        jitter.resync();
                    }
                    jitter.push(packet.timestamp, packet.payload, now);
                }
            }
            received = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, _)) = received {
                    let n = match &config.srtp {
                        Some(srtp) => match lock_srtp(&srtp.inbound).unprotect_rtcp(&mut rtcp_buf[..n]) {
                            Ok(n) => n,
                            Err(e) => {
                                refused.count(&e, &rtcp_buf[..n], true);
                                continue;
                            }
                        },
                        None => n,
                    };
                    handle_rtcp(&rtcp_buf[..n], &mut last_sr, &mut round_trip);
                }
            }
            _ = async {
                match next_tick {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                let clock = tokio::time::Instant::now();
                let listened = detector.is_some() || control.needs_audio();
                next_tick = (listened && now.duration_since(last_packet) < Duration::from_secs(1)).then(|| {
                    // Keep the cadence; after a stall, restart it rather than burst.
                    let next = next_tick.unwrap_or(clock) + period;
                    if next < clock { clock + period } else { next }
                });
                while let Some(playout) = jitter.pop(now) {
                    let (samples, concealed) = match playout {
                        Playout::Frame { payload, .. } => {
                            let mut s = Vec::with_capacity(frame);
                            match decoder.decode(&payload, &mut s) {
                                Ok(()) => (s, false),
                                Err(_) => {
                                    s.clear();
                                    decoder.conceal(frame, &mut s);
                                    (s, true)
                                }
                            }
                        }
                        Playout::Missing { .. } => {
                            let mut s = Vec::with_capacity(frame);
                            decoder.conceal(frame, &mut s);
                            (s, true)
                        }
                    };
                    if let Some(d) = detector.as_mut() {
                        digits.clear();
                        d.process(&samples, &mut digits);
                        for digit in &digits {
                            let _ = events.send(LegEvent::Digit { digit: *digit, source: DigitSource::InBand }).await;
                        }
                    }
                    let mut samples = samples;
                    if control.denoises() {
                        let d = denoiser.get_or_insert_with(|| Denoiser::new(config.codec.sample_rate()));
                        d.process(&mut samples);
                    } else {
                        denoiser = None;
                    }
                    if let Some(pipe) = control.pcm() {
                        pipe.push(&samples);
                    }
                    if control.delivers_audio()
                        && events.send(LegEvent::Audio { samples, concealed }).await.is_err()
                    {
                        return;
                    }
                }
            }
            _ = idle_check.tick() => {
                let now = Instant::now();
                if !inactive_reported && now.duration_since(last_packet) >= config.inactivity {
                    inactive_reported = true;
                    if events.send(LegEvent::Inactive).await.is_err() {
                        return;
                    }
                }
            }
            _ = report.tick() => {
                let now = ntp_now();
                let stats = receiver.report();
                let blocks: Vec<_> = stats.iter().map(|s| rtcp::report_block(s, last_sr, now)).collect();
                // A sender report once the pacer has sent on this leg (it lets the far end
                // measure round-trip time), a receiver report before.
                let sender = config.sent.as_ref().and_then(|c| {
                    let packets = c.packets.load(Ordering::Relaxed);
                    (packets > 0).then(|| SenderInfo {
                        ntp: now,
                        rtp_timestamp: c.last_timestamp.load(Ordering::Relaxed),
                        packets,
                        octets: c.octets.load(Ordering::Relaxed),
                    })
                });
                let mut packet = rtcp::build_report(config.ssrc, sender, &blocks, "sma");
                let protected = config.srtp.as_ref().is_none_or(|srtp| {
                    lock_srtp(&srtp.outbound).protect_rtcp(&mut packet).is_ok()
                });
                let socket = if config.rtcp_mux { &rtp } else { &rtcp };
                if protected {
                    let _ = socket.send_to(&packet, remote_rtcp);
                }
                if let Some(s) = stats {
                    let fraction = f64::from(s.fraction_lost) / 256.0;
                    let jitter_ms = f64::from(s.jitter) * 1000.0 / f64::from(clock);
                    let delay = round_trip.map(|r| r * 500.0).unwrap_or(0.0) + jitter.delay().as_secs_f64() * 1000.0;
                    let (_, mos) = rtcp::e_model(delay, fraction);
                    let q = Quality {
                        fraction_lost: fraction,
                        cumulative_lost: s.cumulative_lost,
                        jitter_ms,
                        round_trip_ms: round_trip.map(|r| r * 1000.0),
                        mos,
                    };
                    if events.send(LegEvent::Quality(q)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
