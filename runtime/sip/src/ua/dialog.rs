//! Dialog state (RFC 3261 §12): identifiers, sequence numbers, route set and remote target.

use crate::message::{CSeq, Headers, Host, Method, NameAddr, Request, Transport, Uri, Via};
use std::net::{IpAddr, SocketAddr};

/// The side of the dialog this UA took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uac,
    Uas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub role: Role,
    pub state: DialogState,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our From (UAC) or To (UAS) address, with our tag.
    pub local: NameAddr,
    /// The peer's address, with its tag once known.
    pub remote: NameAddr,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route headers for in-dialog requests, in order.
    pub route_set: Vec<NameAddr>,
    /// The address the peer's messages came from: the fallback next hop when the remote target
    /// is a hostname (no DNS in a sans-IO core) and the flow to reuse on TCP/TLS.
    pub peer: SocketAddr,
    pub transport: Transport,
    /// Our address for Via and Contact.
    pub local_addr: SocketAddr,
    /// The dialog began with a `sips:` Request-URI: Contacts are `sips:` too.
    pub secure: bool,
}

impl Dialog {
    /// The next hop for an in-dialog request (RFC 3261 §12.2.1.1 with loose routing).
    pub fn next_hop(&self) -> SocketAddr {
        // A caller that connected over TCP or TLS is reached back over its own connection
        // (as RFC 5923 and SIP outbound do): its Contact may not accept connections, and
        // this side may not be able to open TLS to it.
        if self.role == Role::Uas && self.transport.is_reliable() {
            return self.peer;
        }
        let uri = match self.route_set.first() {
            Some(route) => &route.uri,
            None => &self.remote_target,
        };
        let default_port = if self.transport == Transport::Tls {
            5061
        } else {
            5060
        };
        match uri.host.ip() {
            Some(ip) => SocketAddr::new(ip, uri.port.unwrap_or(default_port)),
            None => self.peer,
        }
    }

    /// Builds an in-dialog request with the next local CSeq (ACK and CANCEL excepted, which
    /// reuse the INVITE's number: see the callers).
    pub fn request(&mut self, method: Method, branch: &str, user_agent: &str) -> Request {
        if method != Method::Ack {
            self.local_seq += 1;
        }
        let mut headers = Headers::new();
        super::push_product(&mut headers, "User-Agent", user_agent);
        let mut remote = self.remote.clone();
        if let Some(tag) = &self.remote_tag {
            remote = remote.with_tag(tag);
        }
        Request {
            method: method.clone(),
            uri: self.remote_target.clone(),
            via: vec![local_via(self.transport, self.local_addr, branch)],
            from: self.local.clone(),
            to: remote,
            call_id: self.call_id.clone(),
            cseq: CSeq {
                seq: self.local_seq,
                method,
            },
            max_forwards: 70,
            contact: vec![self.contact()],
            route: self.route_set.clone(),
            record_route: Vec::new(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Dialog {
    /// This side's Contact in the dialog.
    pub fn contact(&self) -> NameAddr {
        if self.secure {
            secure_contact(self.local_addr)
        } else {
            contact(self.transport, self.local_addr)
        }
    }
}

/// Our Via, asking for rport (RFC 3581) so responses find us behind NAT.
pub fn local_via(transport: Transport, local: SocketAddr, branch: &str) -> Via {
    let mut via = Via::new(
        transport,
        Host::from(local.ip()),
        Some(local.port()),
        branch,
    );
    via.params.set("rport", None);
    via
}

/// Our Contact for a transport. Over TLS it is `sip:…;transport=tls` rather than `sips:`,
/// which many deployed UAs (baresip among them) do not take in a Contact; a dialog that began
/// with a `sips:` Request-URI gets [`secure_contact`].
pub fn contact(transport: Transport, local: SocketAddr) -> NameAddr {
    let host = match local.ip() {
        IpAddr::V4(a) => Host::V4(a),
        IpAddr::V6(a) => Host::V6(a),
    };
    let mut uri = Uri::sip(Some("sma"), host, Some(local.port()));
    if transport != Transport::Udp {
        uri.params
            .set("transport", Some(transport.as_str().to_ascii_lowercase()));
    }
    NameAddr::new(uri)
}

/// A `sips:` Contact, for dialogs whose Request-URI was `sips:` (RFC 3261 §8.1.1.8).
pub fn secure_contact(local: SocketAddr) -> NameAddr {
    let mut uri = Uri::sip(Some("sma"), Host::from(local.ip()), Some(local.port()));
    uri.scheme = crate::message::Scheme::Sips;
    NameAddr::new(uri)
}
