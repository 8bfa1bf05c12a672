//! The endpoint task: the one owner of the sans-IO user agent. It feeds it what the transports
//! receive and the timers it asks for, sends what it yields, and acts on its events.
//!
//! Until the call engine routes calls to applications, every call is answered: the offer is
//! negotiated against the configured codecs, an RTP port pair is reserved from the media
//! range, and the call ends by BYE from either side (or from this side after
//! `serve.hangup_after_secs`).

use super::transport::{Inbound, Transports};
use sma_sip::message::reject_too_large;
use sma_sip::sdp::{Codec, Direction, LocalMedia, SdpSession, SessionDescription};
use sma_sip::ua::{CallHandle, UaEvent, UserAgent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn};

/// Media settings for answering.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub address: Option<IpAddr>,
    pub port_range: (u16, u16),
    pub codecs: Vec<Codec>,
    pub ptime: u32,
}

/// Hands out RTP/RTCP port pairs from the configured range, each held by bound sockets so no
/// other process takes them while the call lasts.
struct MediaPorts {
    range: (u16, u16),
    next: u16,
}

impl MediaPorts {
    fn new(range: (u16, u16)) -> MediaPorts {
        let first = range.0 + range.0 % 2;
        MediaPorts { range, next: first }
    }

    fn allocate(&mut self, ip: IpAddr) -> Option<(u16, [UdpSocket; 2])> {
        let (lo, hi) = self.range;
        let pairs = ((hi - lo) / 2).max(1);
        for _ in 0..pairs {
            let port = self.next;
            self.next = if port + 3 > hi { lo + lo % 2 } else { port + 2 };
            let (Ok(rtp), Ok(rtcp)) = (
                UdpSocket::bind(SocketAddr::new(ip, port)),
                UdpSocket::bind(SocketAddr::new(ip, port + 1)),
            ) else {
                continue;
            };
            return Some((port, [rtp, rtcp]));
        }
        None
    }
}

struct AnsweredCall {
    local: LocalMedia,
    sdp: SdpSession,
    hangup_at: Option<Instant>,
    _ports: [UdpSocket; 2],
    call_id: String,
}

pub struct Endpoint {
    ua: UserAgent,
    transports: Transports,
    media: MediaSettings,
    ports: MediaPorts,
    hangup_after: Option<Duration>,
    calls: HashMap<CallHandle, AnsweredCall>,
    session_ids: u64,
}

impl Endpoint {
    pub fn new(
        ua: UserAgent,
        transports: Transports,
        media: MediaSettings,
        hangup_after: Option<Duration>,
    ) -> Endpoint {
        Endpoint {
            ua,
            transports,
            ports: MediaPorts::new(media.port_range),
            media,
            hangup_after,
            calls: HashMap::new(),
            session_ids: 1,
        }
    }

    pub async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>) {
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = inbound.recv() => {
                    let Some(item) = item else { return };
                    let now = Instant::now();
                    match item {
                        Inbound::Message { bytes, source, local, transport } => {
                            self.ua.handle_input(&bytes, source, local, transport, now);
                        }
                        Inbound::TooLarge { head, size, limit, source, transport } => {
                            match reject_too_large(&head, size, limit) {
                                Some(rejection) => self.ua.reject_stateless(&rejection, source, transport),
                                None => debug!(%source, size, "oversize message dropped"),
                            }
                        }
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    self.ua.handle_timeout(now);
                    self.hang_up_due(now);
                }
            }
            self.flush(Instant::now());
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let hangups = self.calls.values().filter_map(|c| c.hangup_at).min();
        match (self.ua.poll_timeout(), hangups) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn hang_up_due(&mut self, now: Instant) {
        let due: Vec<CallHandle> = self
            .calls
            .iter_mut()
            .filter(|(_, c)| c.hangup_at.is_some_and(|at| at <= now))
            .map(|(h, c)| {
                c.hangup_at = None;
                *h
            })
            .collect();
        for call in due {
            if let Some(c) = self.calls.get(&call) {
                info!(call_id = %c.call_id, "hanging up (serve.hangup_after_secs)");
            }
            self.ua.hangup(call, 480, now);
        }
    }

    /// Sends what the UA yielded and handles its events, until both are empty.
    fn flush(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = self.ua.poll_transmit() {
                busy = true;
                self.transports.send(t);
            }
            while let Some(event) = self.ua.poll_event() {
                busy = true;
                self.on_event(event, now);
            }
            if !busy {
                return;
            }
        }
    }

    fn on_event(&mut self, event: UaEvent, now: Instant) {
        match event {
            UaEvent::IncomingCall {
                call,
                invite,
                source,
                transport,
            } => {
                let span = info_span!("call", call_id = %invite.call_id);
                let _enter = span.enter();
                info!(%source, %transport, to = %invite.uri, from = %invite.from.uri, "incoming call");
                self.answer(call, &invite.body, now);
            }
            UaEvent::Confirmed { call, .. } => {
                if let Some(c) = self.calls.get(&call) {
                    info!(call_id = %c.call_id, "call confirmed");
                }
            }
            UaEvent::Offer { call, tx, request } => {
                let answer = self.calls.get_mut(&call).and_then(|c| {
                    let offer = SessionDescription::parse(&request.body).ok()?;
                    let (sdp, media) = c.sdp.answer(&offer, &c.local).ok()?;
                    info!(call_id = %c.call_id, direction = media.direction.as_str(), "new offer answered");
                    Some(sdp.to_bytes())
                });
                self.ua.answer_offer(call, tx, answer.ok_or(488), now);
            }
            UaEvent::Ended { call, reason } => {
                if let Some(c) = self.calls.remove(&call) {
                    info!(call_id = %c.call_id, ?reason, "call ended");
                }
            }
            UaEvent::Dropped { source, reason } => {
                debug!(%source, %reason, "message dropped");
            }
            UaEvent::OfferFailed { call, status } => {
                if let Some(c) = self.calls.get(&call) {
                    warn!(call_id = %c.call_id, status, "our offer was refused");
                }
            }
            UaEvent::Info { .. }
            | UaEvent::Progress { .. }
            | UaEvent::Answered { .. }
            | UaEvent::OfferAnswered { .. } => {}
        }
    }

    fn answer(&mut self, call: CallHandle, body: &[u8], now: Instant) {
        let Some(dialog) = self.ua.dialog(call) else {
            return;
        };
        let call_id = dialog.call_id.clone();
        let ip = self.media.address.unwrap_or(dialog.local_addr.ip());
        let Some((port, sockets)) = self.ports.allocate(ip) else {
            warn!(%call_id, "no free media port in the configured range");
            self.ua.reject(call, 503, now);
            return;
        };
        let local = LocalMedia {
            address: ip,
            port,
            codecs: self.media.codecs.clone(),
            telephone_event: true,
            ptime: self.media.ptime,
            direction: Direction::SendRecv,
        };
        self.session_ids += 1;
        let mut sdp = SdpSession::new(self.session_ids);
        let answer = if body.is_empty() {
            // No offer in the INVITE: offer in the 200, the answer comes in the ACK.
            Ok(sdp.offer(&local))
        } else {
            SessionDescription::parse(body)
                .map_err(|e| e.to_string())
                .and_then(|offer| {
                    sdp.answer(&offer, &local)
                        .map(|(answer, media)| {
                            info!(
                                codec = media.codec.codec.encoding(),
                                payload_type = media.codec.payload_type,
                                remote = %media.remote,
                                local_port = port,
                                "media negotiated"
                            );
                            answer
                        })
                        .map_err(|e| e.to_string())
                })
        };
        match answer {
            Ok(answer) => {
                self.ua.answer(call, answer.to_bytes(), now);
                self.calls.insert(
                    call,
                    AnsweredCall {
                        local,
                        sdp,
                        hangup_at: self.hangup_after.map(|d| now + d),
                        _ports: sockets,
                        call_id,
                    },
                );
            }
            Err(why) => {
                warn!(%call_id, %why, "offer not acceptable");
                self.ua.reject(call, 488, now);
            }
        }
    }
}
