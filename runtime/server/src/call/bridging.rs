//! `CallAndBridge` (contract §3.1): dialing the second leg route by route, the caller's
//! ringback, and the media between the two legs once it answers.
//!
//! Dialing: the routes of [`crate::outbound::plan`] are tried in order. An attempt that
//! gets no response at all within `[calls] route_response_timeout_ms`, cannot be sent, or
//! fails with 408 or 5xx moves on to the next route; any other final response (busy,
//! declined, not found) ends the dialing, as does `CallTimeoutSeconds` (counted from the
//! first INVITE). Each attempt's outcome goes into the second leg's call record.
//!
//! While it rings, an unanswered caller hears the `RingbackTone` as early media (183), or
//! gets the far end's ringing relayed as 180; an answered caller hears the tone in-band, or
//! silence. When the far end answers, the caller is answered too (if it was not), the engine
//! adds LEG-B, and the media of the two legs is connected, each direction relayed without
//! decoding when both legs speak the same codec and packet time, through PCM otherwise
//! ([`sma_media::bridge`]).

use super::actor::{Actor, DialRequest, Leg, MediaUpdate, Running, SipCommand, SipSignal};
use crate::cdr::CallRecord;
use crate::outbound::{self, Attempt, Dialed, NoRoute};
use sma_actions::{
    BridgeEndpointType, CallAndBridge, Direction, Participant, ParticipantTag, Status,
};
use sma_engine::ActionCommand;
use sma_media::bridge::{BridgedSource, PcmPipe, Relay, RelayTarget};
use sma_media::leg::LegSockets;
use sma_media::prompt::EncodedPrompt;
use sma_sip::message::{Headers, NameAddr, Uri};
use sma_sip::ua::CallHandle;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Why a leg is being dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// `CallAndBridge` action `id` on leg `from` (the caller).
    Bridge { id: u64, from: usize },
    /// LEG-A of a call `CreateSipMediaApplicationCall` placed.
    Outbound,
    /// `JoinChimeMeeting` action `id` on leg `from`, joining a meeting hosted elsewhere
    /// through the application's `meeting_dial_in` ([`crate::meeting_backend`]).
    Meeting { id: u64, from: usize },
}

/// A leg being placed: a `CallAndBridge`'s second leg, or an API-created call's first.
pub(super) struct Dialing {
    pub purpose: Purpose,
    attempts: VecDeque<Attempt>,
    /// The attempt being placed: its token, and its dialog once the endpoint placed it.
    token: u64,
    pending: Option<Attempt>,
    call: Option<CallHandle>,
    sockets: Option<LegSockets>,
    /// The current attempt must get some response by then.
    attempt_deadline: Option<Instant>,
    /// `CallTimeoutSeconds`, from the first INVITE.
    timeout: Duration,
    deadline: Option<Instant>,
    /// The leg as it will join.
    participant: Participant,
    /// The final status of the last attempt (what `HANGUP` says for an API call).
    last_status: u16,
    caller_id: NameAddr,
    headers: Headers,
    via: String,
    /// Each attempt's outcome, for the record.
    outcomes: Vec<String>,
    /// The ringback tone playing on the caller.
    ringback: Option<u64>,
    ringing_relayed: bool,
    /// The `MeetingId` a remote join named, for the call records.
    meeting_id: Option<String>,
}

impl Dialing {
    /// The leg a `CallAndBridge` bridges, when that is what this dials.
    pub(super) fn bridge_from(&self) -> Option<usize> {
        match self.purpose {
            Purpose::Bridge { from, .. } | Purpose::Meeting { from, .. } => Some(from),
            Purpose::Outbound => None,
        }
    }

    pub(super) fn action(&self) -> Option<u64> {
        match self.purpose {
            Purpose::Bridge { id, .. } | Purpose::Meeting { id, .. } => Some(id),
            Purpose::Outbound => None,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match (self.attempt_deadline, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// How the other party's audio reaches a bridged leg.
pub(super) enum BridgeIn {
    /// Packets are relayed into the leg's stream (its gate opens when nothing else plays).
    Relay,
    /// Decoded audio comes through this pipe and the leg's output encodes it.
    Pcm {
        pipe: Arc<PcmPipe>,
        /// The play id of the bridged source on the output, while it is installed.
        installed: Option<u64>,
    },
}

/// How long a meeting's dial-in may take to answer.
const MEETING_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// E.164 digits of a number, for comparing caller IDs.
fn digits(number: &str) -> Option<String> {
    crate::routing::normalize_number(number)
}

impl Actor {
    /// Starts a `CallAndBridge` on leg `i` (LEG-A): checks the caller ID, plans the routes,
    /// loads the ringback tone (if any), then dials.
    pub(super) fn start_bridge(
        &mut self,
        i: usize,
        id: u64,
        b: &CallAndBridge,
        command: ActionCommand,
    ) {
        let snapshot = self.ctx.routing.snapshot();
        let caller = digits(&b.caller_id_number);
        let leg_a_from = self
            .engine
            .details()
            .participants
            .iter()
            .find(|p| p.call_id == self.legs[i].id)
            .and_then(|p| digits(&p.from));
        let owned = caller
            .as_ref()
            .is_some_and(|c| snapshot.numbers.contains(c));
        if !owned
            && caller
                .as_ref()
                .is_none_or(|c| Some(c) != leg_a_from.as_ref())
        {
            return self.fail(
                id,
                "InvalidActionParameter",
                "Provided caller ID number is invalid. Number must be owned by this AWS account, or be the From number of LEG-A.",
            );
        }
        let Some(endpoint) = b.endpoints.first() else {
            return self.fail(
                id,
                "InvalidActionParameter",
                "Invalid number of endpoints provided.",
            );
        };
        let dialed = match endpoint.bridge_endpoint_type {
            BridgeEndpointType::Pstn => Dialed::Number(endpoint.uri.clone()),
            BridgeEndpointType::Aws => Dialed::Connector {
                arn: endpoint.arn.clone().unwrap_or_default(),
                user: endpoint.uri.clone(),
            },
        };
        let mut random = super::actor::rand_u32;
        let attempts = match outbound::plan(
            &snapshot,
            &self.ctx.carriers,
            self.ctx.on_net,
            &dialed,
            &mut random,
        ) {
            Ok(a) => a,
            Err(NoRoute::BadEndpoint(why)) => {
                warn!(%why, "CallAndBridge endpoint names nothing");
                self.legs[i]
                    .record
                    .invocation_failure(&format!("CallAndBridge: {why}"));
                return self.fail(
                    id,
                    "InvalidActionParameter",
                    "Endpoint parameter is invalid.",
                );
            }
            Err(NoRoute::Nowhere(why)) => {
                warn!(%why, "CallAndBridge has nowhere to go");
                self.legs[i]
                    .record
                    .invocation_failure(&format!("CallAndBridge: {why}"));
                return self.fail(id, "CallNotAnswered", "Call not answered");
            }
        };
        let caller_e164 = format!("+{}", caller.unwrap_or_default());
        let caller_uri = Uri::parse(&format!("sip:{caller_e164}@sma.invalid"))
            .unwrap_or_else(|_| attempts[0].target.clone());
        let mut headers = Headers::new();
        for (name, value) in b.sip_headers.iter().flatten() {
            headers.push(name, value);
        }
        let participant = Participant {
            call_id: uuid::Uuid::new_v4().to_string(),
            participant_tag: ParticipantTag::LegB,
            to: match endpoint.bridge_endpoint_type {
                BridgeEndpointType::Pstn => digits(&endpoint.uri)
                    .map(|d| format!("+{d}"))
                    .unwrap_or_else(|| endpoint.uri.clone()),
                BridgeEndpointType::Aws => endpoint.uri.clone(),
            },
            from: caller_e164,
            direction: Direction::Outbound,
            start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
            status: Some(Status::Connected),
            sip_headers: None,
        };
        info!(
            to = %participant.to,
            routes = attempts.len(),
            first = %attempts[0].via,
            "bridging: dialing the second leg"
        );
        self.dialing = Some(Dialing {
            purpose: Purpose::Bridge { id, from: i },
            last_status: 0,
            attempts: attempts.into(),
            token: 0,
            pending: None,
            call: None,
            sockets: None,
            attempt_deadline: None,
            timeout: Duration::from_secs(b.call_timeout_seconds().clamp(1, 120) as u64),
            deadline: None,
            participant,
            caller_id: NameAddr::new(caller_uri),
            headers,
            via: String::new(),
            outcomes: Vec::new(),
            ringback: None,
            ringing_relayed: false,
            meeting_id: None,
        });
        match &b.ringback_tone {
            Some(tone) => {
                let jobs = vec![super::legs::Job::File(tone.clone())];
                self.load_jobs(i, command, jobs);
            }
            None => self.dial_with_ringback(i, command, b, None),
        }
    }

    /// The ringback tone is ready (or there is none): plays it to the caller and dials.
    pub(super) fn dial_with_ringback(
        &mut self,
        i: usize,
        command: ActionCommand,
        _b: &CallAndBridge,
        ringback: Option<Arc<EncodedPrompt>>,
    ) {
        let id = command.id;
        if self.dialing.as_ref().is_none_or(|d| d.action() != Some(id)) {
            return;
        }
        self.running = Some((i, Running::Bridge { id }));
        if let Some(tone) = ringback {
            if !self.legs[i].answered && self.legs[i].media.is_none() {
                // Early media: a 183 with our answer, then the tone on the caller's stream.
                let _ = self.commands.send(SipCommand::Provisional {
                    call: self.legs[i].call,
                    early_media: true,
                });
                if let Err(why) = self.start_media(i) {
                    warn!(%why, "early media for the ringback tone failed");
                }
            }
            if self.legs[i].media.is_some() {
                let play = self.play_prompt(i, &tone, 1000);
                if let Some(d) = self.dialing.as_mut() {
                    d.ringback = play;
                }
            }
        }
        self.next_attempt(Instant::now());
    }

    /// Whether `play` on `leg` was the ringback tone (its end needs nothing).
    pub(super) fn ringback_finished(&mut self, leg: usize, play: u64) -> bool {
        match self.dialing.as_mut() {
            Some(d) if d.bridge_from() == Some(leg) && d.ringback == Some(play) => {
                d.ringback = None;
                true
            }
            _ => false,
        }
    }

    fn stop_ringback(&mut self) {
        let Some((from, Some(play))) = self
            .dialing
            .as_mut()
            .and_then(|d| Some((d.bridge_from()?, d.ringback.take())))
        else {
            return;
        };
        if self.legs[from].playing == Some(play) {
            self.stop_output(from);
        }
    }

    /// Places the next route's attempt, or fails the bridge when none is left.
    fn next_attempt(&mut self, now: Instant) {
        let response_timeout = self.ctx.route_response_timeout;
        let token = self.next_token;
        self.next_token += 1;
        let Some(d) = self.dialing.as_mut() else {
            return;
        };
        let Some(attempt) = d.attempts.pop_front() else {
            let why = if d.outcomes.is_empty() {
                "no route could be tried".to_owned()
            } else {
                d.outcomes.join("; ")
            };
            return self.bridge_failed(&why, now);
        };
        d.token = token;
        d.call = None;
        d.sockets = None;
        d.via = attempt.via.clone();
        d.attempt_deadline = Some(now + response_timeout);
        let (host, port) = (attempt.host.clone(), attempt.port);
        d.pending = Some(attempt);
        info!(route = %d.via, "bridging: trying a route");
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => self.on_resolved(token, Ok(SocketAddr::new(ip, port)), now),
            Err(_) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = match tokio::net::lookup_host((host.as_str(), port)).await {
                        Ok(mut addrs) => {
                            addrs.next().ok_or_else(|| format!("{host} has no address"))
                        }
                        Err(e) => Err(format!("{host} does not resolve: {e}")),
                    };
                    let _ = tx.send(super::actor::Msg::Resolved(token, result));
                });
            }
        }
    }

    /// A route's host resolved: the INVITE goes out.
    pub(super) fn on_resolved(
        &mut self,
        token: u64,
        result: Result<SocketAddr, String>,
        now: Instant,
    ) {
        let Some(d) = self.dialing.as_mut() else {
            return;
        };
        if d.token != token {
            return;
        }
        let destination = match result {
            Ok(a) => a,
            Err(why) => return self.attempt_failed(0, &why, now),
        };
        let Some(attempt) = d.pending.take() else {
            return;
        };
        if d.deadline.is_none() {
            d.deadline = Some(now + d.timeout);
        }
        let to = NameAddr::new(attempt.target.clone());
        let request = DialRequest {
            token,
            target: attempt.target,
            destination,
            transport: attempt.transport,
            from: d.caller_id.clone(),
            to,
            headers: d.headers.clone(),
            credentials: attempt.credentials,
            signals: self.signals_tx.clone(),
        };
        let _ = self.commands.send(SipCommand::Dial(Box::new(request)));
    }

    /// A signal about a dialog that is not (yet) a leg of the call: the leg being dialed, or
    /// an abandoned attempt that answered late.
    pub(super) fn on_dial_signal(&mut self, call: CallHandle, signal: SipSignal, now: Instant) {
        let current = self.dialing.as_ref().is_some_and(|d| d.call == Some(call));
        match signal {
            SipSignal::Dialed { token, result } => {
                let Some(d) = self.dialing.as_mut().filter(|d| d.token == token) else {
                    // An attempt given up on before it was placed: let it go.
                    if result.is_ok() {
                        let _ = self.commands.send(SipCommand::Hangup { call, status: 487 });
                        let _ = self.commands.send(SipCommand::Finished { call });
                    }
                    return;
                };
                match result {
                    Ok(sockets) => {
                        d.call = Some(call);
                        d.sockets = Some(sockets);
                    }
                    Err(why) => self.attempt_failed(0, &why, now),
                }
            }
            SipSignal::Trying if current => {
                if let Some(d) = self.dialing.as_mut() {
                    d.attempt_deadline = None;
                }
            }
            SipSignal::Progress { status } if current => {
                let Some(d) = self.dialing.as_mut() else {
                    return;
                };
                d.attempt_deadline = None;
                let first = !d.ringing_relayed;
                d.ringing_relayed = true;
                match d.purpose {
                    Purpose::Bridge { from, .. } => {
                        let relay = d.ringback.is_none() && first;
                        if relay && !self.legs[from].answered && self.legs[from].media.is_none() {
                            info!(status, "bridging: the far end rings");
                            let _ = self.commands.send(SipCommand::Provisional {
                                call: self.legs[from].call,
                                early_media: false,
                            });
                        }
                    }
                    Purpose::Outbound if first => {
                        info!(status, "the called party rings");
                        let id = d.participant.call_id.clone();
                        self.engine.on_ringing(&id);
                    }
                    Purpose::Outbound | Purpose::Meeting { .. } => {}
                }
            }
            SipSignal::Answered(update, at) if current => {
                match self.dialing.as_ref().map(|d| d.purpose) {
                    Some(Purpose::Outbound) => self.outbound_answered(call, update, now),
                    _ => {
                        self.bridged_at = Some(at);
                        self.bridge_answered(call, update, now);
                        if let (Some(at), Some(_)) = (self.bridged_at.take(), self.bridge) {
                            // The caller was answered already: the bridge is up once its
                            // media is connected.
                            tracing::info!(
                                target: "sma::latency",
                                bridge_us = at.elapsed().as_micros() as u64,
                                "bridged"
                            );
                        }
                    }
                }
            }
            SipSignal::Ended { status, why, .. } if current => {
                let why = why.unwrap_or_else(|| format!("ended with {status}"));
                self.attempt_failed(status, &why, now);
            }
            SipSignal::MediaFailed(why) if current => {
                let _ = self.commands.send(SipCommand::Hangup { call, status: 488 });
                if let Some(d) = self.dialing.as_mut() {
                    d.outcomes
                        .push(format!("{}: answered with unusable media: {why}", d.via));
                    d.call = None;
                }
                self.bridge_failed(
                    &format!("the far end answered with unusable media: {why}"),
                    now,
                );
            }
            SipSignal::Answered(..) => {
                // An abandoned attempt answered after all: end it.
                let _ = self.commands.send(SipCommand::Hangup { call, status: 0 });
                let _ = self.commands.send(SipCommand::Finished { call });
            }
            SipSignal::Ended { .. } => {
                let _ = self.commands.send(SipCommand::Finished { call });
            }
            _ => {}
        }
    }

    /// The current attempt failed with `status` (0: it could not be sent or got no
    /// response): the next route, or the end of the dialing.
    fn attempt_failed(&mut self, status: u16, why: &str, now: Instant) {
        let Some(d) = self.dialing.as_mut() else {
            return;
        };
        info!(route = %d.via, status, %why, "dialing: the route failed");
        d.outcomes.push(format!("{}: {why}", d.via));
        if status != 0 {
            d.last_status = status;
        }
        if let Some(call) = d.call.take() {
            let _ = self.commands.send(SipCommand::Finished { call });
        }
        d.sockets = None;
        d.attempt_deadline = None;
        let expired = d.deadline.is_some_and(|at| at <= now);
        if outbound::try_next(status) && !d.attempts.is_empty() && !expired {
            self.next_attempt(now);
        } else {
            let why = d.outcomes.join("; ");
            self.bridge_failed(&why, now);
        }
    }

    /// Route and call timeouts of the dialing.
    pub(super) fn dialing_timeout(&mut self, now: Instant) {
        let Some(d) = self.dialing.as_mut() else {
            return;
        };
        if d.deadline.is_some_and(|at| at <= now) {
            let secs = d.timeout.as_secs();
            if let Some(call) = d.call.take() {
                let _ = self.commands.send(SipCommand::Hangup { call, status: 487 });
            }
            d.outcomes
                .push(format!("{}: not answered within {secs} s", d.via));
            let why = d.outcomes.join("; ");
            return self.bridge_failed(&why, now);
        }
        if d.attempt_deadline.is_some_and(|at| at <= now) {
            let ms = self.ctx.route_response_timeout.as_millis();
            if let Some(call) = d.call.take() {
                let _ = self.commands.send(SipCommand::Hangup { call, status: 487 });
            }
            self.attempt_failed(408, &format!("no response within {ms} ms"), now);
        }
    }

    /// Nobody answered. A bridge fails with `CallNotAnswered`; an API call ends with
    /// `HANGUP` and the status that ended it (480 when nothing answered in time). The dialed
    /// leg's record says why.
    fn bridge_failed(&mut self, why: &str, now: Instant) {
        self.stop_ringback();
        let Some(d) = self.dialing.take() else {
            return;
        };
        warn!(%why, "dialing failed");
        let details = self.engine.details().clone();
        let mut record = CallRecord::outbound(&details, &d.participant, &d.via);
        for outcome in &d.outcomes {
            record.invocation_failure(outcome);
        }
        let status = if d.last_status >= 400 {
            d.last_status
        } else {
            480
        };
        record.end(status, false);
        record.finish(&details);
        self.ctx.cdr.write(&record);
        match d.purpose {
            Purpose::Bridge { id, from } => {
                self.running = None;
                self.legs[from]
                    .record
                    .invocation_failure(&format!("CallAndBridge not answered: {why}"));
                self.engine
                    .on_bridge_failed(id, "CallNotAnswered", "Call not answered", now);
            }
            Purpose::Outbound => {
                self.outbound_failed = true;
                let id = d.participant.call_id.clone();
                self.engine.on_leg_ended(&id, status);
            }
            Purpose::Meeting { id, from } => {
                self.running = None;
                self.legs[from]
                    .record
                    .invocation_failure(&format!("JoinChimeMeeting: {why}"));
                // The dial-in refusing the token is the contract's bad-token error; anything
                // else (unreachable, no answer, busy) is the service's.
                let (error_type, message) = if matches!(d.last_status, 403 | 404) {
                    ("InvalidActionParameter", super::meeting::BAD_TOKEN)
                } else {
                    ("SystemException", "Error while joining meeting.")
                };
                self.engine.on_bridge_failed(id, error_type, message, now);
            }
        }
    }

    /// Stops dialing without a report (the caller left, the transaction ended).
    pub(super) fn abandon_dialing(&mut self, why: &str) {
        self.stop_ringback();
        let Some(d) = self.dialing.take() else {
            return;
        };
        info!(%why, "bridging abandoned");
        if let Some(call) = d.call {
            let _ = self.commands.send(SipCommand::Hangup { call, status: 487 });
            let _ = self.commands.send(SipCommand::Finished { call });
        }
        // The leg that was being dialed gets its record too, saying why it never connected.
        if d.call.is_some() || !d.outcomes.is_empty() {
            let details = self.engine.details().clone();
            let mut record = CallRecord::outbound(&details, &d.participant, &d.via);
            for outcome in &d.outcomes {
                record.invocation_failure(outcome);
            }
            record.invocation_failure(&format!("{}: cancelled, {why}", d.via));
            record.end(487, false);
            record.finish(&details);
            self.ctx.cdr.write(&record);
        }
        if matches!(
            self.running,
            Some((_, Running::Bridge { .. })) | Some((_, Running::Loading { .. }))
        ) {
            self.running = None;
        }
    }

    /// The far end answered: it becomes LEG-B, the caller is answered, the media connects.
    fn bridge_answered(&mut self, call: CallHandle, update: MediaUpdate, now: Instant) {
        self.stop_ringback();
        let Some(mut d) = self.dialing.take() else {
            return;
        };
        info!(route = %d.via, codec = ?update.codec, "bridging: the far end answered");
        let details = self.engine.details().clone();
        let mut record = CallRecord::outbound(&details, &d.participant, &d.via);
        for outcome in &d.outcomes {
            record.invocation_failure(outcome);
        }
        record.answered();
        let b = self.legs.len();
        self.legs.push(Leg {
            id: d.participant.call_id.clone(),
            call,
            sockets: d.sockets.take(),
            negotiated: Some(update),
            media: None,
            answered: true,
            ended: false,
            listener: None,
            recording: None,
            recording_started: false,
            playing: None,
            voice_focus: false,
            bridge_in: None,
            record,
        });
        let (Purpose::Bridge { id, from: a } | Purpose::Meeting { id, from: a }) = d.purpose else {
            return;
        };
        if let Err(why) = self.start_media(b).and_then(|_| self.ensure_answered(a)) {
            warn!(%why, "the bridge could not start its media");
            self.hang_up(b, 0);
            self.legs[b].ended = true;
            self.legs[b].record.invocation_failure(&why);
            self.legs[b].record.end(0, true);
            self.dialing = Some(d);
            return self.bridge_failed(&why, now);
        }
        self.running = None;
        if matches!(d.purpose, Purpose::Meeting { .. }) {
            let meeting = d.meeting_id.clone().unwrap_or_default();
            info!(%meeting, leg_b = %d.participant.call_id, "joined the meeting through its dial-in");
            for leg in [a, b] {
                self.legs[leg].record.meeting(&meeting, "");
            }
            self.remote_meeting = Some(meeting);
        }
        self.engine.on_bridged(id, d.participant.clone());
        self.bridge = Some((a, b));
        self.connect_bridge();
    }

    /// `JoinChimeMeeting` for an application whose meetings are hosted elsewhere: LEG-A
    /// (answered first) is bridged to a call to the dial-in with the join token. The meeting
    /// leg is LEG-B as for a meeting of this runtime (`To` the dial-in number, `From` `SMA`).
    pub(super) fn dial_meeting(
        &mut self,
        i: usize,
        id: u64,
        join: &sma_actions::JoinChimeMeeting,
        dial_in: &crate::meeting_backend::MeetingDialIn,
        now: Instant,
    ) {
        let attempt = match dial_in.attempt(join.join_token.trim()) {
            Ok(a) => a,
            Err(why) => {
                info!(%why, "JoinChimeMeeting refused");
                return self.fail(id, "InvalidActionParameter", super::meeting::BAD_TOKEN);
            }
        };
        if let Err(why) = self.ensure_answered(i) {
            return self.fail(id, "SystemException", why);
        }
        let participant = Participant {
            call_id: uuid::Uuid::new_v4().to_string(),
            participant_tag: ParticipantTag::LegB,
            to: super::meeting::MEETING_NUMBER.into(),
            from: "SMA".into(),
            direction: Direction::Outbound,
            start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
            status: Some(Status::Connected),
            sip_headers: None,
        };
        let caller = self
            .engine
            .details()
            .participants
            .iter()
            .find(|p| p.call_id == self.legs[i].id)
            .and_then(|p| digits(&p.from))
            .map(|d| format!("+{d}"))
            .unwrap_or_else(|| "SMA".into());
        let caller_uri = Uri::parse(&format!("sip:{caller}@sma.invalid"))
            .unwrap_or_else(|_| attempt.target.clone());
        info!(dial_in = %dial_in.uri(), route = %attempt.via, "JoinChimeMeeting: dialling the meeting");
        self.dialing = Some(Dialing {
            purpose: Purpose::Meeting { id, from: i },
            last_status: 0,
            attempts: VecDeque::from([attempt]),
            token: 0,
            pending: None,
            call: None,
            sockets: None,
            attempt_deadline: None,
            timeout: MEETING_ANSWER_TIMEOUT,
            deadline: None,
            participant,
            caller_id: NameAddr::new(caller_uri),
            headers: Headers::new(),
            via: String::new(),
            outcomes: Vec::new(),
            ringback: None,
            ringing_relayed: false,
            meeting_id: join.meeting_id.clone(),
        });
        self.running = Some((i, Running::Bridge { id }));
        self.next_attempt(now);
    }

    /// Places LEG-A of a call `CreateSipMediaApplicationCall` asked for, routed like every
    /// outbound leg, ringing for at most the unanswered timeout.
    pub(super) fn dial_outbound(&mut self, from: &str, to: &str, headers: Headers, now: Instant) {
        let Some(participant) = self.engine.details().participants.first().cloned() else {
            return;
        };
        let snapshot = self.ctx.routing.snapshot();
        let mut random = super::actor::rand_u32;
        let attempts = match outbound::plan(
            &snapshot,
            &self.ctx.carriers,
            self.ctx.on_net,
            &Dialed::Number(to.to_owned()),
            &mut random,
        ) {
            Ok(a) => a,
            Err(why) => {
                warn!(%why, "the API call has nowhere to go");
                self.outbound_failed = true;
                let details = self.engine.details().clone();
                let mut record = CallRecord::outbound(&details, &participant, "");
                record.invocation_failure(&why.to_string());
                record.end(404, false);
                record.finish(&details);
                self.ctx.cdr.write(&record);
                self.engine.on_leg_ended(&participant.call_id, 404);
                return;
            }
        };
        let caller = Uri::parse(&format!("sip:{from}@sma.invalid"))
            .unwrap_or_else(|_| attempts[0].target.clone());
        let mut caller_id = NameAddr::new(caller);
        caller_id.display_name = snapshot.calling_name(from);
        info!(%to, routes = attempts.len(), first = %attempts[0].via, "placing the API call");
        self.dialing = Some(Dialing {
            purpose: Purpose::Outbound,
            last_status: 0,
            attempts: attempts.into(),
            token: 0,
            pending: None,
            call: None,
            sockets: None,
            attempt_deadline: None,
            timeout: self.ctx.engine.unanswered_timeout,
            deadline: None,
            participant,
            caller_id,
            headers,
            via: String::new(),
            outcomes: Vec::new(),
            ringback: None,
            ringing_relayed: false,
            meeting_id: None,
        });
        self.next_attempt(now);
    }

    /// The called party of an API call answered: LEG-A is up and `CALL_ANSWERED` goes out.
    fn outbound_answered(&mut self, call: CallHandle, update: MediaUpdate, _now: Instant) {
        let Some(mut d) = self.dialing.take() else {
            return;
        };
        info!(route = %d.via, codec = ?update.codec, "the called party answered");
        let details = self.engine.details().clone();
        let mut record = CallRecord::outbound(&details, &d.participant, &d.via);
        for outcome in &d.outcomes {
            record.invocation_failure(outcome);
        }
        record.answered();
        let a = self.legs.len();
        self.legs.push(Leg {
            id: d.participant.call_id.clone(),
            call,
            sockets: d.sockets.take(),
            negotiated: Some(update),
            media: None,
            answered: true,
            ended: false,
            listener: None,
            recording: None,
            recording_started: false,
            playing: None,
            voice_focus: false,
            bridge_in: None,
            record,
        });
        if let Err(why) = self.start_media(a) {
            warn!(%why, "the answered call could not start its media");
            self.legs[a].record.invocation_failure(&why);
            self.hang_up(a, 0);
            return;
        }
        let id = d.participant.call_id.clone();
        self.engine.on_outbound_answered(&id);
    }

    /// Connects the bridged legs' media, each direction on its path.
    pub(super) fn connect_bridge(&mut self) {
        let Some((a, b)) = self.bridge else {
            return;
        };
        self.connect_direction(a, b);
        self.connect_direction(b, a);
        self.refresh_bridge();
    }

    /// Disconnects the bridged legs' media (the bridge itself stays).
    pub(super) fn disconnect_bridge(&mut self) {
        let Some((a, b)) = self.bridge else {
            return;
        };
        for i in [a, b] {
            let leg = &mut self.legs[i];
            let bridge_in = leg.bridge_in.take();
            if let Some(m) = &leg.media {
                m.control.set_relay(None);
                m.control.set_pcm(None);
                m.gate.open(false);
                m.output.set_silence_suppression(false);
                if let Some(BridgeIn::Pcm {
                    installed: Some(id),
                    ..
                }) = bridge_in
                {
                    m.output.stop_if(id);
                }
            }
        }
    }

    /// Undoes the bridge: each leg is on its own again.
    pub(super) fn unbridge(&mut self) {
        self.disconnect_bridge();
        self.bridge = None;
        self.remote_meeting = None;
    }

    /// Connects again with paths chosen afresh (noise suppression or a recording changed
    /// what a direction needs).
    pub(super) fn reconnect_bridge(&mut self) {
        if self.bridge.is_some() {
            self.disconnect_bridge();
            self.connect_bridge();
        }
    }

    /// Audio `from` → `to`: relayed when nothing needs it decoded, else piped as PCM.
    fn connect_direction(&mut self, from: usize, to: usize) {
        let (Some(mf), Some(mt)) = (
            self.legs[from].negotiated.clone(),
            self.legs[to].negotiated.clone(),
        ) else {
            return;
        };
        if self.legs[from].media.is_none() || self.legs[to].media.is_none() {
            return;
        }
        let records_what_it_hears = self.legs[to]
            .recording
            .as_ref()
            .is_some_and(|r| !r.stopped && r.taps_outgoing);
        let relay = mf.codec == mt.codec
            && mf.ptime == mt.ptime
            && mf.telephone_event.is_some() == mt.telephone_event.is_some()
            && !self.legs[from].voice_focus
            && !records_what_it_hears;
        let rtp = self.legs[to].sockets.as_ref().map(|s| s.rtp.clone());
        let (Some(target_media), Some(rtp)) = (self.legs[to].media.as_ref(), rtp) else {
            return;
        };
        if relay {
            let target = RelayTarget {
                socket: rtp,
                destination: target_media.destination.clone(),
                ssrc: target_media.ssrc,
                counters: target_media.counters.clone(),
                audio_payload_type: mt.payload_type,
                telephone_event: mt.telephone_event,
                gate: target_media.gate.clone(),
                srtp: target_media.srtp.as_ref().map(|s| s.outbound.clone()),
            };
            // Between the other party's packets the leg's own stream sends nothing.
            target_media.output.set_silence_suppression(true);
            if let Some(m) = &self.legs[from].media {
                m.control.set_relay(Some(Relay::new(
                    target,
                    mf.payload_type,
                    mf.telephone_event,
                )));
            }
            self.legs[to].bridge_in = Some(BridgeIn::Relay);
            info!(from = %self.legs[from].id, to = %self.legs[to].id, codec = ?mf.codec, "bridge: relayed");
        } else {
            let pipe = PcmPipe::new(mf.codec.sample_rate(), 120);
            if let Some(m) = &self.legs[from].media {
                m.control.set_pcm(Some(pipe.clone()));
            }
            self.legs[to].bridge_in = Some(BridgeIn::Pcm {
                pipe,
                installed: None,
            });
            info!(from = %self.legs[from].id, to = %self.legs[to].id, from_codec = ?mf.codec, to_codec = ?mt.codec, "bridge: through PCM");
        }
    }

    /// Lets the other party be heard on each bridged leg whenever nothing of its own plays
    /// there (a prompt to one leg interrupts the bridged audio on that leg only) and the leg
    /// is not on hold.
    pub(super) fn refresh_bridge(&mut self) {
        if self.bridge.is_none() && self.meeting.is_none() {
            return;
        }
        for leg in self.legs.iter_mut() {
            let own = leg.playing.is_some();
            let Some(m) = leg.media.as_ref() else {
                continue;
            };
            match leg.bridge_in.as_mut() {
                Some(BridgeIn::Relay) => m.gate.open(!own && !m.held),
                Some(BridgeIn::Pcm { pipe, installed }) => {
                    if own {
                        // The action's source replaced the bridged one on the output.
                        *installed = None;
                    } else if installed.is_none() {
                        let Some(n) = leg.negotiated.as_ref() else {
                            continue;
                        };
                        match BridgedSource::new(
                            pipe.clone(),
                            n.codec,
                            n.payload_type,
                            n.telephone_event,
                            n.ptime,
                        ) {
                            Ok(source) => {
                                let id = self.next_play;
                                self.next_play += 1;
                                m.output.play(id, Box::new(source));
                                *installed = Some(id);
                            }
                            Err(e) => warn!(%e, "bridged audio cannot be encoded for the leg"),
                        }
                    }
                }
                None => {}
            }
        }
    }
}
