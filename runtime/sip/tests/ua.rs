//! The UA core end to end: two user agents on a simulated network with simulated time,
//! including lost requests, responses and ACKs, CANCEL races, and session timers.

mod common;

use common::*;
use sma_sip::message::{Message, Method, NameAddr, Uri};
use sma_sip::transaction::Transmit;
use sma_sip::ua::{CallHandle, EndReason, OutgoingCall, UaEvent};
use sma_sip::Transport;
use std::time::Duration;

fn call_out(sim: &mut Sim) -> CallHandle {
    let target = Uri::parse("sip:+15550100@127.0.0.1:5060").unwrap();
    let now = sim.now;
    let call = sim.alice.invite(
        OutgoingCall {
            target: target.clone(),
            from: NameAddr::parse("<sip:alice@127.0.0.1>").unwrap(),
            to: NameAddr::new(target),
            destination: sim.bob_addr,
            transport: sim.transport,
            local: sim.alice_addr,
            body: SDP_OFFER.as_bytes().to_vec(),
            headers: Default::default(),
            credentials: None,
        },
        now,
    );
    sim.settle();
    call
}

fn incoming(sim: &Sim) -> CallHandle {
    sim.bob_events
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("bob saw the call")
}

fn ended(events: &[UaEvent]) -> Vec<EndReason> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Ended { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn answered(events: &[UaEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, UaEvent::Answered { .. }))
        .count()
}

fn confirmed(events: &[UaEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, UaEvent::Confirmed { .. }))
        .count()
}

fn answer(sim: &mut Sim, call: CallHandle) {
    let now = sim.now;
    assert!(sim.bob.answer(call, b"v=0\r\n".to_vec(), now));
    sim.settle();
}

#[test]
fn call_answered_and_hung_up_by_the_callee() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut sim = Sim::new(transport);
        let a = call_out(&mut sim);
        let b = incoming(&sim);
        let now = sim.now;
        sim.bob.ring(b, now);
        sim.settle();
        assert!(sim
            .alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Progress { response, .. } if response.status == 180)));
        answer(&mut sim, b);
        assert_eq!(answered(&sim.alice_events), 1);
        assert_eq!(confirmed(&sim.bob_events), 1);
        // Both sides hold the same dialog, seen from opposite ends.
        let (da, db) = (sim.alice.dialog(a).unwrap(), sim.bob.dialog(b).unwrap());
        assert_eq!(da.call_id, db.call_id);
        assert_eq!(da.remote_tag.as_deref(), Some(db.local_tag.as_str()));
        assert_eq!(db.remote_tag.as_deref(), Some(da.local_tag.as_str()));
        sim.advance(secs(10));
        let now = sim.now;
        sim.bob.hangup(b, 480, now);
        sim.settle();
        assert_eq!(ended(&sim.alice_events), vec![EndReason::RemoteBye]);
        assert_eq!(ended(&sim.bob_events), vec![EndReason::LocalBye]);
        sim.advance(secs(40));
        assert_eq!(sim.alice.transaction_count(), 0, "{transport}");
        assert_eq!(sim.bob.transaction_count(), 0, "{transport}");
        // No retransmission was needed on a lossless network.
        assert_eq!(sim.sent(sim.bob_addr, "SIP/2.0 200").len(), 1, "200 INVITE");
        assert_eq!(sim.sent(sim.alice_addr, "SIP/2.0 200").len(), 1, "200 BYE");
    }
}

#[test]
fn caller_hangs_up_with_bye() {
    let mut sim = Sim::new(Transport::Udp);
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    let now = sim.now;
    sim.alice.hangup(a, 0, now);
    sim.settle();
    assert_eq!(ended(&sim.bob_events), vec![EndReason::RemoteBye]);
    assert_eq!(ended(&sim.alice_events), vec![EndReason::LocalBye]);
    assert_eq!(sim.alice.call_count() + sim.bob.call_count(), 0);
}

#[test]
fn lost_invite_is_retransmitted() {
    let mut sim = Sim::new(Transport::Udp);
    let mut lost = 0;
    sim.drop = Box::new(move |_, line| {
        if line.starts_with("INVITE") && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    call_out(&mut sim);
    sim.advance(secs(2));
    assert_eq!(
        sim.sent(sim.alice_addr, "INVITE"),
        vec![Duration::ZERO, ms(500), ms(1500)]
    );
    let b = incoming(&sim);
    answer(&mut sim, b);
    assert_eq!(answered(&sim.alice_events), 1);
}

#[test]
fn lost_2xx_is_retransmitted_by_the_uas_core() {
    let mut sim = Sim::new(Transport::Udp);
    let mut lost = false;
    sim.drop = Box::new(move |_, line| {
        if line.starts_with("SIP/2.0 200") && !lost {
            lost = true;
            return true;
        }
        false
    });
    call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    assert_eq!(answered(&sim.alice_events), 0);
    sim.advance(secs(1));
    assert_eq!(answered(&sim.alice_events), 1);
    assert_eq!(confirmed(&sim.bob_events), 1);
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 200"),
        vec![Duration::ZERO, ms(500)]
    );
}

#[test]
fn lost_acks_are_resent_for_each_2xx_retransmission() {
    let mut sim = Sim::new(Transport::Udp);
    let mut lost = 0;
    sim.drop = Box::new(move |_, line| {
        if line.starts_with("ACK") && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    sim.advance(secs(5));
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 200"),
        vec![Duration::ZERO, ms(500), ms(1500)]
    );
    assert_eq!(sim.sent(sim.alice_addr, "ACK").len(), 3);
    assert_eq!(confirmed(&sim.bob_events), 1);
    assert_eq!(
        answered(&sim.alice_events),
        1,
        "retransmitted 2xx are not new answers"
    );
}

#[test]
fn never_acknowledged_answer_ends_with_bye_after_64_t1() {
    let mut sim = Sim::new(Transport::Udp);
    sim.drop = Box::new(|_, line| line.starts_with("ACK"));
    call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    sim.advance(secs(40));
    let times: Vec<f64> = sim
        .sent(sim.bob_addr, "SIP/2.0 200")
        .iter()
        .take(11)
        .map(Duration::as_secs_f64)
        .collect();
    assert_eq!(
        times,
        vec![0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(sim.sent(sim.bob_addr, "BYE"), vec![secs(32)]);
    assert_eq!(ended(&sim.bob_events), vec![EndReason::AckTimeout]);
    assert_eq!(ended(&sim.alice_events), vec![EndReason::RemoteBye]);
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let mut sim = Sim::new(Transport::Udp);
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    let now = sim.now;
    sim.bob.ring(b, now);
    sim.settle();
    sim.advance(secs(3));
    let now = sim.now;
    sim.alice.hangup(a, 0, now);
    sim.settle();
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 200").len(),
        1,
        "200 to the CANCEL"
    );
    assert_eq!(sim.sent(sim.bob_addr, "SIP/2.0 487").len(), 1);
    assert_eq!(
        sim.sent(sim.alice_addr, "ACK").len(),
        1,
        "the 487 is acknowledged"
    );
    assert_eq!(ended(&sim.bob_events), vec![EndReason::Cancelled]);
    assert_eq!(ended(&sim.alice_events), vec![EndReason::LocalBye]);
    // The answer after a CANCEL does nothing.
    let now = sim.now;
    assert!(!sim.bob.answer(b, b"v=0\r\n".to_vec(), now));
    sim.advance(secs(40));
    assert_eq!(
        sim.bob.transaction_count() + sim.alice.transaction_count(),
        0
    );
}

#[test]
fn cancel_racing_the_200_ends_with_bye() {
    let mut sim = Sim::new(Transport::Udp);
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    // Both act before either message crosses the wire.
    let now = sim.now;
    sim.alice.hangup(a, 0, now);
    assert!(sim.bob.answer(b, b"v=0\r\n".to_vec(), now));
    sim.settle();
    assert!(
        sim.sent(sim.bob_addr, "SIP/2.0 487").is_empty(),
        "the 200 won"
    );
    assert_eq!(sim.sent(sim.alice_addr, "ACK").len(), 1);
    assert_eq!(sim.sent(sim.alice_addr, "BYE").len(), 1);
    assert_eq!(ended(&sim.bob_events), vec![EndReason::RemoteBye]);
    assert_eq!(ended(&sim.alice_events), vec![EndReason::LocalBye]);
}

#[test]
fn rejected_call_is_acknowledged_by_the_transaction() {
    let mut sim = Sim::new(Transport::Udp);
    call_out(&mut sim);
    let b = incoming(&sim);
    let now = sim.now;
    sim.bob.reject(b, 486, now);
    sim.settle();
    assert_eq!(ended(&sim.alice_events), vec![EndReason::Rejected(486)]);
    assert_eq!(ended(&sim.bob_events), vec![EndReason::Rejected(486)]);
    assert_eq!(sim.sent(sim.alice_addr, "ACK").len(), 1);
    sim.advance(secs(40));
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 486").len(),
        1,
        "ACK stopped Timer G"
    );
}

#[test]
fn unanswered_invite_times_out() {
    let mut sim = Sim::new(Transport::Udp);
    sim.drop = Box::new(|from, _| from == "127.0.0.1:5070".parse().unwrap());
    call_out(&mut sim);
    sim.advance(secs(33));
    assert_eq!(ended(&sim.alice_events), vec![EndReason::Timeout]);
}

#[test]
fn an_invite_the_transport_cannot_deliver_ends_at_once_with_the_reason() {
    let mut sim = Sim::new(Transport::Tls);
    sim.drop = Box::new(|from, _| from == "127.0.0.1:5070".parse().unwrap());
    call_out(&mut sim);
    let now = sim.now;
    let (bob, alice) = (sim.bob_addr, sim.alice_addr);
    // Another destination's failure leaves the call alone.
    sim.alice
        .handle_transport_failure(alice, Transport::Tls, "elsewhere", now);
    sim.alice
        .handle_transport_failure(bob, Transport::Tcp, "other transport", now);
    sim.settle();
    assert!(ended(&sim.alice_events).is_empty());
    sim.alice.handle_transport_failure(
        bob,
        Transport::Tls,
        "TLS handshake failed: invalid peer certificate: UnknownIssuer",
        now,
    );
    sim.settle();
    assert_eq!(
        ended(&sim.alice_events),
        vec![EndReason::Unreachable(
            "TLS handshake failed: invalid peer certificate: UnknownIssuer".into()
        )]
    );
    assert_eq!(sim.alice.transaction_count(), 0, "the transaction is gone");
    // Timer B, later, reports nothing more.
    sim.advance(secs(40));
    assert_eq!(ended(&sim.alice_events).len(), 1);
}

/// Sends raw text to bob and returns what bob sends back.
fn to_bob(sim: &mut Sim, text: &str) -> Vec<Transmit> {
    let now = sim.now;
    let bytes = text.replace("\r\n", "\n").replace('\n', "\r\n");
    sim.bob.handle_input(
        bytes.as_bytes(),
        sim.alice_addr,
        sim.bob_addr,
        Transport::Udp,
        now,
    );
    let mut out = Vec::new();
    while let Some(t) = sim.bob.poll_transmit() {
        out.push(t);
    }
    while let Some(e) = sim.bob.poll_event() {
        sim.bob_events.push(e);
    }
    out
}

fn status_of(t: &Transmit) -> (u16, sma_sip::Response) {
    match parsed(t) {
        Message::Response(r) => (r.status, r),
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

#[test]
fn options_is_answered_with_capabilities() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text("z9hG4bKo1", "UDP", "")
        .replace("INVITE sip", "OPTIONS sip")
        .replace("1 INVITE", "1 OPTIONS");
    let out = to_bob(&mut sim, &text);
    let (status, r) = status_of(&out[0]);
    assert_eq!(status, 200);
    assert!(r.headers.get("Allow").unwrap().contains("INVITE"));
    assert!(r.headers.get("Allow").unwrap().contains("UPDATE"));
    assert_eq!(r.headers.get("Accept"), Some("application/sdp"));
    assert_eq!(r.headers.get("Supported"), Some("timer"));
}

#[test]
fn unsupported_required_extension_gets_420() {
    let mut sim = Sim::new(Transport::Udp);
    let out = to_bob(
        &mut sim,
        &invite_text("z9hG4bKq1", "UDP", "Require: 100rel, foo\n"),
    );
    let (status, r) = status_of(out.last().unwrap());
    assert_eq!(status, 420);
    assert_eq!(r.headers.get("Unsupported"), Some("100rel, foo"));
    assert_eq!(sim.bob.call_count(), 0);
}

#[test]
fn unknown_methods_get_501_and_known_unsupported_get_405() {
    let mut sim = Sim::new(Transport::Udp);
    let foo = invite_text("z9hG4bKm1", "UDP", "")
        .replace("INVITE sip", "FOO sip")
        .replace("1 INVITE", "1 FOO");
    assert_eq!(status_of(&to_bob(&mut sim, &foo)[0]).0, 501);
    let reg = invite_text("z9hG4bKm2", "UDP", "")
        .replace("INVITE sip", "REGISTER sip")
        .replace("1 INVITE", "1 REGISTER");
    let (status, r) = status_of(&to_bob(&mut sim, &reg)[0]);
    assert_eq!(status, 405);
    assert!(r.headers.get("Allow").is_some());
}

#[test]
fn an_offer_that_is_not_sdp_gets_415_and_a_request_refusing_sdp_gets_406() {
    let mut sim = Sim::new(Transport::Udp);
    // A body of another type, with Content-Length counting it.
    let body = "<xml/>";
    let text = invite_text("z9hG4bKt1", "UDP", "Content-Type: application/xml\n").replace(
        "Content-Length: 0\n\n",
        &format!("Content-Length: {}\n\n{body}", body.len()),
    );
    let (status, r) = status_of(to_bob(&mut sim, &text).last().unwrap());
    assert_eq!(status, 415);
    assert_eq!(r.headers.get("Accept"), Some("application/sdp"));
    assert!(r.to.tag().is_some());
    assert_eq!(sim.bob.call_count(), 0, "refused before any call exists");
    // Compressed SDP is no SDP this UA can read.
    let text = invite_text(
        "z9hG4bKt2",
        "UDP",
        "Content-Type: application/sdp\nContent-Encoding: gzip\n",
    )
    .replace("Content-Length: 0\n\n", "Content-Length: 3\n\nabc");
    let (status, r) = status_of(to_bob(&mut sim, &text).last().unwrap());
    assert_eq!(status, 415);
    assert_eq!(r.headers.get("Accept-Encoding"), Some("identity"));
    // Accept without SDP (RFC 3261 §21.4.7): our answer could not be read.
    let text = invite_text("z9hG4bKt3", "UDP", "Accept: text/plain, application/isup\n");
    assert_eq!(status_of(to_bob(&mut sim, &text).last().unwrap()).0, 406);
    // Accept ranges that include SDP are fine.
    for (i, accept) in ["application/*", "*/*;q=0.5", "text/plain, application/SDP"]
        .iter()
        .enumerate()
    {
        let text = invite_text(
            &format!("z9hG4bKt4{i}"),
            "UDP",
            &format!("Accept: {accept}\n"),
        )
        .replace("call-1@test", &format!("call-accept-{i}"));
        let out = to_bob(&mut sim, &text);
        assert!(
            out.iter().all(|t| status_of(t).0 < 400),
            "{accept}: {:?}",
            out.iter().map(|t| status_of(t).0).collect::<Vec<_>>()
        );
    }
    assert_eq!(sim.bob.call_count(), 3);
}

#[test]
fn max_forwards_zero_gets_483() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text("z9hG4bKh1", "UDP", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let out = to_bob(&mut sim, &text);
    assert_eq!(status_of(out.last().unwrap()).0, 483);
}

#[test]
fn requests_outside_any_dialog_get_481() {
    let mut sim = Sim::new(Transport::Udp);
    let bye = invite_text("z9hG4bKb1", "UDP", "")
        .replace("INVITE sip", "BYE sip")
        .replace("1 INVITE", "1 BYE")
        .replace(
            "To: <sip:+15550100@127.0.0.1>",
            "To: <sip:+15550100@127.0.0.1>;tag=nope",
        );
    assert_eq!(status_of(&to_bob(&mut sim, &bye)[0]).0, 481);
    let cancel = invite_text("z9hG4bKnomatch", "UDP", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    assert_eq!(status_of(&to_bob(&mut sim, &cancel)[0]).0, 481);
}

#[test]
fn malformed_request_gets_400_naming_the_problem_and_garbage_is_counted() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text("z9hG4bKx1", "UDP", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    let out = to_bob(&mut sim, &text);
    let (status, r) = status_of(&out[0]);
    assert_eq!(status, 400);
    assert!(r.reason.contains("CSeq method"), "{}", r.reason);
    assert_eq!(out[0].destination, sim.alice_addr);
    assert!(to_bob(&mut sim, "\u{1}\u{2}garbage\n\n").is_empty());
    assert_eq!(sim.bob.counters.dropped, 1);
    assert!(sim
        .bob_events
        .iter()
        .any(|e| matches!(e, UaEvent::Dropped { .. })));
}

#[test]
fn reinvite_for_hold_reaches_the_application_and_is_answered() {
    let mut sim = Sim::new(Transport::Udp);
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    // Alice puts bob on hold with a re-INVITE built from her dialog.
    let mut dialog = sim.alice.dialog(a).unwrap().clone();
    let mut reinvite = dialog.request(sma_sip::Method::Invite, "z9hG4bKhold1", "test");
    reinvite.headers.push("Content-Type", "application/sdp");
    reinvite.body = SDP_OFFER.replace("sendrecv", "sendonly").into_bytes();
    let text = String::from_utf8(reinvite.to_bytes()).unwrap();
    let out = to_bob(&mut sim, &text);
    assert_eq!(status_of(&out[0]).0, 100);
    let (call, tx) = sim
        .bob_events
        .iter()
        .find_map(|e| match e {
            UaEvent::Offer { call, tx, request } => {
                assert!(String::from_utf8_lossy(&request.body).contains("sendonly"));
                Some((*call, *tx))
            }
            _ => None,
        })
        .expect("offer event");
    assert_eq!(call, b);
    // A second offer while this one is pending gets 491.
    let mut second = dialog.request(sma_sip::Method::Update, "z9hG4bKhold2", "test");
    second.headers.push("Content-Type", "application/sdp");
    second.body = b"v=0\r\n".to_vec();
    let out = to_bob(&mut sim, &String::from_utf8(second.to_bytes()).unwrap());
    assert!(!out.is_empty(), "{:?}", sim.bob_events.last());
    assert_eq!(status_of(&out[0]).0, 491);
    let now = sim.now;
    sim.bob
        .answer_offer(b, tx, Ok(b"v=0\r\na=recvonly\r\n".to_vec()), now);
    let mut sent = Vec::new();
    while let Some(t) = sim.bob.poll_transmit() {
        sent.push(t);
    }
    let (status, r) = status_of(&sent[0]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("recvonly"));
    // Out-of-order CSeq gets 500.
    let mut stale = reinvite.clone();
    stale.cseq.seq -= 5;
    stale.via[0]
        .params
        .set("branch", Some("z9hG4bKstale".into()));
    let out = to_bob(&mut sim, &String::from_utf8(stale.to_bytes()).unwrap());
    assert_eq!(status_of(out.last().unwrap()).0, 500);
}

#[test]
fn session_timer_is_refreshed_by_the_uac_with_update() {
    let mut sim = Sim::new(Transport::Udp);
    call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    // Alice offered Session-Expires 1800 with Supported: timer; bob's 200 makes her refresher.
    sim.advance(secs(4000));
    assert!(ended(&sim.bob_events).is_empty(), "{:?}", sim.bob_events);
    assert!(ended(&sim.alice_events).is_empty());
    let updates = sim.sent(sim.alice_addr, "UPDATE");
    assert_eq!(
        updates.first().map(Duration::as_secs),
        Some(900),
        "refresh at half the interval"
    );
    assert!(updates.len() >= 4, "{updates:?}");
}

#[test]
fn session_expires_without_refresh_and_the_uas_sends_bye() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text(
        "z9hG4bKexp",
        "UDP",
        "Supported: timer\nSession-Expires: 1800;refresher=uac\n",
    );
    to_bob(&mut sim, &text);
    let b = incoming(&sim);
    let now = sim.now;
    sim.bob.answer(b, b"v=0\r\n".to_vec(), now);
    let ok = sim.bob.poll_transmit().unwrap();
    let (_, r) = status_of(&ok);
    assert_eq!(r.headers.get("Session-Expires"), Some("1800;refresher=uac"));
    let ack = invite_text("z9hG4bKexpack", "UDP", "")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:+15550100@127.0.0.1>",
            &format!("To: <sip:+15550100@127.0.0.1>;tag={}", r.to.tag().unwrap()),
        );
    to_bob(&mut sim, &ack);
    // No refresh ever comes: BYE at 1800 - min(32, 600) = 1768 s.
    let start = sim.now;
    sim.now = start + secs(1767);
    let now = sim.now;
    sim.bob.handle_timeout(now);
    assert!(sim.bob.poll_transmit().is_none());
    sim.now = start + secs(1768);
    let now = sim.now;
    sim.bob.handle_timeout(now);
    let bye = sim.bob.poll_transmit().expect("BYE");
    assert!(first_line(&bye).starts_with("BYE"));
    while let Some(e) = sim.bob.poll_event() {
        sim.bob_events.push(e);
    }
    assert_eq!(ended(&sim.bob_events), vec![EndReason::SessionExpired]);
}

#[test]
fn reinvite_and_update_from_this_side_are_answered_and_acknowledged() {
    let mut sim = Sim::new(Transport::Udp);
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    for invite in [true, false] {
        let now = sim.now;
        let hold = SDP_OFFER.replace("sendrecv", "sendonly").into_bytes();
        assert!(sim.alice.reoffer(a, hold, invite, now));
        sim.settle();
        let tx = sim
            .bob_events
            .iter()
            .rev()
            .find_map(|e| match e {
                UaEvent::Offer { tx, .. } => Some(*tx),
                _ => None,
            })
            .expect("bob got the offer");
        let now = sim.now;
        sim.bob
            .answer_offer(b, tx, Ok(b"v=0\r\na=recvonly\r\n".to_vec()), now);
        sim.settle();
        let answered = sim
            .alice_events
            .iter()
            .filter(|e| matches!(e, UaEvent::OfferAnswered { .. }))
            .count();
        assert_eq!(answered, if invite { 1 } else { 2 });
    }
    assert_eq!(
        sim.sent(sim.alice_addr, "ACK").len(),
        2,
        "initial INVITE and re-INVITE"
    );
    sim.advance(secs(5));
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 200").len(),
        3,
        "the re-INVITE's 200 was acknowledged: no retransmission"
    );
    assert!(ended(&sim.bob_events).is_empty());
}

#[test]
fn uac_answers_a_digest_challenge_once() {
    use sma_sip::auth::{Credentials, DigestServer};
    let mut sim = Sim::new(Transport::Udp);
    let target = Uri::parse("sip:+15550100@127.0.0.1:5060").unwrap();
    let now = sim.now;
    let call = sim.alice.invite(
        OutgoingCall {
            target: target.clone(),
            from: NameAddr::parse("<sip:alice@127.0.0.1>").unwrap(),
            to: NameAddr::new(target),
            destination: sim.bob_addr,
            transport: Transport::Udp,
            local: sim.alice_addr,
            body: SDP_OFFER.as_bytes().to_vec(),
            headers: Default::default(),
            credentials: Some(Credentials {
                username: "pbx".into(),
                password: "s3cret".into(),
            }),
        },
        now,
    );
    let server = DigestServer::new("sma.test", [9; 32], now);
    let first = sim.alice.poll_transmit().unwrap();
    let Message::Request(invite) = parsed(&first) else {
        panic!()
    };
    let mut challenge = invite.response(407);
    challenge.to = challenge.to.with_tag("srv");
    for value in server.challenges(now, false) {
        challenge.headers.push("Proxy-Authenticate", value);
    }
    sim.alice.handle_input(
        &challenge.to_bytes(),
        sim.bob_addr,
        sim.alice_addr,
        Transport::Udp,
        now,
    );
    let mut sent: Vec<Transmit> = Vec::new();
    while let Some(t) = sim.alice.poll_transmit() {
        sent.push(t);
    }
    assert!(
        first_line(&sent[0]).starts_with("ACK"),
        "the 407 is acknowledged"
    );
    let Message::Request(retry) = parsed(&sent[1]) else {
        panic!()
    };
    assert_eq!(retry.cseq.seq, invite.cseq.seq + 1);
    assert_ne!(retry.branch(), invite.branch());
    let lookup = |u: &str| (u == "pbx").then(|| "s3cret".to_string());
    let auth = retry.headers.get("Proxy-Authorization");
    assert_eq!(server.verify(auth, "INVITE", lookup, now).unwrap(), "pbx");
    // A second challenge is not answered again: the call fails with it.
    let mut again = retry.response(407);
    again.to = again.to.with_tag("srv2");
    for value in server.challenges(now, false) {
        again.headers.push("Proxy-Authenticate", value);
    }
    sim.alice.handle_input(
        &again.to_bytes(),
        sim.bob_addr,
        sim.alice_addr,
        Transport::Udp,
        now,
    );
    while let Some(e) = sim.alice.poll_event() {
        sim.alice_events.push(e);
    }
    assert_eq!(ended(&sim.alice_events), vec![EndReason::Rejected(407)]);
    let _ = call;
}

#[test]
fn session_timer_with_uas_refresher_sends_update_at_half_interval() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text(
        "z9hG4bKst1",
        "UDP",
        "Supported: timer\nSession-Expires: 120;refresher=uas\n",
    );
    let out = to_bob(&mut sim, &text);
    assert_eq!(status_of(&out[0]).0, 100);
    let b = incoming(&sim);
    let now = sim.now;
    sim.bob.answer(b, b"v=0\r\n".to_vec(), now);
    let t = sim.bob.poll_transmit().unwrap();
    let (status, r) = status_of(&t);
    assert_eq!(status, 200);
    assert_eq!(r.headers.get("Session-Expires"), Some("120;refresher=uas"));
    assert_eq!(r.headers.get("Require"), Some("timer"));
    // ACK it.
    let ack = invite_text("z9hG4bKst1ack", "UDP", "")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:+15550100@127.0.0.1>",
            &format!("To: <sip:+15550100@127.0.0.1>;tag={}", r.to.tag().unwrap()),
        );
    to_bob(&mut sim, &ack);
    assert_eq!(confirmed(&sim.bob_events), 1);
    // Bob refreshes with UPDATE at 60 s.
    sim.now += secs(60);
    let now = sim.now;
    sim.bob.handle_timeout(now);
    let update = sim.bob.poll_transmit().expect("refresh");
    assert!(first_line(&update).starts_with("UPDATE"));
}

#[test]
fn too_small_session_interval_gets_422_with_min_se() {
    let mut sim = Sim::new(Transport::Udp);
    let out = to_bob(
        &mut sim,
        &invite_text("z9hG4bKst2", "UDP", "Session-Expires: 30\n"),
    );
    let (status, r) = status_of(out.last().unwrap());
    assert_eq!(status, 422);
    assert_eq!(r.headers.get("Min-SE"), Some("90"));
}

#[test]
fn uas_hangup_before_the_ack_waits_for_it() {
    let mut sim = Sim::new(Transport::Udp);
    let mut held = true;
    // The first ACK is lost, so bob's hang-up comes while the 2xx is unacknowledged.
    sim.drop = Box::new(move |_, line| {
        if line.starts_with("ACK") && held {
            held = false;
            return true;
        }
        false
    });
    call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    let now = sim.now;
    sim.bob.hangup(b, 480, now);
    sim.settle();
    assert!(
        sim.sent(sim.bob_addr, "BYE").is_empty(),
        "no BYE before the ACK"
    );
    sim.advance(secs(1));
    assert_eq!(
        sim.sent(sim.bob_addr, "BYE"),
        vec![ms(500)],
        "BYE right after the ACK"
    );
    assert_eq!(ended(&sim.alice_events), vec![EndReason::RemoteBye]);
    assert_eq!(ended(&sim.bob_events), vec![EndReason::LocalBye]);
}

#[test]
fn record_route_becomes_the_route_set_of_in_dialog_requests() {
    let mut sim = Sim::new(Transport::Udp);
    let text = invite_text(
        "z9hG4bKrr1",
        "UDP",
        "Record-Route: <sip:10.0.0.9:5099;lr>, <sip:10.0.0.8;lr>\n",
    );
    to_bob(&mut sim, &text);
    let b = incoming(&sim);
    let now = sim.now;
    sim.bob.answer(b, b"v=0\r\n".to_vec(), now);
    let ok = sim.bob.poll_transmit().unwrap();
    let (_, r) = status_of(&ok);
    assert_eq!(r.record_route.len(), 2, "the 200 echoes Record-Route");
    let ack = invite_text("z9hG4bKrr1ack", "UDP", "")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:+15550100@127.0.0.1>",
            &format!("To: <sip:+15550100@127.0.0.1>;tag={}", r.to.tag().unwrap()),
        );
    to_bob(&mut sim, &ack);
    let now = sim.now;
    sim.bob.hangup(b, 480, now);
    let bye = sim.bob.poll_transmit().expect("BYE");
    let Message::Request(bye_req) = parsed(&bye) else {
        panic!()
    };
    // UAS: the route set is the Record-Route in order; the BYE goes to the first (loose) route
    // with the caller's Contact as Request-URI.
    assert_eq!(bye.destination, addr("10.0.0.9:5099"));
    assert_eq!(bye_req.route.len(), 2);
    assert_eq!(bye_req.route[0].uri.to_string(), "sip:10.0.0.9:5099;lr");
    assert_eq!(bye_req.uri.to_string(), "sip:alice@127.0.0.1:5070");
    assert_eq!(bye_req.to.tag(), Some("from1"));
}

#[test]
fn a_registration_answers_its_challenge_honours_the_granted_expiry_and_refreshes() {
    use sma_sip::auth::{Credentials, DigestServer};
    use sma_sip::ua::Registration;
    let mut sim = Sim::new(Transport::Udp);
    let now = sim.now;
    let registration = sim.alice.register(
        Registration {
            registrar: Uri::parse("sip:carrier.example").unwrap(),
            aor: NameAddr::parse("<sip:+12065550100@carrier.example>").unwrap(),
            destination: sim.bob_addr,
            transport: Transport::Udp,
            local: sim.alice_addr,
            expires: 3600,
            credentials: Some(Credentials {
                username: "trunk".into(),
                password: "s3cret".into(),
            }),
        },
        now,
    );
    let server = DigestServer::new("carrier.example", [7; 32], now);
    let Message::Request(first) = parsed(&sim.alice.poll_transmit().unwrap()) else {
        panic!()
    };
    assert_eq!(first.method, Method::Register);
    assert_eq!(first.headers.get("Expires"), Some("3600"));
    // Calls for the number come back to the number at our address.
    assert_eq!(first.contact[0].uri.user.as_deref(), Some("+12065550100"));
    let mut challenge = first.response(401);
    challenge.to = challenge.to.with_tag("reg");
    for value in server.challenges(now, false) {
        challenge.headers.push("WWW-Authenticate", value);
    }
    sim.alice.handle_input(
        &challenge.to_bytes(),
        sim.bob_addr,
        sim.alice_addr,
        Transport::Udp,
        now,
    );
    let Message::Request(retry) = parsed(&sim.alice.poll_transmit().unwrap()) else {
        panic!()
    };
    assert_eq!(retry.cseq.seq, first.cseq.seq + 1);
    assert_eq!(retry.call_id, first.call_id, "one Call-ID per registration");
    let lookup = |u: &str| (u == "trunk").then(|| "s3cret".to_string());
    assert_eq!(
        server
            .verify(retry.headers.get("Authorization"), "REGISTER", lookup, now)
            .unwrap(),
        "trunk"
    );
    // The registrar grants 120 s on our Contact.
    let mut ok = retry.response(200);
    ok.to = ok.to.with_tag("reg");
    let mut contact = retry.contact[0].clone();
    contact.params.set("expires", Some("120".into()));
    ok.contact = vec![contact];
    sim.alice.handle_input(
        &ok.to_bytes(),
        sim.bob_addr,
        sim.alice_addr,
        Transport::Udp,
        now,
    );
    let events: Vec<UaEvent> = std::iter::from_fn(|| sim.alice.poll_event()).collect();
    assert!(
        events.contains(&UaEvent::Registered {
            registration,
            expires: 120
        }),
        "{events:?}"
    );
    // Refreshed at half the granted time, not before.
    let at = |secs: u64| now + Duration::from_secs(secs);
    sim.alice.handle_timeout(at(59));
    assert!(std::iter::from_fn(|| sim.alice.poll_transmit())
        .all(|t| !first_line(&t).starts_with("REGISTER")));
    sim.alice.handle_timeout(at(60));
    let refresh: Vec<Transmit> = std::iter::from_fn(|| sim.alice.poll_transmit()).collect();
    assert!(
        refresh
            .iter()
            .any(|t| first_line(t).starts_with("REGISTER")),
        "no refresh at 60 s"
    );
    // A refresh nobody answers is reported, and tried again later.
    sim.alice.handle_timeout(at(60 + 33));
    let events: Vec<UaEvent> = std::iter::from_fn(|| sim.alice.poll_event()).collect();
    assert!(
        events.contains(&UaEvent::RegistrationFailed {
            registration,
            status: 408
        }),
        "{events:?}"
    );
}

#[test]
fn a_bye_that_overtakes_the_200_ends_the_call_cleanly() {
    // The far end answers and hangs up at once; on UDP its BYE arrives before its 200 OK
    // (the first 200 is lost, the BYE is not, the retransmitted 200 comes after).
    let mut sim = Sim::new(Transport::Udp);
    let mut first_200 = true;
    sim.drop = Box::new(move |_, line| {
        if line.starts_with("SIP/2.0 200") && std::mem::take(&mut first_200) {
            return true;
        }
        false
    });
    let a = call_out(&mut sim);
    let b = incoming(&sim);
    answer(&mut sim, b);
    assert_eq!(answered(&sim.alice_events), 0, "the 200 was lost");
    let mut dialog = sim.bob.dialog(b).expect("bob's dialog").clone();
    let bye = dialog.request(Method::Bye, "z9hG4bKovertaking", "bob");
    let bytes = Message::Request(bye).to_bytes();
    let now = sim.now;
    sim.alice
        .handle_input(&bytes, sim.bob_addr, sim.alice_addr, Transport::Udp, now);
    sim.settle();
    // Alice answers the BYE (it names her call) and ends the call once; the 200 that
    // arrives later is acknowledged (so bob stops retransmitting it) and the dialog it would
    // open is ended with a BYE; the application hears of the call's end only once and never
    // of an answer.
    let responses: Vec<String> = sim
        .wire
        .iter()
        .filter(|(_, from, line)| *from == sim.alice_addr && line.starts_with("SIP/2.0"))
        .map(|(_, _, line)| line.clone())
        .collect();
    assert_eq!(responses.len(), 1, "one response to the BYE: {responses:?}");
    sim.advance(secs(2));
    assert!(
        !sim.sent(sim.alice_addr, "ACK").is_empty(),
        "the late 200 is acknowledged"
    );
    assert_eq!(sim.sent(sim.alice_addr, "BYE").len(), 1);
    sim.advance(secs(40));
    let ends = ended(&sim.alice_events);
    assert_eq!(ends, vec![EndReason::RemoteBye], "alice's call ends once");
    assert_eq!(answered(&sim.alice_events), 0, "never reported answered");
    assert_eq!(
        sim.sent(sim.bob_addr, "SIP/2.0 200 OK").len(),
        3,
        "bob's 200 stopped at the ACK (the first lost, one retransmission, one to our BYE)"
    );
    assert!(sim.alice.dialog(a).is_none(), "alice keeps no dialog");
    assert_eq!(sim.alice.transaction_count(), 0);
}
