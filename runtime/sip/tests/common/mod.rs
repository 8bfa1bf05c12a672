//! Shared helpers: canned messages and a simulated network with a simulated clock.
#![allow(dead_code)]

use sma_sip::message::{parse_message, Message, ParseLimits, Request, Response};
use sma_sip::transaction::Transmit;
use sma_sip::ua::{UaConfig, UaEvent, UserAgent};
use sma_sip::Transport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn parse(text: &str) -> Message {
    parse_message(
        text.replace('\n', "\r\n").as_bytes(),
        &ParseLimits::default(),
    )
    .unwrap()
}

pub fn request(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

pub fn response(text: &str) -> Response {
    match parse(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

/// The first line of a transmitted message.
pub fn first_line(t: &Transmit) -> String {
    let text = String::from_utf8_lossy(&t.bytes);
    text.lines().next().unwrap_or("").to_owned()
}

pub fn parsed(t: &Transmit) -> Message {
    parse_message(&t.bytes, &ParseLimits::default()).unwrap()
}

pub const SDP_OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

pub fn invite_text(branch: &str, transport: &str, extra: &str) -> String {
    format!(
        "INVITE sip:+15550100@127.0.0.1 SIP/2.0\n\
Via: SIP/2.0/{transport} 127.0.0.1:5070;branch={branch};rport\n\
Max-Forwards: 70\n\
From: <sip:alice@127.0.0.1>;tag=from1\n\
To: <sip:+15550100@127.0.0.1>\n\
Call-ID: call-1@test\n\
CSeq: 1 INVITE\n\
Contact: <sip:alice@127.0.0.1:5070>\n\
{extra}Content-Length: 0\n\n"
    )
}

/// Decides whether a message (sender, first line) is lost.
pub type LossFilter = Box<dyn FnMut(SocketAddr, &str) -> bool>;

/// Two user agents on a simulated network. Messages the `drop` filter returns true for are
/// lost; everything else is delivered in order with no delay.
pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    pub alice: UserAgent,
    pub bob: UserAgent,
    pub alice_addr: SocketAddr,
    pub bob_addr: SocketAddr,
    pub transport: Transport,
    pub alice_events: Vec<UaEvent>,
    pub bob_events: Vec<UaEvent>,
    /// (time since start, sender, first line) of every message put on the wire.
    pub wire: Vec<(Duration, SocketAddr, String)>,
    pub drop: LossFilter,
}

impl Sim {
    pub fn new(transport: Transport) -> Sim {
        let start = Instant::now();
        Sim {
            now: start,
            start,
            alice: UserAgent::new(UaConfig {
                seed: 1,
                ..UaConfig::default()
            }),
            bob: UserAgent::new(UaConfig {
                seed: 2,
                ..UaConfig::default()
            }),
            alice_addr: addr("127.0.0.1:5070"),
            bob_addr: addr("127.0.0.1:5060"),
            transport,
            alice_events: Vec::new(),
            bob_events: Vec::new(),
            wire: Vec::new(),
            drop: Box::new(|_, _| false),
        }
    }

    /// Delivers until no node has anything to send.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.alice.poll_transmit() {
                moved = true;
                self.deliver(self.alice_addr, t);
            }
            while let Some(t) = self.bob.poll_transmit() {
                moved = true;
                self.deliver(self.bob_addr, t);
            }
            while let Some(e) = self.alice.poll_event() {
                moved = true;
                self.alice_events.push(e);
            }
            while let Some(e) = self.bob.poll_event() {
                moved = true;
                self.bob_events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    fn deliver(&mut self, from: SocketAddr, t: Transmit) {
        let line = first_line(&t);
        self.wire.push((self.now - self.start, from, line.clone()));
        if (self.drop)(from, &line) {
            return;
        }
        let now = self.now;
        if t.destination == self.bob_addr {
            self.bob
                .handle_input(&t.bytes, from, self.bob_addr, t.transport, now);
        } else if t.destination == self.alice_addr {
            self.alice
                .handle_input(&t.bytes, from, self.alice_addr, t.transport, now);
        }
    }

    /// Advances simulated time by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let next = [self.alice.poll_timeout(), self.bob.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.alice.handle_timeout(now);
                    self.bob.handle_timeout(now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    /// Lines on the wire matching a prefix, with their times.
    pub fn sent(&self, from: SocketAddr, prefix: &str) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|(_, f, l)| *f == from && l.starts_with(prefix))
            .map(|(t, _, _)| *t)
            .collect()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
