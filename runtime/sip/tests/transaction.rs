//! Every transaction state and timer path of RFC 3261 §17 (with RFC 6026), on simulated time.

mod common;

use common::*;
use sma_sip::message::Message;
use sma_sip::transaction::{State, TimerConfig, TransactionEvent, TransactionLayer, Transmit};
use sma_sip::Transport;
use std::time::{Duration, Instant};

const PEER: &str = "127.0.0.1:5070";

struct Harness {
    layer: TransactionLayer,
    start: Instant,
    now: Instant,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<TransactionEvent>,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        Harness {
            layer: TransactionLayer::new(TimerConfig::default()),
            start: now,
            now,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((self.now - self.start, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push(e);
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.layer.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = end;
        self.drain();
    }

    fn input(&mut self, text: &str, transport: Transport) {
        let message = parse(text);
        self.layer
            .handle_message(message, addr(PEER), transport, self.now);
        self.drain();
    }

    fn send_times(&self, prefix: &str) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|(_, t)| first_line(t).starts_with(prefix))
            .map(|(at, _)| *at)
            .collect()
    }

    fn timeouts(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, TransactionEvent::Timeout { .. }))
            .count()
    }

    fn terminated(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, TransactionEvent::Terminated { .. }))
            .count()
    }

    fn responses(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                TransactionEvent::Response { response, .. } => Some(response.status),
                _ => None,
            })
            .collect()
    }
}

fn invite(branch: &str) -> sma_sip::Request {
    request(&invite_text(branch, "UDP", ""))
}

fn reply(status: u16, branch: &str, method: &str, to_tag: &str) -> String {
    format!(
        "SIP/2.0 {status} Whatever\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\n\
From: <sip:alice@127.0.0.1>;tag=from1\n\
To: <sip:+15550100@127.0.0.1>{to_tag}\n\
Call-ID: call-1@test\n\
CSeq: 1 {method}\n\
Content-Length: 0\n\n"
    )
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\n\
Max-Forwards: 70\n\
From: <sip:alice@127.0.0.1>;tag=from1\n\
To: <sip:127.0.0.1>\n\
Call-ID: opt-1@test\n\
CSeq: 1 OPTIONS\n\
Content-Length: 0\n\n"
    )
}

fn secs_f(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---------- client INVITE ----------

#[test]
fn client_invite_timer_a_doubles_and_timer_b_times_out() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa1"), addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.advance(secs(40));
    // Sent at 0, then Timer A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 32 s.
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
        .into_iter()
        .map(secs_f)
        .collect();
    assert_eq!(h.send_times("INVITE"), expected);
    assert_eq!(h.timeouts(), 1);
    assert!(h.events.contains(&TransactionEvent::Timeout { id }));
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn client_invite_provisional_stops_retransmissions() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa2"), addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.advance(ms(600)); // one retransmission (lost request)
    h.input(
        &reply(180, "z9hG4bKa2", "INVITE", ";tag=t1"),
        Transport::Udp,
    );
    assert_eq!(h.layer.state(id), Some(State::Proceeding));
    h.advance(secs(60));
    assert_eq!(h.send_times("INVITE").len(), 2);
    assert_eq!(h.timeouts(), 0, "Timer B does not run in Proceeding");
    assert_eq!(h.responses(), vec![180]);
}

#[test]
fn client_invite_failure_generates_ack_and_absorbs_retransmissions() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa3"), addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.input(
        &reply(486, "z9hG4bKa3", "INVITE", ";tag=t1"),
        Transport::Udp,
    );
    assert_eq!(h.layer.state(id), Some(State::Completed));
    let acks = h.send_times("ACK");
    assert_eq!(acks.len(), 1);
    // The ACK carries the response's To tag and the INVITE's branch and CSeq number.
    let ack = h
        .sent
        .iter()
        .find(|(_, t)| first_line(t).starts_with("ACK"))
        .unwrap();
    let Message::Request(ack) = parsed(&ack.1) else {
        panic!()
    };
    assert_eq!(ack.to.tag(), Some("t1"));
    assert_eq!(ack.branch(), Some("z9hG4bKa3"));
    assert_eq!(ack.cseq.seq, 1);
    // Lost ACK: the server retransmits the 486; the transaction re-sends the ACK, TU sees one.
    h.advance(ms(500));
    h.input(
        &reply(486, "z9hG4bKa3", "INVITE", ";tag=t1"),
        Transport::Udp,
    );
    assert_eq!(h.send_times("ACK").len(), 2);
    assert_eq!(h.responses(), vec![486]);
    // Timer D (32 s) ends it.
    h.advance(secs(31));
    assert_eq!(h.layer.state(id), Some(State::Completed));
    h.advance(secs(1));
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn client_invite_success_goes_accepted_and_passes_2xx_retransmissions() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa4"), addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.input(
        &reply(200, "z9hG4bKa4", "INVITE", ";tag=t1"),
        Transport::Udp,
    );
    assert_eq!(h.layer.state(id), Some(State::Accepted));
    h.input(
        &reply(200, "z9hG4bKa4", "INVITE", ";tag=t1"),
        Transport::Udp,
    );
    assert_eq!(
        h.responses(),
        vec![200, 200],
        "the UAC core re-ACKs each 2xx"
    );
    assert!(
        h.send_times("ACK").is_empty(),
        "the transaction does not ACK a 2xx"
    );
    h.advance(secs(32)); // Timer M
    assert_eq!(h.layer.state(id), None);
    assert_eq!(h.terminated(), 1);
}

#[test]
fn client_invite_over_tcp_never_retransmits() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa5"), addr(PEER), Transport::Tcp, h.now);
    h.drain();
    h.advance(secs(40));
    assert_eq!(h.send_times("INVITE").len(), 1);
    assert!(h.events.contains(&TransactionEvent::Timeout { id }));
}

#[test]
fn client_invite_over_tcp_terminates_at_once_after_failure() {
    let mut h = Harness::new();
    let id = h
        .layer
        .send_request(invite("z9hG4bKa6"), addr(PEER), Transport::Tcp, h.now);
    h.drain();
    h.input(&reply(603, "z9hG4bKa6", "INVITE", ";tag=t"), Transport::Tcp);
    h.advance(Duration::ZERO);
    assert_eq!(
        h.layer.state(id),
        None,
        "Timer D is 0 on reliable transports"
    );
}

// ---------- client non-INVITE ----------

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() {
    let mut h = Harness::new();
    let req = request(&options("z9hG4bKn1"));
    let id = h.layer.send_request(req, addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.advance(secs(40));
    let times = h.send_times("OPTIONS");
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        .into_iter()
        .map(secs_f)
        .collect();
    assert_eq!(times, expected);
    assert!(h.events.contains(&TransactionEvent::Timeout { id }));
}

#[test]
fn client_non_invite_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let req = request(&options("z9hG4bKn2"));
    let id = h.layer.send_request(req, addr(PEER), Transport::Udp, h.now);
    h.drain();
    h.input(&reply(100, "z9hG4bKn2", "OPTIONS", ""), Transport::Udp);
    assert_eq!(h.layer.state(id), Some(State::Proceeding));
    h.advance(secs(10));
    // First Timer E still at 0.5 s, then every T2 (4 s): 4.5, 8.5.
    let expected: Vec<Duration> = [0.0, 0.5, 4.5, 8.5].into_iter().map(secs_f).collect();
    assert_eq!(h.send_times("OPTIONS"), expected);
    h.input(
        &reply(200, "z9hG4bKn2", "OPTIONS", ";tag=x"),
        Transport::Udp,
    );
    assert_eq!(h.layer.state(id), Some(State::Completed));
    // A retransmitted final response is absorbed.
    h.input(
        &reply(200, "z9hG4bKn2", "OPTIONS", ";tag=x"),
        Transport::Udp,
    );
    assert_eq!(h.responses(), vec![100, 200]);
    h.advance(secs(5)); // Timer K = T4
    assert_eq!(h.layer.state(id), None);
}

// ---------- server INVITE ----------

#[test]
fn server_invite_sends_trying_and_answers_retransmissions_with_last_provisional() {
    let mut h = Harness::new();
    h.input(&invite_text("z9hG4bKs1", "UDP", ""), Transport::Udp);
    assert_eq!(h.send_times("SIP/2.0 100").len(), 1);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    // A retransmitted INVITE (100 lost) gets the 100 again and does not reach the TU.
    h.input(&invite_text("z9hG4bKs1", "UDP", ""), Transport::Udp);
    assert_eq!(h.send_times("SIP/2.0 100").len(), 2);
    assert_eq!(h.events.len(), 1);
    let inv = h.layer.request(id).unwrap().clone();
    let mut ringing = inv.response(180);
    ringing.to = ringing.to.with_tag("srv");
    assert!(h.layer.send_response(id, &ringing, h.now));
    h.drain();
    h.input(&invite_text("z9hG4bKs1", "UDP", ""), Transport::Udp);
    assert_eq!(h.send_times("SIP/2.0 180").len(), 2);
}

#[test]
fn a_reused_branch_with_another_call_id_is_a_new_request() {
    let mut h = Harness::new();
    h.input(&invite_text("z9hG4bKreuse", "UDP", ""), Transport::Udp);
    // The same branch, sent-by and method, but another Call-ID: a careless client's new
    // call, not a retransmission (RFC 3261 §17.2.3 key plus the Call-ID).
    let other = invite_text("z9hG4bKreuse", "UDP", "").replace("call-1@test", "call-2@test");
    h.input(&other, Transport::Udp);
    let ids: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            TransactionEvent::Request { id: Some(id), .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2, "{:?}", h.events);
    assert_ne!(ids[0], ids[1]);
    // A true retransmission (same Call-ID too) is still absorbed.
    h.input(&other, Transport::Udp);
    assert_eq!(
        h.events
            .iter()
            .filter(|e| matches!(e, TransactionEvent::Request { .. }))
            .count(),
        2
    );
}

#[test]
fn server_invite_failure_timer_g_until_ack_then_timer_i() {
    let mut h = Harness::new();
    h.input(&invite_text("z9hG4bKs2", "UDP", ""), Transport::Udp);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    let inv = h.layer.request(id).unwrap().clone();
    let mut busy = inv.response(486);
    busy.to = busy.to.with_tag("srv");
    h.layer.send_response(id, &busy, h.now);
    h.drain();
    assert_eq!(h.layer.state(id), Some(State::Completed));
    h.advance(secs(8));
    // Sent at 0 and retransmitted by Timer G at 0.5, 1.5, 3.5, 7.5 s (capped at T2 after).
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5].into_iter().map(secs_f).collect();
    assert_eq!(h.send_times("SIP/2.0 486"), expected);
    // The ACK arrives (same branch): Confirmed, retransmissions stop, later ACKs absorbed.
    let ack = invite_text("z9hG4bKs2", "UDP", "")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:+15550100@127.0.0.1>",
            "To: <sip:+15550100@127.0.0.1>;tag=srv",
        );
    h.input(&ack, Transport::Udp);
    assert_eq!(h.layer.state(id), Some(State::Confirmed));
    h.input(&ack, Transport::Udp);
    assert_eq!(h.events.len(), 1, "ACKs for a non-2xx never reach the TU");
    h.advance(secs(4));
    assert_eq!(h.send_times("SIP/2.0 486").len(), 5);
    assert_eq!(h.layer.state(id), Some(State::Confirmed));
    h.advance(secs(1)); // Timer I = T4
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn server_invite_failure_without_ack_fires_timer_h() {
    let mut h = Harness::new();
    h.input(&invite_text("z9hG4bKs3", "UDP", ""), Transport::Udp);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    let inv = h.layer.request(id).unwrap().clone();
    h.layer.send_response(id, &inv.response(404), h.now);
    h.drain();
    h.advance(secs(40));
    let times = h.send_times("SIP/2.0 404");
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        .into_iter()
        .map(secs_f)
        .collect();
    assert_eq!(times, expected);
    assert!(h.events.contains(&TransactionEvent::AckTimeout { id }));
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn server_invite_success_absorbs_retransmitted_invite_until_timer_l() {
    let mut h = Harness::new();
    h.input(&invite_text("z9hG4bKs4", "UDP", ""), Transport::Udp);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    let inv = h.layer.request(id).unwrap().clone();
    h.layer.send_response(id, &inv.response(200), h.now);
    h.drain();
    assert_eq!(h.layer.state(id), Some(State::Accepted));
    h.advance(secs(5));
    // A late INVITE retransmission: absorbed, not a new call, no response from the layer.
    h.input(&invite_text("z9hG4bKs4", "UDP", ""), Transport::Udp);
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.send_times("SIP/2.0 200").len(), 1);
    h.advance(secs(27)); // Timer L = 64*T1
    assert_eq!(h.layer.state(id), None);
}

// ---------- server non-INVITE ----------

#[test]
fn server_non_invite_absorbs_then_replays_final_until_timer_j() {
    let mut h = Harness::new();
    h.input(&options("z9hG4bKs5"), Transport::Udp);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    assert_eq!(h.layer.state(id), Some(State::Trying));
    h.input(&options("z9hG4bKs5"), Transport::Udp);
    assert!(h.sent.is_empty(), "nothing to replay in Trying");
    assert_eq!(h.events.len(), 1);
    let req = h.layer.request(id).unwrap().clone();
    h.layer.send_response(id, &req.response(200), h.now);
    h.drain();
    h.input(&options("z9hG4bKs5"), Transport::Udp);
    assert_eq!(h.send_times("SIP/2.0 200").len(), 2);
    h.advance(secs(31));
    assert_eq!(h.layer.state(id), Some(State::Completed));
    h.advance(secs(1)); // Timer J = 64*T1
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn server_non_invite_over_tcp_timer_j_is_zero() {
    let mut h = Harness::new();
    h.input(&options("z9hG4bKs6").replace("UDP", "TCP"), Transport::Tcp);
    let id = match &h.events[0] {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    let req = h.layer.request(id).unwrap().clone();
    h.layer.send_response(id, &req.response(200), h.now);
    h.drain();
    h.advance(Duration::ZERO);
    assert_eq!(h.layer.state(id), None);
}

#[test]
fn responses_go_to_rport_source_or_via_port() {
    let mut h = Harness::new();
    // rport present: the response goes to the packet's source (5070 here, from PEER).
    h.input(&invite_text("z9hG4bKr1", "UDP", ""), Transport::Udp);
    assert_eq!(h.sent[0].1.destination, addr(PEER));
    let Message::Response(trying) = parsed(&h.sent[0].1) else {
        panic!()
    };
    assert_eq!(trying.via[0].params.get("rport"), Some(Some("5070")));
    // No rport, a sent-by that differs from the source: `received` added, Via port used.
    let text = options("z9hG4bKr2").replace("127.0.0.1:5070;branch", "10.9.9.9:5099;branch");
    h.input(&text, Transport::Udp);
    let id = match h.events.last().unwrap() {
        TransactionEvent::Request { id: Some(id), .. } => *id,
        e => panic!("{e:?}"),
    };
    let req = h.layer.request(id).unwrap().clone();
    assert_eq!(req.via[0].params.get("received"), Some(Some("127.0.0.1")));
    h.layer.send_response(id, &req.response(200), h.now);
    h.drain();
    assert_eq!(h.sent.last().unwrap().1.destination, addr("127.0.0.1:5099"));
}

#[test]
fn stray_responses_reach_the_tu_without_a_transaction() {
    let mut h = Harness::new();
    h.input(
        &reply(200, "z9hG4bKnone", "INVITE", ";tag=x"),
        Transport::Udp,
    );
    assert!(matches!(
        h.events[0],
        TransactionEvent::StrayResponse { .. }
    ));
    assert!(h.layer.is_empty());
}
