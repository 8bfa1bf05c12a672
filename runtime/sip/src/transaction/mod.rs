//! The transaction layer (RFC 3261 §17, with the RFC 6026 Accepted states).
//!
//! Four state machines — client and server, INVITE and non-INVITE — driven by messages and
//! timers A–M. The layer matches messages to transactions (§17.1.3, §17.2.3), retransmits over
//! unreliable transports, absorbs retransmitted requests, generates the ACK for non-2xx final
//! responses, and tells the transaction user (the UA core) about requests, responses and
//! timeouts. It never reads a clock: every entry point takes `now`, and [`poll_timeout`]
//! says when to call [`handle_timeout`] next.
//!
//! [`poll_timeout`]: TransactionLayer::poll_timeout
//! [`handle_timeout`]: TransactionLayer::handle_timeout

use crate::message::{Host, Message, Method, NameAddr, Request, Response, Transport, MAGIC_COOKIE};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3261 timer base values (Table 4).
#[derive(Debug, Clone, Copy)]
pub struct TimerConfig {
    /// Round-trip estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// A handle the transaction user keeps for a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u64);

/// Bytes for the IO shell to send. For reliable transports the shell sends on the connection
/// the request came in on (or opens one to `destination`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// What the layer tells its transaction user.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionEvent {
    /// A new request. `id` is the server transaction to respond on; `None` for an ACK to a 2xx
    /// (which has no transaction of its own, §17.2.1) or an ACK no transaction matched.
    Request {
        id: Option<TransactionId>,
        request: Request,
        source: SocketAddr,
        transport: Transport,
    },
    /// A response on a client transaction (retransmitted 2xx included, so the UAC core can
    /// re-send its ACK).
    Response {
        id: TransactionId,
        response: Response,
    },
    /// A response that matched no client transaction (a stray 2xx retransmission).
    StrayResponse {
        response: Response,
        source: SocketAddr,
    },
    /// Timer B or F fired: the request got no final response.
    Timeout { id: TransactionId },
    /// Timer H fired: the final (non-2xx) response to an INVITE was never acknowledged.
    AckTimeout { id: TransactionId },
    /// The request could not be delivered (RFC 3261 §8.1.3.1, a transport error): no
    /// connection to the destination, or its TLS handshake failed. `reason` says which.
    TransportError { id: TransactionId, reason: String },
    /// The transaction is gone; its id will not be used again.
    Terminated { id: TransactionId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

/// Server transaction matching key (§17.2.3), or client key (branch + method, §17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client {
        branch: String,
        method: Method,
    },
    /// §17.2.3's branch, sent-by and method, and the Call-ID: a request that reuses
    /// another's branch with a different Call-ID is a new request from a careless client,
    /// not a retransmission of the other.
    Server {
        branch: String,
        sent_by: String,
        method: Method,
        call_id: String,
    },
    /// RFC 2543 peers without the magic cookie.
    Legacy {
        call_id: String,
        seq: u32,
        from_tag: String,
        sent_by: String,
        method: Method,
    },
}

struct Transaction {
    kind: Kind,
    state: State,
    key: Key,
    destination: SocketAddr,
    transport: Transport,
    /// The request (client) or the last response sent (server), ready to retransmit.
    last_sent: Vec<u8>,
    /// The original request, for the ACK a client INVITE transaction generates.
    request: Option<Request>,
    interval: Duration,
    timers: HashMap<Timer, Instant>,
}

/// The transaction layer.
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    transactions: HashMap<TransactionId, Transaction>,
    index: HashMap<Key, TransactionId>,
    queue: BinaryHeap<Reverse<(Instant, TransactionId, Timer)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

fn method_key(method: &Method) -> Method {
    // An ACK matches the INVITE transaction it acknowledges (§17.2.3).
    if *method == Method::Ack {
        Method::Invite
    } else {
        method.clone()
    }
}

fn server_key(request: &Request) -> Key {
    let via = &request.via[0];
    let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(0));
    match via.branch() {
        Some(branch) if branch.starts_with(MAGIC_COOKIE) => Key::Server {
            branch: branch.to_owned(),
            sent_by,
            method: method_key(&request.method),
            call_id: request.call_id.clone(),
        },
        _ => Key::Legacy {
            call_id: request.call_id.clone(),
            seq: request.cseq.seq,
            from_tag: request.from.tag().unwrap_or_default().to_owned(),
            sent_by,
            method: method_key(&request.method),
        },
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2 with RFC 3581 rport): the source address
/// when the client asked for rport or used a reliable transport, otherwise the received address
/// and the Via port.
pub fn response_destination(
    request: &Request,
    source: SocketAddr,
    transport: Transport,
) -> SocketAddr {
    let via = &request.via[0];
    if transport.is_reliable() || via.params.contains("rport") {
        return source;
    }
    let port = via.port.unwrap_or(if transport == Transport::Tls {
        5061
    } else {
        5060
    });
    SocketAddr::new(source.ip(), port)
}

/// Records where a request really came from in its top Via (RFC 3261 §18.2.1, RFC 3581 §4),
/// so the responses, which copy the Via, carry it back.
pub fn stamp_received(request: &mut Request, source: SocketAddr) {
    let via = &mut request.via[0];
    let differs = match via.host.ip() {
        Some(ip) => ip != source.ip(),
        None => true,
    };
    if differs || via.params.contains("rport") {
        via.params.set(
            "received",
            Some(
                Host::from(source.ip())
                    .to_string()
                    .trim_matches(['[', ']'])
                    .to_owned(),
            ),
        );
    }
    if via.params.contains("rport") {
        via.params.set("rport", Some(source.port().to_string()));
    }
}

impl TransactionLayer {
    pub fn new(config: TimerConfig) -> TransactionLayer {
        TransactionLayer {
            config,
            next_id: 1,
            transactions: HashMap::new(),
            index: HashMap::new(),
            queue: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> TimerConfig {
        self.config
    }

    /// Transactions alive (not yet terminated).
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The state of a transaction, if it still exists.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.transactions.get(&id).map(|t| t.state)
    }

    /// The request a server transaction was created for.
    pub fn request(&self, id: TransactionId) -> Option<&Request> {
        self.transactions.get(&id).and_then(|t| t.request.as_ref())
    }

    /// Finds the INVITE server transaction a CANCEL refers to (§9.2: same branch and sent-by).
    pub fn find_invite_for_cancel(&self, cancel: &Request) -> Option<TransactionId> {
        let key = match server_key(cancel) {
            Key::Server {
                branch,
                sent_by,
                call_id,
                ..
            } => Key::Server {
                branch,
                sent_by,
                method: Method::Invite,
                call_id,
            },
            Key::Legacy {
                call_id,
                seq,
                from_tag,
                sent_by,
                ..
            } => Key::Legacy {
                call_id,
                seq,
                from_tag,
                sent_by,
                method: Method::Invite,
            },
            Key::Client { .. } => return None,
        };
        self.index.get(&key).copied()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// The earliest armed timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id, timer))) = self.queue.peek().copied() {
            if self.is_armed(id, timer, at) {
                return Some(at);
            }
            self.queue.pop();
        }
        None
    }

    fn is_armed(&self, id: TransactionId, timer: Timer, at: Instant) -> bool {
        self.transactions
            .get(&id)
            .and_then(|t| t.timers.get(&timer))
            .is_some_and(|armed| *armed == at)
    }

    fn arm(&mut self, id: TransactionId, timer: Timer, at: Instant) {
        if let Some(t) = self.transactions.get_mut(&id) {
            t.timers.insert(timer, at);
            self.queue.push(Reverse((at, id, timer)));
        }
    }

    fn disarm(&mut self, id: TransactionId, timer: Timer) {
        if let Some(t) = self.transactions.get_mut(&id) {
            t.timers.remove(&timer);
        }
    }

    fn allocate(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Starts a client transaction for a request (not ACK: an ACK to a 2xx is sent with
    /// [`send_stateless`](Self::send_stateless), an ACK to a non-2xx by the transaction itself).
    pub fn send_request(
        &mut self,
        request: Request,
        destination: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> TransactionId {
        let id = self.allocate();
        let invite = request.method == Method::Invite;
        let key = Key::Client {
            branch: request.branch().unwrap_or_default().to_owned(),
            method: request.method.clone(),
        };
        let bytes = request.to_bytes();
        self.transmits.push_back(Transmit {
            destination,
            transport,
            bytes: bytes.clone(),
        });
        let t1 = self.config.t1;
        self.index.insert(key.clone(), id);
        self.transactions.insert(
            id,
            Transaction {
                kind: if invite {
                    Kind::InviteClient
                } else {
                    Kind::NonInviteClient
                },
                state: if invite {
                    State::Calling
                } else {
                    State::Trying
                },
                key,
                destination,
                transport,
                last_sent: bytes,
                request: Some(request),
                interval: t1,
                timers: HashMap::new(),
            },
        );
        let reliable = transport.is_reliable();
        if invite {
            if !reliable {
                self.arm(id, Timer::A, now + t1);
            }
            self.arm(id, Timer::B, now + 64 * t1);
        } else {
            if !reliable {
                self.arm(id, Timer::E, now + t1);
            }
            self.arm(id, Timer::F, now + 64 * t1);
        }
        id
    }

    /// Sends bytes outside any transaction: ACKs to 2xx and the UA core's 2xx retransmissions.
    pub fn send_stateless(&mut self, transmit: Transmit) {
        self.transmits.push_back(transmit);
    }

    /// Sends a response on a server transaction. Returns false when the transaction is gone or
    /// already has a final response.
    pub fn send_response(&mut self, id: TransactionId, response: &Response, now: Instant) -> bool {
        let config = self.config;
        let Some(t) = self.transactions.get_mut(&id) else {
            return false;
        };
        if !matches!(t.state, State::Trying | State::Proceeding) {
            return false;
        }
        let bytes = response.to_bytes();
        self.transmits.push_back(Transmit {
            destination: t.destination,
            transport: t.transport,
            bytes: bytes.clone(),
        });
        t.last_sent = bytes;
        let reliable = t.transport.is_reliable();
        if response.status < 200 {
            t.state = State::Proceeding;
            return true;
        }
        match t.kind {
            Kind::InviteServer if response.is_success() => {
                // RFC 6026: Accepted absorbs retransmitted INVITEs; the UA core retransmits
                // the 2xx itself until the ACK arrives.
                t.state = State::Accepted;
                self.arm(id, Timer::L, now + 64 * config.t1);
            }
            Kind::InviteServer => {
                t.state = State::Completed;
                t.interval = config.t1;
                if !reliable {
                    self.arm(id, Timer::G, now + config.t1);
                }
                self.arm(id, Timer::H, now + 64 * config.t1);
            }
            _ => {
                t.state = State::Completed;
                let j = if reliable {
                    Duration::ZERO
                } else {
                    64 * config.t1
                };
                self.arm(id, Timer::J, now + j);
            }
        }
        true
    }

    /// Feeds a parsed message that arrived from `source`.
    pub fn handle_message(
        &mut self,
        message: Message,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        match message {
            Message::Request(mut request) => {
                stamp_received(&mut request, source);
                self.handle_request(request, source, transport, now)
            }
            Message::Response(response) => self.handle_response(response, source, now),
        }
    }

    fn handle_request(
        &mut self,
        request: Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let key = server_key(&request);
        if let Some(&id) = self.index.get(&key) {
            self.retransmitted_request(id, request, source, transport, now);
            return;
        }
        if request.method == Method::Ack {
            // An ACK for a 2xx (new branch) or for a transaction already gone: the UA core's.
            self.events.push_back(TransactionEvent::Request {
                id: None,
                request,
                source,
                transport,
            });
            return;
        }
        let id = self.allocate();
        let invite = request.method == Method::Invite;
        let destination = response_destination(&request, source, transport);
        self.index.insert(key.clone(), id);
        self.transactions.insert(
            id,
            Transaction {
                kind: if invite {
                    Kind::InviteServer
                } else {
                    Kind::NonInviteServer
                },
                state: if invite {
                    State::Proceeding
                } else {
                    State::Trying
                },
                key,
                destination,
                transport,
                last_sent: Vec::new(),
                request: Some(request.clone()),
                interval: self.config.t1,
                timers: HashMap::new(),
            },
        );
        if invite {
            // §17.2.1: a 100 right away stops the client's INVITE retransmissions.
            let trying = request.response(100);
            let bytes = trying.to_bytes();
            self.transmits.push_back(Transmit {
                destination,
                transport,
                bytes: bytes.clone(),
            });
            if let Some(t) = self.transactions.get_mut(&id) {
                t.last_sent = bytes;
            }
        }
        self.events.push_back(TransactionEvent::Request {
            id: Some(id),
            request,
            source,
            transport,
        });
    }

    fn retransmitted_request(
        &mut self,
        id: TransactionId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let config = self.config;
        let Some(t) = self.transactions.get_mut(&id) else {
            return;
        };
        match (t.kind, t.state, request.method == Method::Ack) {
            (Kind::InviteServer, State::Completed, true) => {
                t.state = State::Confirmed;
                t.timers.remove(&Timer::G);
                t.timers.remove(&Timer::H);
                let i = if t.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    config.t4
                };
                self.arm(id, Timer::I, now + i);
            }
            (Kind::InviteServer, State::Accepted, true) => {
                // A 2xx ACK that reused the INVITE's branch (RFC 2543 style): the UA core's.
                self.events.push_back(TransactionEvent::Request {
                    id: None,
                    request,
                    source,
                    transport,
                });
            }
            (_, State::Proceeding | State::Completed, false) if !t.last_sent.is_empty() => {
                self.transmits.push_back(Transmit {
                    destination: t.destination,
                    transport: t.transport,
                    bytes: t.last_sent.clone(),
                });
            }
            // Trying with nothing sent yet, Accepted, Confirmed: absorbed.
            _ => {}
        }
    }

    fn handle_response(&mut self, response: Response, source: SocketAddr, now: Instant) {
        let key = Key::Client {
            branch: response
                .via
                .first()
                .and_then(|v| v.branch())
                .unwrap_or_default()
                .to_owned(),
            method: response.cseq.method.clone(),
        };
        let Some(&id) = self.index.get(&key) else {
            self.events
                .push_back(TransactionEvent::StrayResponse { response, source });
            return;
        };
        let config = self.config;
        let Some(t) = self.transactions.get_mut(&id) else {
            return;
        };
        let reliable = t.transport.is_reliable();
        let status = response.status;
        match (t.kind, t.state) {
            (Kind::InviteClient, State::Calling | State::Proceeding) => {
                t.timers.remove(&Timer::A);
                if status < 200 {
                    t.state = State::Proceeding;
                    t.timers.remove(&Timer::B);
                } else if status < 300 {
                    t.state = State::Accepted;
                    t.timers.remove(&Timer::B);
                    self.arm(id, Timer::M, now + 64 * config.t1);
                } else {
                    t.state = State::Completed;
                    t.timers.remove(&Timer::B);
                    let ack = t.request.as_ref().map(|r| ack_for_failure(r, &response));
                    if let Some(ack) = ack {
                        let bytes = ack.to_bytes();
                        t.last_sent = bytes.clone();
                        self.transmits.push_back(Transmit {
                            destination: t.destination,
                            transport: t.transport,
                            bytes,
                        });
                    }
                    let d = if reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(64 * config.t1)
                    };
                    self.arm(id, Timer::D, now + d);
                }
                self.events
                    .push_back(TransactionEvent::Response { id, response });
            }
            (Kind::InviteClient, State::Accepted) if (200..300).contains(&status) => {
                self.events
                    .push_back(TransactionEvent::Response { id, response });
            }
            (Kind::InviteClient, State::Completed) if status >= 300 => {
                // Retransmitted final response: re-send the ACK, do not bother the TU.
                self.transmits.push_back(Transmit {
                    destination: t.destination,
                    transport: t.transport,
                    bytes: t.last_sent.clone(),
                });
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding) => {
                if status < 200 {
                    t.state = State::Proceeding;
                } else {
                    t.state = State::Completed;
                    t.timers.remove(&Timer::E);
                    t.timers.remove(&Timer::F);
                    let k = if reliable { Duration::ZERO } else { config.t4 };
                    self.arm(id, Timer::K, now + k);
                }
                self.events
                    .push_back(TransactionEvent::Response { id, response });
            }
            // Anything else is a retransmission the state machine absorbs.
            _ => {}
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id, timer))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            if !self.is_armed(id, timer, at) {
                continue;
            }
            self.disarm(id, timer);
            self.fire(id, timer, now);
        }
    }

    fn fire(&mut self, id: TransactionId, timer: Timer, now: Instant) {
        let config = self.config;
        let Some(t) = self.transactions.get_mut(&id) else {
            return;
        };
        match timer {
            Timer::A | Timer::E | Timer::G => {
                self.transmits.push_back(Transmit {
                    destination: t.destination,
                    transport: t.transport,
                    bytes: t.last_sent.clone(),
                });
                t.interval = match (timer, t.state) {
                    (Timer::A, _) => t.interval * 2,
                    (Timer::E, State::Proceeding) => config.t2,
                    _ => (t.interval * 2).min(config.t2),
                };
                let next = now + t.interval;
                self.arm(id, timer, next);
            }
            Timer::B | Timer::F => {
                self.events.push_back(TransactionEvent::Timeout { id });
                self.terminate(id);
            }
            Timer::H => {
                self.events.push_back(TransactionEvent::AckTimeout { id });
                self.terminate(id);
            }
            Timer::D | Timer::I | Timer::J | Timer::K | Timer::L | Timer::M => self.terminate(id),
        }
    }

    /// The transport could not deliver to `destination` over `transport` (a refused
    /// connection, a failed TLS handshake): every client transaction waiting there for its
    /// first response fails now with `reason`, instead of at Timer B/F 32 s later.
    pub fn transport_failed(
        &mut self,
        destination: SocketAddr,
        transport: Transport,
        reason: &str,
    ) -> usize {
        let failed: Vec<TransactionId> = self
            .transactions
            .iter()
            .filter(|(_, t)| {
                t.destination == destination
                    && t.transport == transport
                    && matches!(t.state, State::Calling | State::Trying)
                    && matches!(t.kind, Kind::InviteClient | Kind::NonInviteClient)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &failed {
            self.events.push_back(TransactionEvent::TransportError {
                id: *id,
                reason: reason.to_owned(),
            });
            self.terminate(*id);
        }
        failed.len()
    }

    /// Ends a transaction (also used by the UA core when a transport fails).
    pub fn terminate(&mut self, id: TransactionId) {
        if let Some(t) = self.transactions.remove(&id) {
            if self.index.get(&t.key) == Some(&id) {
                self.index.remove(&t.key);
            }
            self.events.push_back(TransactionEvent::Terminated { id });
        }
    }
}

/// The ACK a client INVITE transaction sends for a non-2xx final response (§17.1.1.3).
fn ack_for_failure(invite: &Request, response: &Response) -> Request {
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        via: invite.via.first().cloned().into_iter().collect(),
        from: invite.from.clone(),
        to: response.to.clone(),
        call_id: invite.call_id.clone(),
        cseq: crate::message::CSeq {
            seq: invite.cseq.seq,
            method: Method::Ack,
        },
        max_forwards: 70,
        contact: Vec::new(),
        route: invite.route.clone(),
        record_route: Vec::new(),
        headers: Default::default(),
        body: Vec::new(),
    }
}

/// The To header a UAS puts in its responses: the request's, with a tag when it has none.
pub fn to_with_tag(to: &NameAddr, tag: &str) -> NameAddr {
    if to.tag().is_some() {
        to.clone()
    } else {
        to.clone().with_tag(tag)
    }
}
