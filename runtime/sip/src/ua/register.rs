//! Registration with a registrar (RFC 3261 §10): how a node keeps a carrier's SIP trunk
//! pointing at it. One REGISTER per registration, answered challenges (401/407, once per
//! attempt), the registrar's granted expiry honoured, refreshed at half of it; a failed or
//! unanswered attempt is tried again later.

use super::{local_via, push_product, CallHandle, CallTimer, UaEvent, UserAgent};
use crate::auth::Credentials;
use crate::message::{CSeq, Headers, Method, NameAddr, Request, Response, Transport, Uri};
use crate::transaction::TransactionId;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a registration needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The Request-URI: the registrar's domain (`sip:carrier.example`).
    pub registrar: Uri,
    /// The address of record, in To and From.
    pub aor: NameAddr,
    /// Where the REGISTER goes.
    pub destination: SocketAddr,
    pub transport: Transport,
    /// Our listener for `transport`: the Contact the registrar delivers calls to.
    pub local: SocketAddr,
    /// The lifetime asked for, seconds.
    pub expires: u32,
    pub credentials: Option<Credentials>,
}

/// A registration this UA keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegistrationHandle(pub u64);

/// How long a failed registration waits before the next attempt.
const RETRY: Duration = Duration::from_secs(30);

pub(super) struct RegistrationState {
    registration: Registration,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The attempt in flight, and whether it already answered a challenge.
    transaction: Option<TransactionId>,
    authenticated: bool,
}

impl UserAgent {
    /// Registers, and keeps the registration refreshed until the UA is dropped. Reports
    /// [`UaEvent::Registered`] after each success and [`UaEvent::RegistrationFailed`] after a
    /// failure (then tries again after 30 s).
    pub fn register(&mut self, registration: Registration, now: Instant) -> RegistrationHandle {
        let handle = RegistrationHandle(self.next_call);
        self.next_call += 1;
        let state = RegistrationState {
            registration,
            call_id: format!("{}@sma", self.ids.token()),
            from_tag: self.ids.token(),
            cseq: (self.ids.next_u64() as u32 & 0x7fff) + 1,
            transaction: None,
            authenticated: false,
        };
        self.registrations.insert(handle.0, state);
        self.send_register(handle.0, None, now);
        handle
    }

    /// Sends the registration's REGISTER, with `authorization` (header name, value) when it
    /// answers a challenge.
    fn send_register(&mut self, id: u64, authorization: Option<(&str, String)>, now: Instant) {
        let branch = self.ids.branch();
        let user_agent = self.config.user_agent.clone();
        let Some(state) = self.registrations.get_mut(&id) else {
            return;
        };
        state.cseq += 1;
        state.authenticated = authorization.is_some();
        let r = &state.registration;
        // Calls for the address of record come back to its user at our listener, so they
        // route by the number like any other call.
        let mut contact = super::contact(r.transport, r.local);
        contact.uri.user = r.aor.uri.user.clone();
        contact.params.set("expires", Some(r.expires.to_string()));
        let mut headers = Headers::new();
        headers.push("Expires", r.expires.to_string());
        push_product(&mut headers, "User-Agent", &user_agent);
        if let Some((name, value)) = authorization {
            headers.push(name, value);
        }
        let request = Request {
            method: Method::Register,
            uri: r.registrar.clone(),
            via: vec![local_via(r.transport, r.local, &branch)],
            from: r.aor.clone().with_tag(&state.from_tag),
            to: r.aor.clone(),
            call_id: state.call_id.clone(),
            cseq: CSeq {
                seq: state.cseq,
                method: Method::Register,
            },
            max_forwards: 70,
            contact: vec![contact],
            route: Vec::new(),
            record_route: Vec::new(),
            headers,
            body: Vec::new(),
        };
        let (destination, transport) = (r.destination, r.transport);
        let tx = self
            .transactions
            .send_request(request, destination, transport, now);
        state.transaction = Some(tx);
        self.registering.insert(tx, id);
    }

    /// A response to a REGISTER of ours.
    pub(super) fn on_register_response(
        &mut self,
        tx: TransactionId,
        response: Response,
        now: Instant,
    ) {
        let Some(id) = self.registering.remove(&tx) else {
            return;
        };
        let Some(state) = self.registrations.get(&id) else {
            return;
        };
        if state.transaction != Some(tx) || response.status < 200 {
            if response.status < 200 {
                self.registering.insert(tx, id);
            }
            return;
        }
        let status = response.status;
        if matches!(status, 401 | 407) && !state.authenticated {
            if let Some(credentials) = state.registration.credentials.clone() {
                let (challenge, header) = if status == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let uri = state.registration.registrar.to_string();
                let cnonce = self.ids.token();
                if let Some(answer) = credentials.answer(
                    response.headers.get_all(challenge),
                    "REGISTER",
                    &uri,
                    &cnonce,
                    1,
                ) {
                    self.send_register(id, Some((header, answer)), now);
                    return;
                }
            }
        }
        if response.is_success() {
            let asked = state.registration.expires;
            let granted = granted_expiry(&response, &state.registration).unwrap_or(asked);
            let refresh = Duration::from_secs(u64::from(granted.max(2)) / 2);
            self.arm(CallHandle(id), CallTimer::Register, now + refresh);
            self.events.push_back(UaEvent::Registered {
                registration: RegistrationHandle(id),
                expires: granted,
            });
        } else {
            self.arm(CallHandle(id), CallTimer::Register, now + RETRY);
            self.events.push_back(UaEvent::RegistrationFailed {
                registration: RegistrationHandle(id),
                status,
            });
        }
    }

    /// A REGISTER got no response at all.
    /// A REGISTER got no response (408) or could not be sent (503): tried again later.
    pub(super) fn on_register_failure(&mut self, tx: TransactionId, status: u16, now: Instant) {
        let Some(id) = self.registering.remove(&tx) else {
            return;
        };
        self.arm(CallHandle(id), CallTimer::Register, now + RETRY);
        self.events.push_back(UaEvent::RegistrationFailed {
            registration: RegistrationHandle(id),
            status,
        });
    }

    /// Time to refresh (or retry) registration `id`.
    pub(super) fn refresh_registration(&mut self, id: u64, now: Instant) {
        if self.registrations.contains_key(&id) {
            self.send_register(id, None, now);
        }
    }

    /// Whether `tx` is one of our REGISTERs.
    pub(super) fn is_register(&self, tx: &TransactionId) -> bool {
        self.registering.contains_key(tx)
    }
}

/// The expiry the registrar granted our binding: the `expires` parameter of our Contact in
/// the 200, else its `Expires` header.
fn granted_expiry(response: &Response, registration: &Registration) -> Option<u32> {
    let ours = response.contact.iter().find(|c| {
        c.uri.host
            == super::contact(registration.transport, registration.local)
                .uri
                .host
            && c.uri.port == Some(registration.local.port())
    });
    ours.and_then(|c| c.params.get("expires").flatten())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| {
            response
                .headers
                .get("Expires")
                .and_then(|v| v.trim().parse().ok())
        })
}
