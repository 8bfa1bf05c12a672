//! The endpoint task: the one owner of the sans-IO user agent. It feeds it what the transports
//! receive and the timers it asks for, sends what it yields, and turns its events into calls:
//! admission control, routing (SIP rules), voice connector termination checks, SDP
//! negotiation with a port pair from the media range, then a call actor per transaction.
//! Actors ask it to answer or hang up their leg; it tells them when the leg ends.

use crate::call::actor::SrtpKeys;
use crate::call::actor::{
    self, CallContext, CallSetup, DialRequest, LegMedia, MediaUpdate, SignalSender, SipCommand,
    SipSignal,
};
use crate::routing::{
    self, admit_client_certificate, admit_destination, admit_source, RateLimiter, Refusal, Route,
};
use crate::routing_table::{RoutingTable, VoiceConnector};
use crate::sip::auth_guard::{AuthGuard, Verdict};
use sma_actions::{CallDetails, Direction as LegDirection, Participant, ParticipantTag, Status};
use sma_media::leg::PortPool;
use sma_net::audio_codec;
use sma_net::sdes;
use sma_net::transport::{Inbound, Transports};
use sma_sip::auth::{AuthFailure, DigestServer};
use sma_sip::message::{reject_too_large, Headers};
use sma_sip::sdp::{Codec, Direction, LocalMedia, NegotiatedMedia, SdpSession, SessionDescription};
use sma_sip::ua::{CallHandle, EndReason, OutgoingCall, UaEvent, UserAgent};
use sma_sip::Request;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Media settings for answering.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub address: Option<IpAddr>,
    pub port_range: (u16, u16),
    pub codecs: Vec<Codec>,
    pub ptime: u32,
    /// SRTP suites accepted, most preferred first.
    pub srtp_suites: Vec<sma_media::srtp::Suite>,
}

/// Limits on new calls (issue: admission control).
#[derive(Debug, Clone)]
pub struct Admission {
    pub max_concurrent_calls: usize,
    pub max_calls_per_second: u32,
    pub retry_after_secs: u32,
    /// Throttling of failed voice connector authentication.
    pub auth_guard: crate::sip::auth_guard::AuthGuardConfig,
}

struct ActiveCall {
    local: LocalMedia,
    sdp: SdpSession,
    /// The description we sent in the 200: our answer, or our offer for a late offer.
    answer: Vec<u8>,
    /// The INVITE had no offer: ours went in the 200, the answer comes in the ACK.
    late_offer: bool,
    /// The codec the leg uses now (kept first when answering a new offer, RFC 3264 §8.3.2).
    codec: Codec,
    signals: SignalSender,
    sip_call_id: String,
    /// When the INVITE arrived (answer latency).
    invited: Instant,
    /// We placed this call (a second leg, an API call): `answer` holds our offer.
    outbound: bool,
    /// SRTP keys in use, when the stream is encrypted.
    srtp: Option<SrtpKeys>,
    /// Our offer's SDES keys (an outbound call over TLS), until the answer picks one.
    srtp_offer: Option<Box<sdes::Offered>>,
}

impl ActiveCall {
    fn signal(&self, call: CallHandle, signal: SipSignal) {
        let _ = self.signals.send((call, signal));
    }

    /// The far end's answer to our offer (in a 183 or the 200): the media it negotiates.
    fn accept_answer(&mut self, sdp: &[u8]) -> Result<NegotiatedMedia, String> {
        let offer =
            SessionDescription::parse(&self.answer).map_err(|e| format!("our offer: {e}"))?;
        let answer =
            SessionDescription::parse(sdp).map_err(|e| format!("the answer is not SDP: {e}"))?;
        let media = self
            .sdp
            .accept_answer(&offer, &answer, &self.local)
            .map_err(|e| format!("the answer cannot be used: {e}"))?;
        if media.secure {
            let offered = self
                .srtp_offer
                .as_ref()
                .ok_or("an SRTP answer to an offer without keys")?;
            self.srtp = Some(
                sdes::accept(offered, &media.remote_crypto)
                    .map_err(|e| format!("the SRTP answer cannot be used: {e}"))?,
            );
        }
        self.codec = media.codec.codec;
        Ok(media)
    }
}

/// A meeting dial-in whose join token was read off the endpoint's loop.
pub struct DialInCheck {
    call: CallHandle,
    invite: Box<Request>,
    source: SocketAddr,
    token: String,
    connector: Arc<crate::routing_table::VoiceConnector>,
    /// Why the token lets nobody in, if it does not.
    checked: Result<(), String>,
}

pub struct Endpoint {
    ua: UserAgent,
    transports: Transports,
    media: MediaSettings,
    store: Arc<RoutingTable>,
    ctx: Arc<CallContext>,
    account_id: String,
    admission: Admission,
    limiter: RateLimiter,
    connector_limiters: HashMap<String, RateLimiter>,
    digest: DigestServer,
    guard: AuthGuard,
    calls: HashMap<CallHandle, ActiveCall>,
    commands_tx: mpsc::UnboundedSender<SipCommand>,
    commands: mpsc::UnboundedReceiver<SipCommand>,
    session_ids: u64,
    ports: Arc<PortPool>,
    /// Carrier registrations the UA keeps, by handle: the carrier's name.
    registrations: HashMap<sma_sip::ua::RegistrationHandle, String>,
}

/// Headers of the INVITE the contract passes to the handler (§2.3).
fn handler_headers(invite: &Request) -> Option<sma_actions::SipHeaders> {
    let headers: sma_actions::SipHeaders = invite
        .headers
        .iter()
        .filter(|(name, _)| sma_actions::is_allowed_sip_header(name))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    (!headers.is_empty()).then_some(headers)
}

/// A party as the contract shows it: `+<digits>` for a number, else the user part as is.
fn party(user: Option<&str>) -> String {
    match user {
        Some(u) => match routing::normalize_number(u) {
            Some(digits) => format!("+{digits}"),
            None => u.to_owned(),
        },
        None => String::new(),
    }
}

/// Whether this side sends on a negotiated stream: its direction sends and the far end is
/// not on hold with the old `c=0.0.0.0` form.
fn sends(media: &NegotiatedMedia) -> bool {
    media.direction.sends() && !media.remote.ip().is_unspecified() && media.remote.port() != 0
}

/// The packet time to send with: the one the far end asked for when the codec can be
/// framed that way, else ours.
fn send_ptime(codec: Codec, asked: u32, ours: u32) -> u32 {
    let framed = match codec {
        Codec::Opus => matches!(asked, 10 | 20 | 40 | 60),
        _ => (10..=60).contains(&asked) && asked.is_multiple_of(10),
    };
    if framed {
        asked
    } else {
        ours
    }
}

/// What the call actor applies from a negotiated stream.
fn media_update(media: &NegotiatedMedia, ours: u32, srtp: Option<&SrtpKeys>) -> MediaUpdate {
    MediaUpdate {
        srtp: if media.secure { srtp.cloned() } else { None },
        remote: media.remote,
        codec: audio_codec(media.codec.codec),
        payload_type: media.codec.payload_type,
        telephone_event: media.telephone_event,
        ptime: send_ptime(media.codec.codec, media.ptime, ours),
        rtcp_mux: media.rtcp_mux,
        send: sends(media),
    }
}

/// The `username` of a Digest credential, when it has one.
fn digest_username(authorization: &str) -> Option<String> {
    let rest = authorization.trim().strip_prefix("Digest")?;
    rest.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("username")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The status a leg's end gives the `HANGUP` event (0 normal clearing).
fn hangup_status(reason: &EndReason) -> u16 {
    match reason {
        EndReason::RemoteBye | EndReason::LocalBye => 0,
        EndReason::Cancelled => 487,
        EndReason::Rejected(status) => *status,
        EndReason::AckTimeout | EndReason::Timeout => 408,
        EndReason::SessionExpired => 408,
        EndReason::Unreachable(_) => 503,
    }
}

fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let v = uuid::Uuid::new_v4().as_u128() as u64;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

impl Endpoint {
    pub fn new(
        ua: UserAgent,
        transports: Transports,
        media: MediaSettings,
        store: Arc<RoutingTable>,
        ctx: Arc<CallContext>,
        account_id: String,
        admission: Admission,
    ) -> Endpoint {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let ports = PortPool::new(media.port_range);
        let guard = AuthGuard::new(admission.auth_guard.clone());
        Endpoint {
            ua,
            transports,
            media,
            store,
            ctx,
            account_id,
            admission,
            limiter: RateLimiter::default(),
            connector_limiters: HashMap::new(),
            digest: DigestServer::new("sma", random_bytes(), Instant::now()),
            guard,
            calls: HashMap::new(),
            commands_tx,
            commands,
            session_ids: 1,
            ports,
            registrations: HashMap::new(),
        }
    }

    /// Where call actors send their commands (for calls the API places).
    pub fn commands(&self) -> mpsc::UnboundedSender<SipCommand> {
        self.commands_tx.clone()
    }

    pub async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>) {
        loop {
            let deadline = self.ua.poll_timeout();
            let sleep = sma_net::time::sleep_until(deadline);
            tokio::select! {
                item = inbound.recv() => {
                    let Some(item) = item else { return };
                    let now = Instant::now();
                    match item {
                        Inbound::Message { bytes, source, local, transport } => {
                            // A source blocked for failed authentication, under a drop
                            // policy, gets no answer at all.
                            if !self.guard.drops(source.ip(), now) {
                                self.ua.handle_input(&bytes, source, local, transport, now);
                            }
                        }
                        Inbound::Undeliverable { destination, transport, reason } => {
                            self.ua.handle_transport_failure(destination, transport, &reason, now);
                        }
                        Inbound::TooLarge { head, size, limit, source, transport } => {
                            match reject_too_large(&head, size, limit) {
                                Some(rejection) => self.ua.reject_stateless(&rejection, source, transport),
                                None => debug!(%source, size, "oversize message dropped"),
                            }
                        }
                    }
                }
                command = self.commands.recv() => {
                    if let Some(command) = command {
                        self.on_command(command, Instant::now());
                    }
                }
                _ = sleep => self.ua.handle_timeout(Instant::now()),
            }
            self.flush(Instant::now());
        }
    }

    fn on_command(&mut self, command: SipCommand, now: Instant) {
        match command {
            SipCommand::Answer { call, bridged_at } => {
                // A call we placed is answered by the far end, never by us.
                if let Some(c) = self.calls.get(&call).filter(|c| !c.outbound) {
                    let answer = c.answer.clone();
                    let invited = c.invited;
                    if self.ua.answer(call, answer, now) {
                        // INVITE received → 200 OK handed to the transport (the benchmark
                        // reads these).
                        tracing::info!(
                            target: "sma::latency",
                            answer_us = now.saturating_duration_since(invited).as_micros() as u64,
                            "answered"
                        );
                        if let Some(at) = bridged_at {
                            // The far end of the bridge answered → the caller's 200 OK
                            // handed to the transport.
                            tracing::info!(
                                target: "sma::latency",
                                bridge_us = now.saturating_duration_since(at).as_micros() as u64,
                                "bridged"
                            );
                        }
                    } else {
                        debug!(call_id = %c.sip_call_id, "answer refused: the call is no longer ringing");
                    }
                }
            }
            SipCommand::Hangup { call, status } => self.ua.hangup(call, status, now),
            SipCommand::Provisional { call, early_media } => {
                let body = early_media
                    .then(|| self.calls.get(&call).map(|c| c.answer.clone()))
                    .flatten();
                let status = if body.is_some() { 183 } else { 180 };
                self.ua.provisional(call, status, body, now);
            }
            SipCommand::Dial(request) => self.dial(*request, now),
            SipCommand::DialInChecked(check) => self.dial_in_checked(*check, now),
            SipCommand::Register(request) => {
                let Some(local) = self
                    .transports
                    .local_address(request.transport, request.destination.is_ipv4())
                else {
                    warn!(carrier = %request.carrier, transport = %request.transport, "no listener to register from");
                    return;
                };
                info!(carrier = %request.carrier, aor = %request.aor.uri, registrar = %request.destination, "registering with the carrier");
                let handle = self.ua.register(
                    sma_sip::ua::Registration {
                        registrar: request.registrar,
                        aor: request.aor,
                        destination: request.destination,
                        transport: request.transport,
                        local,
                        expires: request.expires,
                        credentials: request.credentials,
                    },
                    now,
                );
                self.registrations.insert(handle, request.carrier);
            }
            SipCommand::Finished { call } => {
                if let Some(c) = self.calls.remove(&call) {
                    debug!(call_id = %c.sip_call_id, "call finished");
                }
                // A transaction that ended without the leg ending (limits, handler gone while
                // the BYE is in flight) still releases the dialog.
                self.ua.hangup(call, 480, now);
            }
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
            } => self.incoming(call, &invite, source, transport, now),
            UaEvent::Offer { call, tx, request } => {
                let answer = self.calls.get_mut(&call).map(|c| {
                    let offer = SessionDescription::parse(&request.body).map_err(|e| e.to_string())?;
                    // Keep the codec in use when the offer still has it.
                    let mut local = c.local.clone();
                    local.codecs.retain(|k| *k != c.codec);
                    local.codecs.insert(0, c.codec);
                    // A new SRTP offer: the same far-end key keeps ours (see sdes).
                    let keys = sdes::answer(&offer, c.srtp.as_ref(), &self.media.srtp_suites)?;
                    local.crypto = keys.as_ref().map(|k| vec![k.line.clone()]).unwrap_or_default();
                    let (sdp, media) = c.sdp.answer(&offer, &local).map_err(|e| e.to_string())?;
                    info!(call_id = %c.sip_call_id, direction = media.direction.as_str(), remote = %media.remote, secure = media.secure, "new offer answered");
                    c.codec = media.codec.codec;
                    c.srtp = keys.filter(|_| media.secure).map(|k| k.keys);
                    c.local.crypto = local.crypto;
                    c.signal(call, SipSignal::Media(media_update(&media, c.local.ptime, c.srtp.as_ref())));
                    Ok::<_, String>(sdp.to_bytes())
                });
                let answer = match answer {
                    Some(Ok(sdp)) => Ok(sdp),
                    Some(Err(why)) => {
                        // Refused: the session stays as it was.
                        info!(%why, "new offer refused with 488");
                        Err(488)
                    }
                    None => Err(481),
                };
                self.ua.answer_offer(call, tx, answer, now);
            }
            UaEvent::Confirmed { call, sdp } => self.confirmed(call, &sdp),
            UaEvent::Ended { call, reason } => {
                if let Some(c) = self.calls.get(&call) {
                    info!(call_id = %c.sip_call_id, ?reason, "call ended");
                    c.signal(
                        call,
                        SipSignal::Ended {
                            status: hangup_status(&reason),
                            unconfirmed: reason == EndReason::AckTimeout,
                            why: match reason {
                                EndReason::Unreachable(why) => Some(why),
                                _ => None,
                            },
                        },
                    );
                }
            }
            UaEvent::Dropped { source, reason } => debug!(%source, %reason, "message dropped"),
            UaEvent::OfferFailed { call, status } => {
                if let Some(c) = self.calls.get(&call) {
                    warn!(call_id = %c.sip_call_id, status, "our offer was refused");
                }
            }
            UaEvent::Trying { call } => {
                if let Some(c) = self.calls.get(&call) {
                    c.signal(call, SipSignal::Trying);
                }
            }
            UaEvent::Progress { call, response } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    // Early media in a 183: its answer is taken now (the 200 repeats it).
                    if !response.body.is_empty() {
                        if let Err(why) = c.accept_answer(&response.body) {
                            debug!(call_id = %c.sip_call_id, %why, "early media answer ignored");
                        }
                    }
                    c.signal(
                        call,
                        SipSignal::Progress {
                            status: response.status,
                        },
                    );
                }
            }
            UaEvent::Answered { call, response } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    let sdp = if response.body.is_empty() {
                        // No SDP in the 200: the answer came in an earlier 183, or never.
                        Err("the 200 OK has no SDP answer".to_owned())
                    } else {
                        c.accept_answer(&response.body)
                    };
                    match sdp.map(|m| media_update(&m, c.local.ptime, c.srtp.as_ref())) {
                        Ok(update) => {
                            info!(call_id = %c.sip_call_id, remote = %update.remote, codec = ?update.codec, "outbound call answered");
                            c.signal(call, SipSignal::Answered(update, Instant::now()));
                        }
                        Err(why) => {
                            warn!(call_id = %c.sip_call_id, %why, "outbound call answered without usable media");
                            c.signal(call, SipSignal::MediaFailed(why));
                        }
                    }
                }
            }
            UaEvent::Registered {
                registration,
                expires,
            } => {
                let carrier = self
                    .registrations
                    .get(&registration)
                    .map_or("?", String::as_str);
                info!(%carrier, expires, "registered with the carrier");
            }
            UaEvent::RegistrationFailed {
                registration,
                status,
            } => {
                let carrier = self
                    .registrations
                    .get(&registration)
                    .map_or("?", String::as_str);
                warn!(%carrier, status, "registration with the carrier failed; trying again in 30 s");
            }
            UaEvent::Info { .. } | UaEvent::OfferAnswered { .. } => {}
        }
    }

    /// The ACK arrived. For a late offer it carries the answer to the offer in our 200:
    /// media starts with it, or the call ends when there is none or it cannot be used.
    fn confirmed(&mut self, call: CallHandle, sdp: &[u8]) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.late_offer {
            return;
        }
        c.late_offer = false;
        let negotiated = if sdp.is_empty() {
            Err("the ACK carried no SDP answer to the offer in our 200 OK".to_owned())
        } else {
            SessionDescription::parse(&c.answer)
                .map_err(|e| format!("our offer: {e}"))
                .and_then(|offer| {
                    let answer = SessionDescription::parse(sdp)
                        .map_err(|e| format!("the answer in the ACK is not SDP: {e}"))?;
                    c.sdp
                        .accept_answer(&offer, &answer, &c.local)
                        .map_err(|e| format!("the answer in the ACK cannot be used: {e}"))
                })
        };
        match negotiated {
            Ok(media) => {
                info!(call_id = %c.sip_call_id, remote = %media.remote, codec = media.codec.codec.encoding(), "late offer answered in the ACK");
                c.codec = media.codec.codec;
                c.signal(
                    call,
                    SipSignal::Media(media_update(&media, c.local.ptime, None)),
                );
            }
            Err(why) => {
                warn!(call_id = %c.sip_call_id, %why, "late offer not answered");
                c.signal(call, SipSignal::MediaFailed(why));
            }
        }
    }

    fn refuse(
        &mut self,
        call: CallHandle,
        status: u16,
        why: &str,
        mut headers: Headers,
        now: Instant,
    ) {
        info!(status, %why, "call refused");
        headers.push("Warning", format!("399 sma \"{}\"", why.replace('"', "'")));
        self.ua.reject_with(call, status, headers, now);
    }

    fn busy(&mut self, call: CallHandle, why: &str, now: Instant) {
        let mut headers = Headers::new();
        headers.push("Retry-After", self.admission.retry_after_secs.to_string());
        self.refuse(call, 503, why, headers, now);
    }

    fn incoming(
        &mut self,
        call: CallHandle,
        invite: &Request,
        source: SocketAddr,
        transport: sma_sip::Transport,
        now: Instant,
    ) {
        let span = tracing::info_span!("invite", call_id = %invite.call_id);
        let _enter = span.enter();
        info!(%source, %transport, to = %invite.uri, from = %invite.from.uri, "incoming call");
        // Admission control first: beyond capacity nothing else is worth doing.
        if self.admission.max_concurrent_calls > 0
            && self.calls.len() >= self.admission.max_concurrent_calls
        {
            return self.busy(call, "the node is at its concurrent call limit", now);
        }
        let snapshot = self.store.snapshot();
        // A meeting dial-in (seed 001): a join token on a call to a voice connector's host
        // joins the meeting with no handler of the customer's; a token that lets nobody in
        // gets 403 saying why.
        let dial_in = crate::call::meeting::join_token(invite)
            .zip(routing::connector_for(&snapshot, &invite.uri));
        let (rule, connector) = match dial_in {
            Some((token, vc)) => {
                if let Err(status) = self.terminate(call, &vc, invite, source, transport, now) {
                    return status;
                }
                // The token is read from the store on a blocking thread (an API write may
                // hold the store through its fsync); the call goes on when it is back.
                let meetings = self.ctx.meetings.clone();
                let commands = self.commands_tx.clone();
                let invite = Box::new(invite.clone());
                tokio::task::spawn_blocking(move || {
                    let checked = meetings.check_token(&token);
                    let _ = commands.send(SipCommand::DialInChecked(Box::new(DialInCheck {
                        call,
                        invite,
                        source,
                        token,
                        connector: vc,
                        checked,
                    })));
                });
                return;
            }
            None => {
                let (rule, connector) = match routing::route(&snapshot, &invite.uri) {
                    Route::Rule {
                        rule,
                        voice_connector,
                    } => (rule, voice_connector),
                    Route::NotFound(why) => {
                        return self.refuse(call, 404, &why, Headers::new(), now)
                    }
                };
                if let Some(vc) = &connector {
                    if let Err(status) = self.terminate(call, vc, invite, source, transport, now) {
                        return status;
                    }
                }
                (rule, connector)
            }
        };
        self.admit(call, invite, source, rule, connector, now);
    }

    /// A dial-in's token was read: the call joins, or is refused saying why.
    fn dial_in_checked(&mut self, check: DialInCheck, now: Instant) {
        let DialInCheck {
            call,
            invite,
            source,
            token,
            connector,
            checked,
        } = check;
        let span = tracing::info_span!("invite", call_id = %invite.call_id);
        let _enter = span.enter();
        if self.ua.dialog(call).is_none() {
            return; // cancelled (or ended) while the token was read
        }
        if let Err(why) = checked {
            return self.refuse(
                call,
                403,
                &format!("meeting dial-in refused: {why}"),
                Headers::new(),
                now,
            );
        }
        info!(connector = %connector.id, "meeting dial-in");
        let rule = crate::call::meeting::dial_in_rule(&connector, token);
        self.admit(call, &invite, source, rule, Some(connector), now);
    }

    /// The INVITE passed its checks and has its rule: rate limit, SDP, SRTP, media, then
    /// the call's actor.
    fn admit(
        &mut self,
        call: CallHandle,
        invite: &Request,
        source: SocketAddr,
        rule: Arc<crate::routing_table::SipRule>,
        connector: Option<Arc<crate::routing_table::VoiceConnector>>,
        now: Instant,
    ) {
        let snapshot = self.store.snapshot();
        if !self.limiter.admit(self.admission.max_calls_per_second, now) {
            return self.busy(call, "the node is at its calls-per-second limit", now);
        }
        // SDES: the offer's best crypto line, or a refusal that says why (RFC 4568 §7.1.1).
        let require_srtp = connector.as_ref().is_some_and(|vc| vc.require_encryption);
        let late_offer = invite.body.is_empty();
        if late_offer && require_srtp {
            return self.refuse(
                call,
                488,
                "this voice connector requires SRTP: send an SDP offer with a=crypto",
                Headers::new(),
                now,
            );
        }
        let keys = match SessionDescription::parse(&invite.body) {
            Ok(offer) => match sdes::answer(&offer, None, &self.media.srtp_suites) {
                Ok(keys) => keys,
                Err(why) => {
                    return self.refuse(
                        call,
                        488,
                        &format!("SRTP offer not acceptable: {why}"),
                        Headers::new(),
                        now,
                    )
                }
            },
            // Reported by the answer below.
            Err(_) => None,
        };
        let Some(dialog) = self.ua.dialog(call) else {
            return;
        };
        let ip = self.media.address.unwrap_or(dialog.local_addr.ip());
        let sockets = match self.ports.bind(ip) {
            Ok(s) => s,
            Err(e) => {
                warn!(%e, "no free media port");
                return self.busy(call, "no free media port", now);
            }
        };
        let local = LocalMedia {
            address: ip,
            port: sockets.rtp_port(),
            codecs: self.media.codecs.clone(),
            telephone_event: true,
            ptime: self.media.ptime,
            direction: Direction::SendRecv,
            crypto: keys
                .as_ref()
                .map(|k| vec![k.line.clone()])
                .unwrap_or_default(),
            require_srtp,
        };
        self.session_ids += 1;
        let mut sdp = SdpSession::new(self.session_ids);
        let negotiated = if late_offer {
            // No offer: ours goes in the 200, the answer comes in the ACK. Until it does,
            // media is our first codec and holds its sending (there is nowhere to send).
            let offer = sdp.offer(&local);
            let codec = self.media.codecs.first().copied().unwrap_or(Codec::Pcmu);
            Ok((
                offer,
                codec,
                codec.offered_payload_type(),
                Some(101),
                SocketAddr::new(source.ip(), 0),
                false,
                false,
                self.media.ptime,
                None,
            ))
        } else {
            SessionDescription::parse(&invite.body)
                .map_err(|e| e.to_string())
                .and_then(|offer| sdp.answer(&offer, &local).map_err(|e| e.to_string()))
                .map(|(answer, m)| {
                    (
                        answer,
                        m.codec.codec,
                        m.codec.payload_type,
                        m.telephone_event,
                        m.remote,
                        m.rtcp_mux,
                        sends(&m),
                        send_ptime(m.codec.codec, m.ptime, self.media.ptime),
                        keys.filter(|_| m.secure).map(|k| k.keys),
                    )
                })
        };
        let (answer, codec, payload_type, telephone_event, remote, rtcp_mux, send, ptime, srtp) =
            match negotiated {
                Ok(n) => n,
                Err(why) => {
                    return self.refuse(
                        call,
                        488,
                        &format!("offer not acceptable: {why}"),
                        Headers::new(),
                        now,
                    )
                }
            };
        info!(codec = codec.encoding(), payload_type, %remote, local_port = local.port, rule = %rule.name, srtp = srtp.as_ref().map(|k| k.ours.suite().name()), "call accepted");
        self.ua.ring(call, now);

        let start_ms = sma_media::storage::now_ms();
        let transaction_id = uuid::Uuid::new_v4().to_string();
        let leg = Participant {
            call_id: uuid::Uuid::new_v4().to_string(),
            participant_tag: ParticipantTag::LegA,
            to: party(invite.uri.user.as_deref().or(invite.to.uri.user.as_deref())),
            from: party(invite.from.uri.user.as_deref()),
            direction: LegDirection::Inbound,
            start_time_in_milliseconds: start_ms.to_string(),
            status: Some(Status::Connected),
            sip_headers: handler_headers(invite),
        };
        let first = snapshot
            .applications
            .get(rule.targets.first().map_or("", String::as_str));
        let details = CallDetails {
            transaction_id,
            transaction_attributes: None,
            aws_account_id: self.account_id.clone(),
            aws_region: first.map(|a| a.region.clone()).unwrap_or_default(),
            sip_rule_id: Some(rule.id.clone()),
            sip_media_application_id: first.map(|a| a.id.clone()).unwrap_or_default(),
            participants: vec![leg],
        };
        let (signals_tx, signals) = mpsc::unbounded_channel();
        self.calls.insert(
            call,
            ActiveCall {
                local,
                sdp,
                answer: answer.to_bytes(),
                late_offer,
                codec,
                signals: signals_tx.clone(),
                sip_call_id: invite.call_id.clone(),
                invited: now,
                outbound: false,
                srtp: srtp.clone(),
                srtp_offer: None,
            },
        );
        actor::spawn(
            self.ctx.clone(),
            CallSetup {
                details,
                rule_id: rule.id.clone(),
                hostname_rule: rule.trigger == routing::TriggerType::RequestUriHostname,
                voice_connector: connector.as_ref().map(|v| v.id.clone()),
                chain: rule.chain.clone(),
                message_logs: rule
                    .targets
                    .iter()
                    .filter(|t| {
                        snapshot
                            .applications
                            .get(*t)
                            .is_some_and(|a| a.message_logs)
                    })
                    .cloned()
                    .collect(),
                media: LegMedia {
                    negotiated: MediaUpdate {
                        codec: audio_codec(codec),
                        payload_type,
                        telephone_event,
                        ptime,
                        remote,
                        rtcp_mux,
                        send,
                        srtp,
                    },
                    sockets,
                },
                commands: self.commands_tx.clone(),
                signals,
                signals_tx,
                sip_call_id: invite.call_id.clone(),
                call,
            },
        );
    }

    /// Places an outbound leg: a port pair for its media, our offer, the INVITE. The actor
    /// hears `Dialed` with the sockets (or why not), then the leg's progress.
    fn dial(&mut self, request: DialRequest, now: Instant) {
        let DialRequest {
            token,
            target,
            destination,
            transport,
            from,
            to,
            headers,
            credentials,
            signals,
        } = request;
        let refuse = |why: String| {
            let _ = signals.send((
                CallHandle(0),
                SipSignal::Dialed {
                    token,
                    result: Err(why),
                },
            ));
        };
        if self.admission.max_concurrent_calls > 0
            && self.calls.len() >= self.admission.max_concurrent_calls
        {
            return refuse("the node is at its concurrent call limit".into());
        }
        let Some(local_sip) = self
            .transports
            .local_address(transport, destination.is_ipv4())
        else {
            return refuse(format!("no {transport} listener to send from"));
        };
        let ip = self.media.address.unwrap_or(local_sip.ip());
        let sockets = match self.ports.bind(ip) {
            Ok(s) => s,
            Err(e) => return refuse(format!("no free media port: {e}")),
        };
        // Over TLS the signalling is private, so the media is too: SRTP (RTP/SAVP) with
        // every suite this node accepts.
        let srtp_offer = if transport == sma_sip::Transport::Tls {
            match sdes::offer(&self.media.srtp_suites) {
                Ok(offered) => Some(Box::new(offered)),
                Err(why) => return refuse(format!("SRTP keys: {why}")),
            }
        } else {
            None
        };
        let local = LocalMedia {
            address: ip,
            port: sockets.rtp_port(),
            codecs: self.media.codecs.clone(),
            telephone_event: true,
            ptime: self.media.ptime,
            direction: Direction::SendRecv,
            crypto: srtp_offer
                .as_ref()
                .map(|o| o.lines.clone())
                .unwrap_or_default(),
            require_srtp: srtp_offer.is_some(),
        };
        self.session_ids += 1;
        let mut sdp = SdpSession::new(self.session_ids);
        let offer = sdp.offer(&local).to_bytes();
        if transport == sma_sip::Transport::Tls {
            // The peer's certificate must name the host we dialed (a route's host or IP).
            let name = match &target.host {
                sma_sip::message::Host::Name(n) => sma_net::tls::server_name(n),
                sma_sip::message::Host::V4(a) => Ok(sma_net::tls::ip_name((*a).into())),
                sma_sip::message::Host::V6(a) => Ok(sma_net::tls::ip_name((*a).into())),
            };
            match name {
                Ok(name) => self.transports.expect_tls_name(destination, name),
                Err(why) => return refuse(why),
            }
        }
        let call = self.ua.invite(
            OutgoingCall {
                target: target.clone(),
                from,
                to,
                destination,
                transport,
                local: local_sip,
                body: offer.clone(),
                headers,
                credentials,
            },
            now,
        );
        let sip_call_id = self
            .ua
            .dialog(call)
            .map(|d| d.call_id.clone())
            .unwrap_or_default();
        info!(%sip_call_id, %target, %destination, %transport, "placing an outbound call");
        let codec = self.media.codecs.first().copied().unwrap_or(Codec::Pcmu);
        self.calls.insert(
            call,
            ActiveCall {
                local,
                sdp,
                answer: offer,
                late_offer: false,
                codec,
                signals: signals.clone(),
                sip_call_id,
                invited: now,
                outbound: true,
                srtp: None,
                srtp_offer,
            },
        );
        let _ = signals.send((
            call,
            SipSignal::Dialed {
                token,
                result: Ok(sockets),
            },
        ));
    }

    /// A voice connector's termination checks (source, transport, region, credentials, rate).
    /// `Err(())` when the call was refused.
    /// A voice connector's termination checks, in an order that tells an unauthenticated
    /// peer nothing about the connector: its source and transport first (refused with a
    /// plain 403), then its credentials (407, throttled after repeated failures, one answer
    /// for a wrong user and a wrong password), and only then the calling plan and the
    /// calls-per-second limit, whose refusals may say why.
    fn terminate(
        &mut self,
        call: CallHandle,
        vc: &Arc<VoiceConnector>,
        invite: &Request,
        source: SocketAddr,
        transport: sma_sip::Transport,
        now: Instant,
    ) -> Result<(), ()> {
        match admit_source(vc, source.ip(), transport) {
            Ok(()) => {}
            Err(Refusal::Forbidden(why)) => {
                info!(connector = %vc.id, region = %vc.region, %source, %why, "termination refused");
                self.refuse(call, 403, "forbidden", Headers::new(), now);
                return Err(());
            }
            Err(Refusal::EncryptionRequired) => {
                info!(connector = %vc.id, %source, "termination refused: TLS required");
                self.refuse(call, 403, "TLS is required", Headers::new(), now);
                return Err(());
            }
        }
        if vc.client_trust.is_some() {
            let chain = (transport == sma_sip::Transport::Tls)
                .then(|| self.transports.peer_certificates(source))
                .flatten();
            if let Err(why) = admit_client_certificate(vc, chain.as_deref()) {
                info!(connector = %vc.id, %source, %why, "termination refused: client certificate");
                self.refuse(
                    call,
                    403,
                    "Client certificate not accepted",
                    Headers::new(),
                    now,
                );
                return Err(());
            }
        }
        // The PBX reached us from an allowed source: what termination health reports.
        self.store.termination_seen(&vc.id, source.to_string());
        if !vc.credentials.is_empty() {
            let authorization = invite.headers.get("Proxy-Authorization");
            let user = authorization.and_then(digest_username);
            let key = user.as_deref().map(|u| (vc.id.as_str(), u));
            match self.guard.check(source.ip(), key, now) {
                Verdict::Allow => {}
                verdict => {
                    // A refused attempt still spends a call of the connector's rate.
                    self.connector_limiters
                        .entry(vc.id.clone())
                        .or_default()
                        .admit(vc.cps_limit, now);
                    warn!(connector = %vc.id, %source, user = user.as_deref().unwrap_or(""), ?verdict, stats = ?self.guard.stats, "authentication throttled");
                    self.refuse(call, 403, "forbidden", Headers::new(), now);
                    return Err(());
                }
            }
            let mut digest = self.digest.clone();
            digest.realm = vc.host.clone();
            let verdict = digest.verify(
                authorization,
                "INVITE",
                |user| {
                    vc.credentials
                        .iter()
                        .find(|(u, _)| u == user)
                        .map(|(_, p)| p.clone())
                },
                now,
            );
            match verdict {
                Ok(user) => {
                    debug!(%user, "termination credentials accepted");
                    self.guard.succeeded(source.ip(), (&vc.id, &user));
                }
                Err(AuthFailure::Missing) | Err(AuthFailure::Stale) => {
                    let stale = matches!(verdict, Err(AuthFailure::Stale));
                    let mut headers = Headers::new();
                    for challenge in digest.challenges_with(now, stale, &vc.digest_algorithms) {
                        headers.push("Proxy-Authenticate", challenge);
                    }
                    self.refuse(call, 407, "credentials required", headers, now);
                    return Err(());
                }
                Err(e) => {
                    let failures = self.guard.failed(source.ip(), key, now);
                    self.connector_limiters
                        .entry(vc.id.clone())
                        .or_default()
                        .admit(vc.cps_limit, now);
                    // The detail (unknown user or wrong password) stays in the log: the
                    // peer gets one answer for both, so it cannot enumerate user names.
                    warn!(connector = %vc.id, %source, user = user.as_deref().unwrap_or(""), error = %e, failures, stats = ?self.guard.stats, "authentication failed");
                    self.refuse(call, 403, "credentials refused", Headers::new(), now);
                    return Err(());
                }
            }
        }
        if let Err(refusal) = admit_destination(vc, &invite.uri) {
            let why = match refusal {
                Refusal::Forbidden(why) => why,
                Refusal::EncryptionRequired => "TLS is required".into(),
            };
            self.refuse(call, 403, &why, Headers::new(), now);
            return Err(());
        }
        let limiter = self.connector_limiters.entry(vc.id.clone()).or_default();
        if !limiter.admit(vc.cps_limit, now) {
            let why = format!(
                "voice connector {} is at its calls-per-second limit",
                vc.name
            );
            self.busy(call, &why, now);
            return Err(());
        }
        Ok(())
    }
}
