//! The caller's SIP side: one sans-IO user agent and one transport for every call of a run
//! (one call, or thousands in load mode). Calls ask it to dial and hang up; it tells each
//! call about its responses and its end. The same shape as the server's endpoint task.
//!
//! A callee scenario's dialer listens instead: the first INVITE that arrives is handed to
//! the scenario with its own signal channel, and the scenario rings, answers or rejects it.

use sma_net::transport::ListenSpec;
use sma_net::transport::{Inbound, Transports};
use sma_sip::auth::Credentials;
use sma_sip::message::{reason_phrase, Headers, NameAddr, ParseLimits, Uri};
use sma_sip::ua::{CallHandle, EndReason, OutgoingCall, UaConfig, UaEvent, UserAgent};
use sma_sip::Transport;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// What a call hears from the dialer.
#[derive(Debug)]
pub enum CallSignal {
    Response {
        status: u16,
        reason: String,
        body: Vec<u8>,
    },
    Ended(EndReason),
}

/// An INVITE that reached a listening dialer: the scenario's call.
pub struct IncomingInvite {
    pub call: CallHandle,
    pub incoming: crate::run::Incoming,
    /// The INVITE's SDP offer (empty when it had none).
    pub offer: Vec<u8>,
    pub signals: mpsc::UnboundedReceiver<CallSignal>,
}

/// A call to place.
pub struct Dial {
    pub target: Uri,
    pub from: NameAddr,
    pub offer: Vec<u8>,
    pub headers: Headers,
    pub credentials: Option<Credentials>,
}

enum Request {
    Invite {
        dial: Box<Dial>,
        signals: mpsc::UnboundedSender<CallSignal>,
        placed: oneshot::Sender<CallHandle>,
    },
    Hangup(CallHandle),
    Ring(CallHandle),
    Answer(CallHandle, Vec<u8>),
    Reject(CallHandle, u16),
}

/// A handle on the dialer task.
#[derive(Clone)]
pub struct Dialer {
    requests: mpsc::UnboundedSender<Request>,
    /// Our SIP address as the far end sees it.
    pub local: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error("cannot find a local address toward {0}: {1}")]
    Route(SocketAddr, std::io::Error),
    #[error("{0}")]
    Transport(#[from] sma_net::transport::TransportError),
    #[error("TLS needs --ca-file: the server's certificate or the CA that signed it")]
    NoTrust,
}

/// The local address the OS would use to reach `destination` (no packet is sent).
pub fn local_ip_toward(destination: SocketAddr) -> std::io::Result<IpAddr> {
    if destination.ip().is_loopback() {
        return Ok(destination.ip());
    }
    let any: SocketAddr = match destination {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().map_err(std::io::Error::other)?,
        SocketAddr::V6(_) => "[::]:0".parse().map_err(std::io::Error::other)?,
    };
    let probe = StdUdpSocket::bind(any)?;
    probe.connect(destination)?;
    Ok(probe.local_addr()?.ip())
}

impl Dialer {
    /// Binds the transport toward `destination` and starts the task.
    /// `tls`: the connector and the name the server's certificate must carry, for TLS.
    pub async fn start(
        destination: SocketAddr,
        transport: Transport,
        seed: u64,
        tls: Option<(TlsConnector, ServerName<'static>)>,
    ) -> Result<Dialer, DialerError> {
        let ip = local_ip_toward(destination).map_err(|e| DialerError::Route(destination, e))?;
        // TLS connections are opened by us; the listener only gives our advertised address.
        let listen = match transport {
            Transport::Tls => Transport::Tcp,
            other => other,
        };
        let (mut transports, local, inbound) = bind(listen, SocketAddr::new(ip, 0), None).await?;
        if transport == Transport::Tls {
            let (connector, name) = tls.ok_or(DialerError::NoTrust)?;
            transports.set_tls_client(connector, name);
        }
        let ua = user_agent(seed);
        let (requests, rx) = mpsc::unbounded_channel();
        let route = Route {
            destination,
            transport,
            local,
        };
        tokio::spawn(run(ua, transports, route, inbound, rx, None));
        Ok(Dialer { requests, local })
    }

    /// Listens on `address` for the one call a callee scenario takes. Further INVITEs are
    /// refused with 486 Busy Here.
    pub async fn listen(
        address: SocketAddr,
        transport: Transport,
        seed: u64,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Result<(Dialer, mpsc::Receiver<IncomingInvite>), DialerError> {
        let (transports, local, inbound) = bind(transport, address, tls).await?;
        let ua = user_agent(seed);
        let (requests, rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::channel(1);
        let route = Route {
            destination: local,
            transport,
            local,
        };
        tokio::spawn(run(ua, transports, route, inbound, rx, Some(incoming_tx)));
        Ok((Dialer { requests, local }, incoming))
    }

    /// 180 Ringing on an incoming call.
    pub fn ring(&self, call: CallHandle) {
        let _ = self.requests.send(Request::Ring(call));
    }

    /// 200 OK with this SDP answer on an incoming call.
    pub fn answer(&self, call: CallHandle, sdp: Vec<u8>) {
        let _ = self.requests.send(Request::Answer(call, sdp));
    }

    /// A final error response on an incoming call.
    pub fn reject(&self, call: CallHandle, status: u16) {
        let _ = self.requests.send(Request::Reject(call, status));
    }

    /// Sends the INVITE; signals arrive on `signals`. `None` when the dialer has stopped.
    pub async fn invite(
        &self,
        dial: Dial,
        signals: mpsc::UnboundedSender<CallSignal>,
    ) -> Option<CallHandle> {
        let (placed, handle) = oneshot::channel();
        self.requests
            .send(Request::Invite {
                dial: Box::new(dial),
                signals,
                placed,
            })
            .ok()?;
        handle.await.ok()
    }

    /// BYE when answered, CANCEL before.
    pub fn hangup(&self, call: CallHandle) {
        let _ = self.requests.send(Request::Hangup(call));
    }
}

/// Binds one SIP listener; returns it, our address as the far end sees it, and what arrives.
async fn bind(
    transport: Transport,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(Transports, SocketAddr, mpsc::Receiver<Inbound>), DialerError> {
    let (inbound_tx, inbound) = mpsc::channel(4096);
    let (transports, bound) = Transports::start(
        &[ListenSpec { transport, addr }],
        None,
        tls,
        ParseLimits::default(),
        Duration::from_secs(60),
        inbound_tx,
    )
    .await?;
    let local = bound.first().map_or(addr, |b| b.advertised);
    Ok((transports, local, inbound))
}

/// The QA tool's user agent. A test party does not refresh sessions; the far end may still
/// ask it to.
fn user_agent(seed: u64) -> UserAgent {
    UserAgent::new(UaConfig {
        user_agent: concat!("sma-call/", env!("CARGO_PKG_VERSION")).into(),
        seed,
        session_expires: None,
        ..UaConfig::default()
    })
}

/// Where every call of the run goes, and from where.
#[derive(Clone, Copy)]
struct Route {
    destination: SocketAddr,
    transport: Transport,
    local: SocketAddr,
}

async fn run(
    mut ua: UserAgent,
    transports: Transports,
    route: Route,
    mut inbound: mpsc::Receiver<Inbound>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut incoming: Option<mpsc::Sender<IncomingInvite>>,
) {
    let mut calls: HashMap<CallHandle, mpsc::UnboundedSender<CallSignal>> = HashMap::new();
    loop {
        let deadline = ua.poll_timeout();
        tokio::select! {
            item = inbound.recv() => {
                let Some(item) = item else { return };
                match item {
                    Inbound::Message { bytes, source, local, transport } => {
                        ua.handle_input(&bytes, source, local, transport, Instant::now());
                    }
                    Inbound::Undeliverable { destination, transport, reason } => {
                        ua.handle_transport_failure(destination, transport, &reason, Instant::now());
                    }
                    Inbound::TooLarge { .. } => {}
                }
            }
            request = requests.recv() => {
                let Some(request) = request else { return };
                let now = Instant::now();
                match request {
                    Request::Invite { dial, signals, placed } => {
                        let d = *dial;
                        let call = ua.invite(
                            OutgoingCall {
                                to: NameAddr::new(d.target.clone()),
                                target: d.target,
                                from: d.from,
                                destination: route.destination,
                                transport: route.transport,
                                local: route.local,
                                body: d.offer,
                                headers: d.headers,
                                credentials: d.credentials,
                            },
                            now,
                        );
                        calls.insert(call, signals);
                        let _ = placed.send(call);
                    }
                    Request::Hangup(call) => ua.hangup(call, 487, now),
                    Request::Ring(call) => ua.ring(call, now),
                    Request::Answer(call, sdp) => {
                        ua.answer(call, sdp, now);
                    }
                    Request::Reject(call, status) => ua.reject(call, status, now),
                }
            }
            _ = sma_net::time::sleep_until(deadline) => ua.handle_timeout(Instant::now()),
        }
        while let Some(t) = ua.poll_transmit() {
            transports.send(t);
        }
        while let Some(event) = ua.poll_event() {
            match event {
                UaEvent::Progress { call, response } | UaEvent::Answered { call, response } => {
                    if let Some(tx) = calls.get(&call) {
                        let _ = tx.send(CallSignal::Response {
                            status: response.status,
                            reason: response.reason.clone(),
                            body: response.body.clone(),
                        });
                    }
                }
                UaEvent::Ended { call, reason } => {
                    if let Some(tx) = calls.remove(&call) {
                        if let EndReason::Rejected(status) = reason {
                            let _ = tx.send(CallSignal::Response {
                                status,
                                reason: reason_phrase(status).to_owned(),
                                body: Vec::new(),
                            });
                        }
                        let _ = tx.send(CallSignal::Ended(reason));
                    }
                }
                UaEvent::IncomingCall { call, invite, .. } => match incoming.take() {
                    Some(to_scenario) => {
                        let (tx, signals) = mpsc::unbounded_channel();
                        calls.insert(call, tx);
                        let invite_info = crate::run::Incoming {
                            from_uri: invite.from.uri.to_string(),
                            from_user: invite.from.uri.user.clone().unwrap_or_default(),
                            to_user: invite.uri.user.clone().unwrap_or_default(),
                            headers: invite
                                .headers
                                .iter()
                                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                                .collect(),
                        };
                        let handed = to_scenario.try_send(IncomingInvite {
                            call,
                            incoming: invite_info,
                            offer: invite.body,
                            signals,
                        });
                        if handed.is_err() {
                            calls.remove(&call);
                            ua.reject(call, 480, Instant::now());
                        }
                    }
                    // One call per callee scenario; a caller takes none.
                    None => {
                        let busy = if calls.is_empty() { 603 } else { 486 };
                        ua.reject(call, busy, Instant::now())
                    }
                },
                UaEvent::Offer { call, tx, .. } => {
                    // A test caller keeps the media it negotiated: the far end keeps its
                    // old session (RFC 3264 §8 after a 488).
                    ua.answer_offer(call, tx, Err(488), Instant::now());
                }
                _ => {}
            }
        }
        while let Some(t) = ua.poll_transmit() {
            transports.send(t);
        }
    }
}
