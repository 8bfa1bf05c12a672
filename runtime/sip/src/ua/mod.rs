//! The user agent core: UAS and UAC behaviour above the transaction layer (RFC 3261 §8,
//! §12–§15), CANCEL, OPTIONS, re-INVITE and UPDATE, and session timers (RFC 4028).
//!
//! The application sees calls, not transactions: [`UaEvent::IncomingCall`] for a new INVITE,
//! then it rings, answers, rejects or hangs up through methods on [`UserAgent`]; a UAC call
//! starts with [`UserAgent::invite`]. Everything the RFC requires without asking the
//! application — 100 Trying, 2xx retransmission until the ACK, 487 after a CANCEL, answers to
//! OPTIONS, 420/405/501/481/483 — happens here.

mod dialog;
mod register;

pub use dialog::{contact, local_via, secure_contact, Dialog, DialogState, Role};
pub use register::{Registration, RegistrationHandle};

use crate::auth::Credentials;
use crate::message::{
    parse_message, Headers, Method, NameAddr, ParseLimits, Rejection, Request, Response, Transport,
    Uri,
};
use crate::rng::IdGenerator;
use crate::transaction::{
    response_destination, to_with_tag, TimerConfig, TransactionEvent, TransactionId,
    TransactionLayer, Transmit,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Methods this UA implements (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO";
/// Extensions this UA supports (RFC 4028 session timers).
pub const SUPPORTED: &str = "timer";
/// Bodies this UA accepts.
pub const ACCEPT: &str = "application/sdp";

/// Adds a `Server` or `User-Agent` header naming this UA, unless the operator blanked it.
pub(crate) fn push_product(headers: &mut Headers, name: &str, product: &str) {
    if !product.trim().is_empty() {
        headers.push(name, product);
    }
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    /// `Server` and `User-Agent` value; empty sends neither header.
    pub user_agent: String,
    pub timers: TimerConfig,
    /// Session interval this UA asks for and grants (RFC 4028); `None` turns session timers off.
    pub session_expires: Option<u32>,
    /// The smallest session interval accepted (422 below it).
    pub min_se: u32,
    pub limits: ParseLimits,
    /// Seed for tags, branches and Call-IDs (from the OS in production, fixed in tests).
    pub seed: u64,
}

impl Default for UaConfig {
    fn default() -> UaConfig {
        UaConfig {
            user_agent: concat!("sma/", env!("CARGO_PKG_VERSION")).into(),
            timers: TimerConfig::default(),
            session_expires: Some(1800),
            min_se: 90,
            limits: ParseLimits::default(),
            seed: 0x5eed,
        }
    }
}

/// A call this UA is part of (one INVITE dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// This side sent BYE (or CANCEL) and it completed.
    LocalBye,
    /// The caller cancelled before the answer.
    Cancelled,
    /// The call was rejected with this status (by this side as UAS, by the peer as UAC).
    Rejected(u16),
    /// The answer was never acknowledged (64*T1 without ACK).
    AckTimeout,
    /// No session refresh arrived in time (RFC 4028 §10).
    SessionExpired,
    /// The INVITE or BYE got no response.
    Timeout,
    /// The INVITE could not be delivered: the transport says why (connection refused, TLS
    /// handshake failed: ...).
    Unreachable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UaEvent {
    /// A new INVITE. Answer with [`UserAgent::answer`], [`UserAgent::ring`],
    /// [`UserAgent::reject`].
    IncomingCall {
        call: CallHandle,
        invite: Request,
        source: SocketAddr,
        transport: Transport,
    },
    /// Our INVITE reached the far end: its 100 Trying (reported once per call).
    Trying {
        call: CallHandle,
    },
    /// A provisional response to our INVITE.
    Progress {
        call: CallHandle,
        response: Response,
    },
    /// Our INVITE was answered (the ACK has been sent).
    Answered {
        call: CallHandle,
        response: Response,
    },
    /// The ACK for our answer arrived: media flows both ways. `sdp` is the ACK's body: the
    /// answer when the INVITE had no offer and ours went in the 200.
    Confirmed {
        call: CallHandle,
        sdp: Vec<u8>,
    },
    /// A re-INVITE or UPDATE with a new offer. Reply with [`UserAgent::answer_offer`].
    Offer {
        call: CallHandle,
        tx: TransactionId,
        request: Request,
    },
    /// The peer answered our re-INVITE or UPDATE (the ACK has been sent for a re-INVITE).
    OfferAnswered {
        call: CallHandle,
        response: Response,
    },
    /// Our re-INVITE, UPDATE or session refresh failed with this status (408: no answer);
    /// for 408 and 481 the call is being ended.
    OfferFailed {
        call: CallHandle,
        status: u16,
    },
    /// A mid-dialog INFO (already answered 200), e.g. SIP INFO DTMF.
    Info {
        call: CallHandle,
        request: Request,
    },
    Ended {
        call: CallHandle,
        reason: EndReason,
    },
    /// A registration succeeded; the registrar granted `expires` seconds (it is refreshed at
    /// half of that).
    Registered {
        registration: RegistrationHandle,
        expires: u32,
    },
    /// A registration attempt failed with `status` (408: no response); it is tried again.
    RegistrationFailed {
        registration: RegistrationHandle,
        status: u16,
    },
    /// A message was dropped: unparseable, a malformed response, or unroutable.
    Dropped {
        source: SocketAddr,
        reason: String,
    },
}

/// Counters an operator looks at when peers misbehave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub dropped: u64,
    pub rejected_malformed: u64,
    pub retransmissions_absorbed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// UAS: INVITE received, no final response yet. UAC: INVITE sent.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// BYE or CANCEL sent.
    Terminating,
}

/// The 2xx a UAS retransmits until the ACK (RFC 3261 §13.3.1.4).
struct Pending2xx {
    transmit: Transmit,
    interval: Duration,
    give_up: Instant,
    cseq: u32,
}

struct SessionTimer {
    interval: u32,
    we_refresh: bool,
}

impl SessionTimer {
    /// The UAS's 2xx headers for the negotiated session timer (RFC 4028 §9).
    fn announce(&self, headers: &mut Headers) {
        let refresher = if self.we_refresh { "uas" } else { "uac" };
        headers.push(
            "Session-Expires",
            format!("{};refresher={refresher}", self.interval),
        );
        headers.push("Require", "timer");
    }
}

struct Call {
    dialog: Dialog,
    state: CallState,
    /// UAS: the INVITE server transaction; UAC: the INVITE client transaction.
    invite_tx: Option<TransactionId>,
    invite: Request,
    pending_2xx: Option<Pending2xx>,
    session_timer: Option<SessionTimer>,
    /// UAC: credentials for a challenge, used once.
    credentials: Option<Credentials>,
    auth_attempted: bool,
    /// A re-INVITE or UPDATE this UA is answering (491 to a second one).
    pending_offer: Option<TransactionId>,
    /// UAC: ACK bytes for retransmitted 2xx.
    ack: Option<Transmit>,
    /// UAS: the application hung up before the ACK arrived.
    bye_after_ack: bool,
    /// `Ended` was reported already: a BYE overtook the 200 OK of our INVITE, and the call
    /// is kept only to acknowledge and end the dialog that 200 would open.
    end_reported: bool,
    /// UAC: a 100 Trying was reported.
    tried: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum CallTimer {
    Retransmit2xx,
    SessionRefresh,
    SessionExpiry,
    /// A registration's refresh (or retry); the handle is the registration's id.
    Register,
}

/// Why this UA sent an in-dialog request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Bye,
    Cancel,
    /// A session refresh (RFC 4028): UPDATE without a body.
    Refresh,
    /// A new offer from the application: re-INVITE or UPDATE.
    Reoffer {
        invite: bool,
    },
}

/// What the UAC needs to place a call.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    pub target: Uri,
    pub from: NameAddr,
    pub to: NameAddr,
    pub destination: SocketAddr,
    pub transport: Transport,
    pub local: SocketAddr,
    /// The SDP offer.
    pub body: Vec<u8>,
    pub headers: Headers,
    pub credentials: Option<Credentials>,
}

pub struct UserAgent {
    config: UaConfig,
    transactions: TransactionLayer,
    ids: IdGenerator,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, local tag) → call.
    by_dialog: HashMap<(String, String), CallHandle>,
    by_tx: HashMap<TransactionId, CallHandle>,
    /// Client transactions for in-dialog requests this UA sent.
    in_dialog_tx: HashMap<TransactionId, (CallHandle, Purpose)>,
    timers: BinaryHeap<Reverse<(Instant, CallHandle, CallTimer)>>,
    armed: HashMap<(CallHandle, CallTimer), Instant>,
    next_call: u64,
    events: VecDeque<UaEvent>,
    /// Registrations this UA keeps, and the REGISTER transactions in flight.
    registrations: HashMap<u64, register::RegistrationState>,
    registering: HashMap<TransactionId, u64>,
    pub counters: Counters,
}

impl UserAgent {
    pub fn new(config: UaConfig) -> UserAgent {
        UserAgent {
            transactions: TransactionLayer::new(config.timers),
            ids: IdGenerator::new(config.seed),
            config,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            by_tx: HashMap::new(),
            in_dialog_tx: HashMap::new(),
            timers: BinaryHeap::new(),
            armed: HashMap::new(),
            next_call: 1,
            events: VecDeque::new(),
            registrations: HashMap::new(),
            registering: HashMap::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions (for tests and metrics).
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    pub fn dialog(&self, call: CallHandle) -> Option<&Dialog> {
        self.calls.get(&call).map(|c| &c.dialog)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let tx = self.transactions.poll_timeout();
        while let Some(Reverse((at, call, timer))) = self.timers.peek().copied() {
            if self.armed.get(&(call, timer)) == Some(&at) {
                return Some(tx.map_or(at, |t| t.min(at)));
            }
            self.timers.pop();
        }
        tx
    }

    /// Bytes that arrived from `source` on `local` (our listening address for that transport:
    /// it becomes the Contact of dialogs created by this message).
    pub fn handle_input(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return; // keep-alive
        }
        match parse_message(bytes, &self.config.limits) {
            Ok(message) => {
                self.transactions
                    .handle_message(message, source, transport, now);
                self.process(local, now);
            }
            Err(err) => match err.reply {
                Some(rejection) => self.reject_stateless(&rejection, source, transport),
                None => {
                    self.counters.dropped += 1;
                    self.events.push_back(UaEvent::Dropped {
                        source,
                        reason: err.kind.to_string(),
                    });
                }
            },
        }
    }

    /// Sends a stateless error response to a request that could not be taken in (a parse
    /// failure, or a stream message over the size limit: see
    /// [`reject_too_large`](crate::message::reject_too_large)).
    pub fn reject_stateless(
        &mut self,
        rejection: &Rejection,
        source: SocketAddr,
        transport: Transport,
    ) {
        self.counters.rejected_malformed += 1;
        let destination = match &rejection.top_via {
            Some(via) if !transport.is_reliable() && !via.params.contains("rport") => {
                SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
            }
            _ => source,
        };
        self.transactions.send_stateless(Transmit {
            destination,
            transport,
            bytes: rejection.to_bytes(),
        });
    }

    /// The transport could not reach `destination` (connection refused or timed out, TLS
    /// handshake failed): the requests waiting there fail now with `reason` (RFC 3261
    /// §8.1.3.1) rather than when their timers run out.
    pub fn handle_transport_failure(
        &mut self,
        destination: SocketAddr,
        transport: Transport,
        reason: &str,
        now: Instant,
    ) {
        if self
            .transactions
            .transport_failed(destination, transport, reason)
            > 0
        {
            self.process_local(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.process_local(now);
        while let Some(Reverse((at, call, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(&(call, timer)) != Some(&at) {
                continue;
            }
            self.armed.remove(&(call, timer));
            self.fire(call, timer, now);
        }
    }

    fn arm(&mut self, call: CallHandle, timer: CallTimer, at: Instant) {
        self.armed.insert((call, timer), at);
        self.timers.push(Reverse((at, call, timer)));
    }

    fn disarm(&mut self, call: CallHandle, timer: CallTimer) {
        self.armed.remove(&(call, timer));
    }

    /// Transaction events that need no local address (timeouts, responses).
    fn process_local(&mut self, now: Instant) {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        self.process(unspecified, now);
    }

    fn process(&mut self, local: SocketAddr, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            match event {
                TransactionEvent::Request {
                    id,
                    request,
                    source,
                    transport,
                } => self.on_request(id, request, source, transport, local, now),
                TransactionEvent::Response { id, response } => self.on_response(id, response, now),
                TransactionEvent::StrayResponse { response, source } => {
                    self.on_stray_response(response, source)
                }
                TransactionEvent::Timeout { id } => self.on_timeout(id, now),
                TransactionEvent::TransportError { id, reason } => {
                    self.on_transport_error(id, reason, now)
                }
                TransactionEvent::AckTimeout { id } => {
                    // A non-2xx final response was never acknowledged: the call is over anyway.
                    let _ = id;
                }
                TransactionEvent::Terminated { id } => {
                    self.in_dialog_tx.remove(&id);
                    if let Some(call) = self.by_tx.remove(&id) {
                        if let Some(c) = self.calls.get_mut(&call) {
                            if c.invite_tx == Some(id) {
                                c.invite_tx = None;
                            }
                        }
                    }
                }
            }
        }
    }

    fn respond(&mut self, id: TransactionId, response: Response, now: Instant) {
        self.transactions.send_response(id, &response, now);
    }

    fn simple_response(&mut self, id: TransactionId, request: &Request, status: u16, now: Instant) {
        let mut r = request.response(status);
        if request.to.tag().is_none() {
            let tag = self.ids.token();
            r.to = to_with_tag(&r.to, &tag);
        }
        push_product(&mut r.headers, "Server", &self.config.user_agent);
        if matches!(status, 405 | 200) && request.method == Method::Options || status == 405 {
            r.headers.push("Allow", ALLOW);
        }
        self.respond(id, r, now);
    }

    fn on_request(
        &mut self,
        id: Option<TransactionId>,
        request: Request,
        source: SocketAddr,
        transport: Transport,
        local: SocketAddr,
        now: Instant,
    ) {
        let Some(id) = id else {
            if request.method == Method::Ack {
                self.on_ack(&request, now);
            }
            return;
        };
        // RFC 3261 §8.2.2-§8.2.3 checks, in order.
        if request.max_forwards == 0 && request.method != Method::Options {
            return self.simple_response(id, &request, 483, now);
        }
        match request.method {
            Method::Other(_) => return self.simple_response(id, &request, 501, now),
            Method::Register
            | Method::Prack
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Message
            | Method::Publish => return self.simple_response(id, &request, 405, now),
            _ => {}
        }
        if request.method != Method::Cancel {
            let unsupported: Vec<&str> = request
                .headers
                .tokens("Require")
                .filter(|ext| !ext.eq_ignore_ascii_case("timer"))
                .collect();
            if !unsupported.is_empty() {
                let mut r = request.response(420);
                r.headers.push("Unsupported", unsupported.join(", "));
                if request.to.tag().is_none() {
                    r.to = to_with_tag(&r.to, &self.ids.token());
                }
                return self.respond(id, r, now);
            }
        }
        if matches!(request.method, Method::Invite | Method::Update) {
            if let Err(r) = self.check_body_types(&request) {
                return self.respond(id, *r, now);
            }
        }
        if request.to.tag().is_some() {
            return self.on_in_dialog(id, request, source, now);
        }
        match request.method {
            Method::Invite => self.on_invite(id, request, source, transport, local, now),
            Method::Options => {
                let mut r = request.response(200);
                r.to = to_with_tag(&r.to, &self.ids.token());
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Supported", SUPPORTED);
                push_product(&mut r.headers, "Server", &self.config.user_agent);
                self.respond(id, r, now);
            }
            Method::Cancel => self.on_cancel(id, request, now),
            _ => self.simple_response(id, &request, 481, now),
        }
    }

    /// The session descriptions this UA can read and write are SDP (RFC 3261 §21.4.7):
    /// an offer of another body type gets 415 with `Accept`, a request whose `Accept`
    /// excludes SDP gets 406 (our answer would be SDP). Checked before anything else of
    /// the call is decided.
    fn check_body_types(&mut self, request: &Request) -> Result<(), Box<Response>> {
        let mut reject = |status: u16| {
            let mut r = request.response(status);
            if request.to.tag().is_none() {
                r.to = to_with_tag(&r.to, &self.ids.token());
            }
            r.headers.push("Accept", ACCEPT);
            Box::new(r)
        };
        if !request.body.is_empty() {
            let content_type = request.headers.get("Content-Type").unwrap_or_default();
            let media_type = content_type.split(';').next().unwrap_or_default().trim();
            if !media_type.eq_ignore_ascii_case("application/sdp") {
                return Err(reject(415));
            }
            let encoding = request
                .headers
                .get("Content-Encoding")
                .unwrap_or("identity");
            if !encoding.trim().eq_ignore_ascii_case("identity") {
                let mut r = reject(415);
                r.headers.push("Accept-Encoding", "identity");
                return Err(r);
            }
        }
        let mut accepts = request.headers.tokens("Accept").peekable();
        if accepts.peek().is_some() {
            let sdp = accepts.any(|range| {
                let range = range.split(';').next().unwrap_or_default().trim();
                ["application/sdp", "application/*", "*/*"]
                    .iter()
                    .any(|ok| range.eq_ignore_ascii_case(ok))
            });
            if !sdp {
                return Err(reject(406));
            }
        }
        Ok(())
    }

    fn on_invite(
        &mut self,
        id: TransactionId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
        local: SocketAddr,
        now: Instant,
    ) {
        // RFC 4028: a session interval below our minimum gets 422 with Min-SE.
        let session_timer = match self.negotiate_session_timer(&request) {
            Ok(t) => t,
            Err(()) => {
                let mut r = request.response(422);
                r.to = to_with_tag(&r.to, &self.ids.token());
                r.headers.push("Min-SE", self.config.min_se.to_string());
                return self.respond(id, r, now);
            }
        };
        let call = CallHandle(self.next_call);
        self.next_call += 1;
        let local_tag = self.ids.token();
        let remote_target = request
            .contact
            .first()
            .map(|c| c.uri.clone())
            .unwrap_or_else(|| request.from.uri.clone());
        let dialog = Dialog {
            role: Role::Uas,
            state: DialogState::Early,
            call_id: request.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: request.from.tag().map(str::to_owned),
            local: request.to.clone().with_tag(&local_tag),
            remote: request.from.clone(),
            local_seq: self.ids.next_u64() as u32 & 0x7fff,
            remote_seq: Some(request.cseq.seq),
            remote_target,
            route_set: request.record_route.clone(),
            peer: response_destination(&request, source, transport),
            transport,
            local_addr: local,
            secure: request.uri.scheme == crate::message::Scheme::Sips,
        };
        self.by_dialog
            .insert((request.call_id.clone(), local_tag), call);
        self.by_tx.insert(id, call);
        self.calls.insert(
            call,
            Call {
                dialog,
                state: CallState::Early,
                invite_tx: Some(id),
                invite: request.clone(),
                pending_2xx: None,
                session_timer,
                credentials: None,
                auth_attempted: false,
                pending_offer: None,
                ack: None,
                bye_after_ack: false,
                end_reported: false,
                tried: false,
            },
        );
        self.events.push_back(UaEvent::IncomingCall {
            call,
            invite: request,
            source,
            transport,
        });
    }

    fn negotiate_session_timer(&self, request: &Request) -> Result<Option<SessionTimer>, ()> {
        let Some(ours) = self.config.session_expires else {
            return Ok(None);
        };
        let supported = request
            .headers
            .tokens("Supported")
            .chain(request.headers.tokens("Require"))
            .any(|t| t.eq_ignore_ascii_case("timer"));
        match request.headers.get("Session-Expires") {
            Some(value) => {
                let mut parts = value.split(';');
                let interval: u32 = parts.next().and_then(|v| v.trim().parse().ok()).ok_or(())?;
                if interval < self.config.min_se {
                    return Err(());
                }
                let refresher = parts
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("refresher"))
                    .map(|(_, v)| v.trim().to_ascii_lowercase());
                // We leave refreshing to a UAC that supports it; otherwise we refresh.
                let we_refresh = match refresher.as_deref() {
                    Some("uas") => true,
                    Some("uac") => false,
                    _ => !supported,
                };
                Ok(Some(SessionTimer {
                    interval,
                    we_refresh,
                }))
            }
            None if supported => Ok(Some(SessionTimer {
                interval: ours,
                we_refresh: false,
            })),
            None => Ok(None),
        }
    }

    fn on_cancel(&mut self, id: TransactionId, cancel: Request, now: Instant) {
        let Some(invite_tx) = self.transactions.find_invite_for_cancel(&cancel) else {
            return self.simple_response(id, &cancel, 481, now);
        };
        // 200 to the CANCEL (with the To tag the INVITE's responses carry).
        let call = self.by_tx.get(&invite_tx).copied();
        let tag = call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.dialog.local_tag.clone())
            .unwrap_or_else(|| self.ids.token());
        let mut ok = cancel.response(200);
        ok.to = to_with_tag(&ok.to, &tag);
        self.respond(id, ok, now);
        // 487 to the INVITE if it has no final response yet.
        let Some(call) = call else { return };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Early {
            return; // the 200 OK won the race: the caller will ACK and then BYE.
        }
        let mut terminated = c.invite.response(487);
        terminated.to = to_with_tag(&terminated.to, &tag);
        self.respond(invite_tx, terminated, now);
        self.end(call, EndReason::Cancelled);
    }

    fn on_ack(&mut self, ack: &Request, now: Instant) {
        let Some(tag) = ack.to.tag() else { return };
        let Some(&call) = self.by_dialog.get(&(ack.call_id.clone(), tag.to_owned())) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let acked = c
            .pending_2xx
            .as_ref()
            .is_some_and(|p| p.cseq == ack.cseq.seq);
        if !acked {
            return; // a retransmitted ACK, or one for a 2xx we no longer track
        }
        c.pending_2xx = None;
        let initial = c.state == CallState::Answered;
        let bye_now = c.bye_after_ack;
        if initial {
            c.state = CallState::Confirmed;
            c.dialog.state = DialogState::Confirmed;
        }
        self.disarm(call, CallTimer::Retransmit2xx);
        if initial {
            self.start_session_timer(call, now);
            self.events.push_back(UaEvent::Confirmed {
                call,
                sdp: ack.body.clone(),
            });
        }
        if bye_now {
            self.send_bye(call, now);
        }
    }

    fn on_in_dialog(
        &mut self,
        id: TransactionId,
        request: Request,
        source: SocketAddr,
        now: Instant,
    ) {
        let key = (
            request.call_id.clone(),
            request.to.tag().unwrap_or_default().to_owned(),
        );
        let Some(&call) = self.by_dialog.get(&key) else {
            return self.simple_response(id, &request, 481, now);
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return self.simple_response(id, &request, 481, now);
        };
        // §12.2.2: a CSeq lower than the last one is out of order.
        if let Some(last) = c.dialog.remote_seq {
            if request.cseq.seq < last && request.method != Method::Cancel {
                return self.simple_response(id, &request, 500, now);
            }
        }
        c.dialog.remote_seq = Some(request.cseq.seq);
        c.dialog.peer = match c.dialog.transport.is_reliable() {
            true => source,
            false => c.dialog.peer,
        };
        match request.method {
            Method::Bye => {
                let ok = request.response(200);
                self.respond(id, ok, now);
                let overtook_the_2xx = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.dialog.role == Role::Uac && c.state == CallState::Early);
                if overtook_the_2xx {
                    // On UDP the far end's BYE can arrive before its 200 OK (RFC 3261
                    // §15.1.1 forbids it only before the ACK it sent). The call is over for
                    // the application now; the 200 still to come is acknowledged and ended.
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.state = CallState::Terminating;
                        c.end_reported = true;
                    }
                    self.events.push_back(UaEvent::Ended {
                        call,
                        reason: EndReason::RemoteBye,
                    });
                } else {
                    self.end(call, EndReason::RemoteBye);
                }
            }
            Method::Invite | Method::Update => {
                if c.pending_offer.is_some()
                    || (request.method == Method::Invite && c.pending_2xx.is_some())
                {
                    // §14.2: an offer while one is outstanding.
                    let mut r = request.response(491);
                    r.headers.push("Retry-After", "1");
                    return self.respond(id, r, now);
                }
                // A refresh restarts the session timer (RFC 4028 §10).
                if c.session_timer.is_some() {
                    self.start_session_timer(call, now);
                }
                if request.body.is_empty() {
                    // A refresh without an offer: answer with the session as it is.
                    return self.answer_in_dialog(call, id, &request, None, now);
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.pending_offer = Some(id);
                }
                self.by_tx.insert(id, call);
                self.events.push_back(UaEvent::Offer {
                    call,
                    tx: id,
                    request,
                });
            }
            Method::Info => {
                let ok = request.response(200);
                self.respond(id, ok, now);
                self.events.push_back(UaEvent::Info { call, request });
            }
            Method::Options => {
                let mut r = request.response(200);
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Supported", SUPPORTED);
                self.respond(id, r, now);
            }
            _ => self.simple_response(id, &request, 405, now),
        }
    }

    /// Answers a re-INVITE or UPDATE offer with an SDP answer, or rejects it (488, 491…).
    pub fn answer_offer(
        &mut self,
        call: CallHandle,
        tx: TransactionId,
        answer: Result<Vec<u8>, u16>,
        now: Instant,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.pending_offer == Some(tx) {
            c.pending_offer = None;
        }
        let Some(request) = self.transactions.request(tx).cloned() else {
            return;
        };
        match answer {
            Ok(body) => self.answer_in_dialog(call, tx, &request, Some(body), now),
            Err(status) => {
                let r = request.response(status);
                self.respond(tx, r, now);
            }
        }
    }

    fn answer_in_dialog(
        &mut self,
        call: CallHandle,
        tx: TransactionId,
        request: &Request,
        body: Option<Vec<u8>>,
        now: Instant,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let mut r = request.response(200);
        r.contact = vec![c.dialog.contact()];
        r.headers.push("Allow", ALLOW);
        r.headers.push("Supported", SUPPORTED);
        if let Some(timer) = &c.session_timer {
            timer.announce(&mut r.headers);
        }
        if let Some(body) = body {
            r.headers.push("Content-Type", "application/sdp");
            r.body = body;
        }
        if request.method == Method::Invite {
            self.send_2xx(call, tx, r, now);
        } else {
            self.respond(tx, r, now);
        }
    }

    /// Sends a 2xx to an INVITE and retransmits it until the ACK (§13.3.1.4).
    fn send_2xx(&mut self, call: CallHandle, tx: TransactionId, response: Response, now: Instant) {
        let t1 = self.config.timers.t1;
        let Some(destination) = self.calls.get(&call).map(|c| c.dialog.peer) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let transport = c.dialog.transport;
        let cseq = response.cseq.seq;
        let transmit = Transmit {
            destination,
            transport,
            bytes: response.to_bytes(),
        };
        c.pending_2xx = Some(Pending2xx {
            transmit,
            interval: t1,
            give_up: now + 64 * t1,
            cseq,
        });
        self.transactions.send_response(tx, &response, now);
        // Over a reliable transport the 2xx is not retransmitted, but the ACK is still awaited.
        let next = if transport.is_reliable() {
            now + 64 * t1
        } else {
            now + t1
        };
        self.arm(call, CallTimer::Retransmit2xx, next);
    }

    /// Sends 180 Ringing on an incoming call.
    pub fn ring(&mut self, call: CallHandle, now: Instant) {
        self.provisional(call, 180, None, now);
    }

    /// Sends a provisional response (180, or 183 with early media SDP).
    pub fn provisional(
        &mut self,
        call: CallHandle,
        status: u16,
        body: Option<Vec<u8>>,
        now: Instant,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let (Some(tx), CallState::Early, Role::Uas) = (c.invite_tx, c.state, c.dialog.role) else {
            return;
        };
        let mut r = c.invite.response(status);
        r.to = c.dialog.local.clone();
        r.contact = vec![c.dialog.contact()];
        if let Some(body) = body {
            r.headers.push("Content-Type", "application/sdp");
            r.body = body;
        }
        self.respond(tx, r, now);
    }

    /// Answers an incoming call with 200 OK and an SDP answer.
    pub fn answer(&mut self, call: CallHandle, sdp: Vec<u8>, now: Instant) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let (Some(tx), CallState::Early, Role::Uas) = (c.invite_tx, c.state, c.dialog.role) else {
            return false;
        };
        c.state = CallState::Answered;
        let invite = c.invite.clone();
        let mut r = invite.response(200);
        r.to = c.dialog.local.clone();
        r.record_route = invite.record_route.clone();
        r.contact = vec![c.dialog.contact()];
        r.headers.push("Allow", ALLOW);
        r.headers.push("Supported", SUPPORTED);
        push_product(&mut r.headers, "Server", &self.config.user_agent);
        if let Some(timer) = &c.session_timer {
            timer.announce(&mut r.headers);
        }
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp;
        self.send_2xx(call, tx, r, now);
        true
    }

    /// Rejects an incoming call that has no final response yet.
    pub fn reject(&mut self, call: CallHandle, status: u16, now: Instant) {
        self.reject_with(call, status, Headers::new(), now);
    }

    /// Rejects an incoming call with extra headers: `Retry-After` on a 503, challenges on a
    /// 401/407, `Warning` text saying why.
    pub fn reject_with(&mut self, call: CallHandle, status: u16, extra: Headers, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let (Some(tx), CallState::Early, Role::Uas) = (c.invite_tx, c.state, c.dialog.role) else {
            return;
        };
        let mut r = c.invite.response(status);
        r.to = c.dialog.local.clone();
        push_product(&mut r.headers, "Server", &self.config.user_agent);
        for (name, value) in extra.iter() {
            r.headers.push(name, value);
        }
        self.respond(tx, r, now);
        self.end(call, EndReason::Rejected(status));
    }

    /// Ends a call from this side: BYE once answered, CANCEL for our unanswered INVITE, or
    /// `status_if_unanswered` for an incoming call not yet answered.
    pub fn hangup(&mut self, call: CallHandle, status_if_unanswered: u16, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        match (c.dialog.role, c.state) {
            (_, CallState::Terminating) => {}
            (Role::Uas, CallState::Early) => self.reject(call, status_if_unanswered, now),
            // RFC 3261 §15.1.1: no BYE before the ACK for our 2xx (or its timeout).
            (Role::Uas, CallState::Answered) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.bye_after_ack = true;
                }
            }
            (Role::Uac, CallState::Early) => self.cancel(call, now),
            _ => self.send_bye(call, now),
        }
    }

    fn send_bye(&mut self, call: CallHandle, now: Instant) {
        let branch = self.ids.branch();
        let ua = self.config.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.state = CallState::Terminating;
        c.pending_2xx = None;
        let bye = c.dialog.request(Method::Bye, &branch, &ua);
        let destination = c.dialog.next_hop();
        let transport = c.dialog.transport;
        self.disarm(call, CallTimer::Retransmit2xx);
        self.disarm(call, CallTimer::SessionExpiry);
        self.disarm(call, CallTimer::SessionRefresh);
        let tx = self
            .transactions
            .send_request(bye, destination, transport, now);
        self.in_dialog_tx.insert(tx, (call, Purpose::Bye));
    }

    fn cancel(&mut self, call: CallHandle, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.state = CallState::Terminating;
        let invite = &c.invite;
        // §9.1: same Request-URI, Call-ID, From, To (no tag), CSeq number and top Via.
        let cancel = Request {
            method: Method::Cancel,
            uri: invite.uri.clone(),
            via: invite.via.first().cloned().into_iter().collect(),
            from: invite.from.clone(),
            to: invite.to.clone(),
            call_id: invite.call_id.clone(),
            cseq: crate::message::CSeq {
                seq: invite.cseq.seq,
                method: Method::Cancel,
            },
            max_forwards: 70,
            contact: Vec::new(),
            route: invite.route.clone(),
            record_route: Vec::new(),
            headers: Headers::new(),
            body: Vec::new(),
        };
        let (destination, transport) = (c.dialog.peer, c.dialog.transport);
        let tx = self
            .transactions
            .send_request(cancel, destination, transport, now);
        self.in_dialog_tx.insert(tx, (call, Purpose::Cancel));
    }

    /// Sends a new offer in a confirmed call (hold, resume, codec change): a re-INVITE, or an
    /// UPDATE when `invite` is false. The outcome arrives as [`UaEvent::OfferAnswered`] or
    /// [`UaEvent::OfferFailed`].
    pub fn reoffer(&mut self, call: CallHandle, sdp: Vec<u8>, invite: bool, now: Instant) -> bool {
        let branch = self.ids.branch();
        let ua = self.config.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        if c.state != CallState::Confirmed || c.pending_offer.is_some() {
            return false;
        }
        let method = if invite {
            Method::Invite
        } else {
            Method::Update
        };
        let mut request = c.dialog.request(method, &branch, &ua);
        request.headers.push("Content-Type", "application/sdp");
        request.body = sdp;
        let (destination, transport) = (c.dialog.next_hop(), c.dialog.transport);
        let tx = self
            .transactions
            .send_request(request, destination, transport, now);
        self.in_dialog_tx
            .insert(tx, (call, Purpose::Reoffer { invite }));
        true
    }

    fn on_reoffer_response(
        &mut self,
        call: CallHandle,
        invite: bool,
        response: Response,
        now: Instant,
    ) {
        if response.is_success() {
            if invite {
                // ACK every 2xx (retransmissions included): it has no transaction of its own.
                if let Some(transmit) = self.ack_for_2xx(call, response.cseq.seq) {
                    self.transactions.send_stateless(transmit);
                }
            }
            if self
                .calls
                .get(&call)
                .is_some_and(|c| c.session_timer.is_some())
            {
                self.start_session_timer(call, now);
            }
            self.events
                .push_back(UaEvent::OfferAnswered { call, response });
        } else {
            let status = response.status;
            self.events.push_back(UaEvent::OfferFailed { call, status });
            if matches!(status, 408 | 481) {
                self.send_bye(call, now);
            }
        }
    }

    /// The ACK for a 2xx to an INVITE of ours (RFC 3261 §13.2.2.4): a new transaction-less
    /// request in the dialog, with the INVITE's CSeq number.
    fn ack_for_2xx(&mut self, call: CallHandle, cseq: u32) -> Option<Transmit> {
        let branch = self.ids.branch();
        let ua = self.config.user_agent.clone();
        let c = self.calls.get_mut(&call)?;
        let mut ack = c.dialog.request(Method::Ack, &branch, &ua);
        ack.cseq.seq = cseq;
        ack.contact.clear();
        Some(Transmit {
            destination: c.dialog.next_hop(),
            transport: c.dialog.transport,
            bytes: ack.to_bytes(),
        })
    }

    /// Places a call.
    pub fn invite(&mut self, out: OutgoingCall, now: Instant) -> CallHandle {
        let call = CallHandle(self.next_call);
        self.next_call += 1;
        let local_tag = self.ids.token();
        let call_id = format!("{}@sma", self.ids.token());
        let dialog = Dialog {
            role: Role::Uac,
            state: DialogState::Early,
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: None,
            local: out.from.clone().with_tag(&local_tag),
            remote: out.to.clone(),
            local_seq: (self.ids.next_u64() as u32 & 0x7fff) + 1,
            remote_seq: None,
            remote_target: out.target.clone(),
            route_set: Vec::new(),
            peer: out.destination,
            transport: out.transport,
            local_addr: out.local,
            secure: out.target.scheme == crate::message::Scheme::Sips,
        };
        let branch = self.ids.branch();
        let mut headers = out.headers;
        headers.push("Allow", ALLOW);
        headers.push("Supported", SUPPORTED);
        push_product(&mut headers, "User-Agent", &self.config.user_agent);
        if let Some(interval) = self.config.session_expires {
            headers.push("Session-Expires", interval.to_string());
        }
        if !out.body.is_empty() {
            headers.push("Content-Type", "application/sdp");
        }
        let invite = Request {
            method: Method::Invite,
            uri: out.target,
            via: vec![local_via(out.transport, out.local, &branch)],
            from: dialog.local.clone(),
            to: out.to,
            call_id: call_id.clone(),
            cseq: crate::message::CSeq {
                seq: dialog.local_seq,
                method: Method::Invite,
            },
            max_forwards: 70,
            contact: vec![dialog.contact()],
            route: Vec::new(),
            record_route: Vec::new(),
            headers,
            body: out.body,
        };
        let tx =
            self.transactions
                .send_request(invite.clone(), out.destination, out.transport, now);
        self.by_tx.insert(tx, call);
        self.by_dialog.insert((call_id, local_tag), call);
        self.calls.insert(
            call,
            Call {
                dialog,
                state: CallState::Early,
                invite_tx: Some(tx),
                invite,
                pending_2xx: None,
                session_timer: None,
                credentials: out.credentials,
                auth_attempted: false,
                pending_offer: None,
                ack: None,
                bye_after_ack: false,
                end_reported: false,
                tried: false,
            },
        );
        call
    }

    fn on_response(&mut self, id: TransactionId, response: Response, now: Instant) {
        if self.is_register(&id) {
            return self.on_register_response(id, response, now);
        }
        if let Some((call, purpose)) = self.in_dialog_tx.get(&id).copied() {
            if response.status >= 200 {
                match purpose {
                    Purpose::Bye => self.end(call, EndReason::LocalBye),
                    Purpose::Refresh if response.is_success() => {
                        self.start_session_timer(call, now)
                    }
                    Purpose::Reoffer { invite } => {
                        self.on_reoffer_response(call, invite, response, now)
                    }
                    _ => {}
                }
            }
            return;
        }
        let Some(&call) = self.by_tx.get(&id) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.dialog.role != Role::Uac || c.invite_tx != Some(id) {
            return;
        }
        let status = response.status;
        if status < 200 {
            if let Some(tag) = response.to.tag() {
                c.dialog.remote_tag = Some(tag.to_owned());
            }
            if status > 100 {
                self.events.push_back(UaEvent::Progress { call, response });
            } else if !c.tried {
                c.tried = true;
                self.events.push_back(UaEvent::Trying { call });
            }
            return;
        }
        if response.is_success() {
            if let Some(ack) = &c.ack {
                // A retransmitted 2xx: our ACK was lost.
                let ack = ack.clone();
                self.transactions.send_stateless(ack);
                return;
            }
            let first = c.state != CallState::Confirmed;
            c.dialog.remote_tag = response.to.tag().map(str::to_owned);
            c.dialog.remote = response.to.clone();
            if let Some(target) = response.contact.first() {
                c.dialog.remote_target = target.uri.clone();
            }
            c.dialog.route_set = response.record_route.iter().rev().cloned().collect();
            c.dialog.state = DialogState::Confirmed;
            // RFC 4028 §7.2: the UAS's Session-Expires says who refreshes.
            c.session_timer = response.headers.get("Session-Expires").and_then(|value| {
                let mut parts = value.split(';');
                let interval: u32 = parts.next()?.trim().parse().ok()?;
                let refresher = parts
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("refresher"))
                    .map(|(_, v)| v.trim().to_ascii_lowercase());
                Some(SessionTimer {
                    interval,
                    we_refresh: refresher.as_deref() != Some("uas"),
                })
            });
            let cancelled = c.state == CallState::Terminating;
            c.state = CallState::Confirmed;
            let Some(transmit) = self.ack_for_2xx(call, response.cseq.seq) else {
                return;
            };
            if let Some(c) = self.calls.get_mut(&call) {
                c.ack = Some(transmit.clone());
            }
            self.transactions.send_stateless(transmit);
            let end_reported = self.calls.get(&call).is_some_and(|c| c.end_reported);
            if first && !end_reported {
                self.start_session_timer(call, now);
                self.events.push_back(UaEvent::Answered { call, response });
            }
            if cancelled {
                // The 200 won the race with our CANCEL: end the call properly.
                self.send_bye(call, now);
            }
            return;
        }
        let retry_auth = matches!(status, 401 | 407) && !c.auth_attempted;
        if retry_auth {
            if let Some(creds) = self.calls.get(&call).and_then(|c| c.credentials.clone()) {
                let challenge_header = if status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let uri = self
                    .calls
                    .get(&call)
                    .map(|c| c.invite.uri.to_string())
                    .unwrap_or_default();
                let cnonce = self.ids.token();
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some(auth) = creds.answer(
                    response.headers.get_all(challenge_header),
                    "INVITE",
                    &uri,
                    &cnonce,
                    1,
                ) {
                    c.auth_attempted = true;
                    let mut invite = c.invite.clone();
                    invite.cseq.seq += 1;
                    c.dialog.local_seq = invite.cseq.seq;
                    let branch = self.ids.branch();
                    invite.via[0].params.set("branch", Some(branch));
                    let header = if status == 401 {
                        "Authorization"
                    } else {
                        "Proxy-Authorization"
                    };
                    invite.headers.set(header, auth);
                    c.invite = invite.clone();
                    let (destination, transport) = (c.dialog.peer, c.dialog.transport);
                    let tx = self
                        .transactions
                        .send_request(invite, destination, transport, now);
                    c.invite_tx = Some(tx);
                    self.by_tx.insert(tx, call);
                    return;
                }
            }
        }
        let terminating = self
            .calls
            .get(&call)
            .is_some_and(|c| c.state == CallState::Terminating);
        let reason = if status == 487 && terminating {
            EndReason::LocalBye
        } else {
            EndReason::Rejected(status)
        };
        self.end(call, reason);
    }

    fn on_stray_response(&mut self, response: Response, source: SocketAddr) {
        // A 2xx retransmitted after the INVITE transaction ended (Accepted state over):
        // re-send the ACK from the dialog.
        if response.is_success() && response.cseq.method == Method::Invite {
            let key = (
                response.call_id.clone(),
                response.from.tag().unwrap_or_default().to_owned(),
            );
            if let Some(ack) = self
                .by_dialog
                .get(&key)
                .and_then(|call| self.calls.get(call))
                .and_then(|c| c.ack.clone())
            {
                self.transactions.send_stateless(ack);
                return;
            }
        }
        self.counters.retransmissions_absorbed += 1;
        let _ = source;
    }

    fn on_timeout(&mut self, id: TransactionId, now: Instant) {
        if self.is_register(&id) {
            return self.on_register_failure(id, 408, now);
        }
        if let Some((call, purpose)) = self.in_dialog_tx.get(&id).copied() {
            match purpose {
                Purpose::Bye | Purpose::Cancel => self.end(call, EndReason::Timeout),
                // RFC 3261 §12.2.1.2: a timed-out in-dialog request ends the dialog.
                Purpose::Refresh | Purpose::Reoffer { .. } => {
                    self.events
                        .push_back(UaEvent::OfferFailed { call, status: 408 });
                    self.send_bye(call, now);
                }
            }
            return;
        }
        if let Some(&call) = self.by_tx.get(&id) {
            if self
                .calls
                .get(&call)
                .is_some_and(|c| c.invite_tx == Some(id))
            {
                self.end(call, EndReason::Timeout);
            }
        }
    }

    /// A request of ours could not be delivered. An INVITE's call ends (`Unreachable`), an
    /// in-dialog request is handled as one that timed out, a REGISTER is retried.
    fn on_transport_error(&mut self, id: TransactionId, reason: String, now: Instant) {
        if self.is_register(&id) {
            return self.on_register_failure(id, 503, now);
        }
        if self.in_dialog_tx.contains_key(&id) {
            return self.on_timeout(id, now);
        }
        if let Some(&call) = self.by_tx.get(&id) {
            if self
                .calls
                .get(&call)
                .is_some_and(|c| c.invite_tx == Some(id))
            {
                self.end(call, EndReason::Unreachable(reason));
            }
        }
    }

    fn start_session_timer(&mut self, call: CallHandle, now: Instant) {
        let Some(timer) = self.calls.get(&call).and_then(|c| c.session_timer.as_ref()) else {
            return;
        };
        let interval = Duration::from_secs(timer.interval.into());
        if timer.we_refresh {
            self.arm(call, CallTimer::SessionRefresh, now + interval / 2);
        }
        // RFC 4028 §10: BYE at interval minus min(32 s, interval/3) without a refresh.
        let margin = Duration::from_secs(32).min(interval / 3);
        self.arm(call, CallTimer::SessionExpiry, now + interval - margin);
    }

    fn fire(&mut self, call: CallHandle, timer: CallTimer, now: Instant) {
        let t2 = self.config.timers.t2;
        match timer {
            CallTimer::Register => self.refresh_registration(call.0, now),
            CallTimer::Retransmit2xx => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let Some(pending) = c.pending_2xx.as_mut() else {
                    return;
                };
                if now >= pending.give_up {
                    // §13.3.1.4: no ACK within 64*T1: confirm and end the session with BYE.
                    c.pending_2xx = None;
                    let initial = c.state == CallState::Answered;
                    if initial {
                        self.send_bye(call, now);
                        self.end(call, EndReason::AckTimeout);
                    }
                    return;
                }
                let transmit = pending.transmit.clone();
                pending.interval = (pending.interval * 2).min(t2);
                let next = (now + pending.interval).min(pending.give_up);
                self.transactions.send_stateless(transmit);
                self.arm(call, CallTimer::Retransmit2xx, next);
            }
            CallTimer::SessionRefresh => {
                let branch = self.ids.branch();
                let ua = self.config.user_agent.clone();
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.state != CallState::Confirmed {
                    return;
                }
                let mut update = c.dialog.request(Method::Update, &branch, &ua);
                if let Some(timer) = &c.session_timer {
                    let refresher = match c.dialog.role {
                        Role::Uac => "uac",
                        Role::Uas => "uas",
                    };
                    update.headers.push(
                        "Session-Expires",
                        format!("{};refresher={refresher}", timer.interval),
                    );
                }
                let (destination, transport) = (c.dialog.next_hop(), c.dialog.transport);
                let tx = self
                    .transactions
                    .send_request(update, destination, transport, now);
                self.in_dialog_tx.insert(tx, (call, Purpose::Refresh));
            }
            CallTimer::SessionExpiry => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == CallState::Confirmed)
                {
                    self.send_bye(call, now);
                    self.end(call, EndReason::SessionExpired);
                }
            }
        }
    }

    /// Forgets a call and reports it ended (once). A BYE this side sent keeps running in the
    /// transaction layer on its own.
    fn end(&mut self, call: CallHandle, reason: EndReason) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.by_dialog
            .remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
        for timer in [
            CallTimer::Retransmit2xx,
            CallTimer::SessionRefresh,
            CallTimer::SessionExpiry,
        ] {
            self.disarm(call, timer);
        }
        if !c.end_reported {
            self.events.push_back(UaEvent::Ended { call, reason });
        }
    }
}
