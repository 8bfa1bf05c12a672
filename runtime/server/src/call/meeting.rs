//! Meetings from a call: `JoinChimeMeeting` (contract §3.3) joins LEG-A to a meeting of this
//! runtime's meetings API through the conference mixer, as a LEG-B that is the meeting's side
//! of the call; `ModifyChimeMeetingAttendees` (§3.4) mutes and unmutes attendees; a `Hangup`
//! of LEG-B leaves the meeting and keeps LEG-A. The meeting's audio reaches LEG-A the way a
//! bridged party's does through PCM ([`super::bridging::BridgeIn::Pcm`]): a prompt played to
//! LEG-A interrupts it, and it resumes when the prompt ends; digits LEG-A presses still reach
//! the handler (`ReceiveDigits`).

use super::actor::Actor;
use super::bridging::BridgeIn;
use sma_actions::{
    AttendeeOperation, Direction, JoinChimeMeeting, ModifyChimeMeetingAttendees, Participant,
    ParticipantTag, Status,
};
use sma_api::voice::Effect;
use sma_engine::{ActionResult, Outcome};
use sma_media::bridge::PcmPipe;
use sma_media::conference::{
    AudioCapability, ConferenceClock, ConferenceConfig, ConferenceError, Mixer,
};
use sma_store::Store;
use std::sync::Arc;
use tracing::{info, warn};

/// The contract's placeholder number of a meeting leg (§2.3).
pub(super) const MEETING_NUMBER: &str = "+17035550122";

/// The node's meetings: where join tokens are looked up, and the one mixing clock.
pub struct Meetings {
    store: Arc<dyn Store>,
    clock: ConferenceClock,
    /// When each meeting last had someone in it (epoch ms), as the sweeps saw it.
    occupied: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Meetings {
    pub fn start(
        store: Arc<dyn Store>,
        config: ConferenceConfig,
        limit: usize,
    ) -> std::io::Result<Meetings> {
        Ok(Meetings {
            store,
            clock: ConferenceClock::start(Mixer::new(config, limit))?,
            occupied: Default::default(),
        })
    }

    /// Ends the meetings nobody has been in for `idle` (counted from creation for a meeting
    /// never joined), as the hosted service ends empty meetings. Run every few seconds;
    /// returns the ids ended.
    pub fn sweep(&self, idle: std::time::Duration, now_ms: u64) -> Vec<String> {
        let idle_ms = idle.as_millis() as u64;
        let meetings = match self
            .store
            .begin()
            .and_then(|mut tx| tx.list::<sma_store::records::Meeting>())
        {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "meetings not swept: the store failed");
                return Vec::new();
            }
        };
        let mut ended = Vec::new();
        let mut occupied = self.occupied.lock().unwrap_or_else(|p| p.into_inner());
        for m in meetings {
            let present = !self.clock.mixer().participants(&m.meeting_id).is_empty();
            if present {
                occupied.insert(m.meeting_id.clone(), now_ms);
                continue;
            }
            let since = occupied
                .get(&m.meeting_id)
                .copied()
                .unwrap_or(m.created_ms)
                .max(m.created_ms);
            if now_ms.saturating_sub(since) < idle_ms {
                continue;
            }
            let done = self
                .store
                .begin()
                .map_err(|e| e.to_string())
                .and_then(|mut tx| {
                    let gone = sma_api::meetings::end_by_runtime(tx.as_mut(), &m.meeting_id)
                        .map_err(|e| e.message)?;
                    tx.commit().map_err(|e| e.to_string())?;
                    Ok(gone)
                });
            match done {
                Ok(true) => {
                    info!(meeting = %m.meeting_id, idle_s = idle.as_secs(), "meeting ended: nobody in it");
                    occupied.remove(&m.meeting_id);
                    ended.push(m.meeting_id);
                }
                Ok(false) => {}
                Err(e) => warn!(meeting = %m.meeting_id, error = %e, "empty meeting not ended"),
            }
        }
        ended
    }

    /// The meeting and attendee a join token belongs to; `Err` says why not.
    fn lookup(&self, token: &str) -> Result<(String, String, AudioCapability), String> {
        off_the_loop(|| self.read_token(token))
    }

    fn read_token(&self, token: &str) -> Result<(String, String, AudioCapability), String> {
        let mut tx = self.store.begin().map_err(|e| e.to_string())?;
        match sma_api::meetings::attendee_by_token(tx.as_mut(), token) {
            Ok(Ok((meeting, attendee))) => Ok((
                meeting.meeting_id,
                attendee.attendee_id,
                AudioCapability::from_model(&attendee.capabilities.audio),
            )),
            Ok(Err(refusal)) => Err(refusal.to_string()),
            Err(e) => Err(e.message),
        }
    }

    /// Whether every one of `attendees` is an attendee of `meeting` (in the store, joined or
    /// not): one read of the meeting, however many are named.
    fn has_attendees(&self, meeting: &str, attendees: &[String]) -> bool {
        off_the_loop(|| {
            let Ok(mut tx) = self.store.begin() else {
                return false;
            };
            let Ok(Some(m)) = tx.get::<sma_store::records::Meeting>(meeting) else {
                return false;
            };
            attendees.iter().all(|wanted| {
                m.attendees
                    .iter()
                    .any(|a| a.attendee_id.eq_ignore_ascii_case(wanted))
            })
        })
    }

    pub fn clock(&self) -> &ConferenceClock {
        &self.clock
    }
}

/// Runs a store read from a call's or the endpoint's task. The store is one SQLite
/// connection that an API write may hold (through its fsync): on the server's multi-threaded
/// runtime the worker hands its other tasks to the rest while it waits, so calls elsewhere
/// are not held up (the waiting task itself still waits). Outside a runtime, it just runs.
fn off_the_loop<T>(read: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(read)
        }
        _ => read(),
    }
}

/// LEG-A's place in a meeting.
pub(super) struct MeetingLeg {
    pub meeting_id: String,
    pub attendee_id: String,
    /// LEG-B's CallId (the meeting's side of the call).
    pub call_id: String,
    /// LEG-A's index.
    pub leg: usize,
    /// What LEG-A says into the mixer: this session's identity there (an attendee who joins
    /// again from another call replaces it).
    pub input: Arc<PcmPipe>,
}

pub(super) const BAD_TOKEN: &str = "JoinToken parameter value is invalid.";

impl Actor {
    /// `JoinChimeMeeting` on leg `i` (LEG-A).
    pub(super) fn join_meeting(&mut self, i: usize, id: u64, join: &JoinChimeMeeting) {
        if self.bridge.is_some() || self.dialing.is_some() || self.meeting.is_some() {
            return self.fail(id, "InvalidActionParameter", "Invalid action on the call.");
        }
        if join.join_token.trim().is_empty() || join.participant_tag == Some(ParticipantTag::LegB) {
            return self.fail(id, "InvalidActionParameter", BAD_TOKEN);
        }
        let application = &self.engine.details().sip_media_application_id;
        let dial_in = self
            .ctx
            .routing
            .snapshot()
            .applications
            .get(application)
            .and_then(|a| a.meeting_dial_in.clone());
        if let Some(dial_in) = dial_in {
            return self.dial_meeting(i, id, join, &dial_in, std::time::Instant::now());
        }
        let (meeting_id, attendee_id, capability) = match self.ctx.meetings.lookup(&join.join_token)
        {
            Ok(found) => found,
            Err(why) => {
                info!(%why, "JoinChimeMeeting refused");
                return self.fail(id, "InvalidActionParameter", BAD_TOKEN);
            }
        };
        if join
            .meeting_id
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(&meeting_id))
        {
            info!(meeting = %meeting_id, "JoinChimeMeeting refused: the token is of another meeting");
            return self.fail(id, "InvalidActionParameter", BAD_TOKEN);
        }
        if let Err(why) = self.ensure_answered(i) {
            return self.fail(id, "SystemException", why);
        }
        let (Some(negotiated), Some(media)) = (
            self.legs[i].negotiated.as_ref(),
            self.legs[i].media.as_ref(),
        ) else {
            return self.fail(id, "SystemException", "the leg has no media");
        };
        let rate = negotiated.codec.sample_rate();
        let input = PcmPipe::new(rate, 120);
        let output = PcmPipe::new(rate, 120);
        let joined = {
            let mut mixer = self.ctx.meetings.clock().mixer();
            match mixer.join(
                &meeting_id,
                &attendee_id,
                input.clone(),
                output.clone(),
                capability,
            ) {
                Err(ConferenceError::AlreadyJoined(..)) => {
                    // The attendee calls again (a dropped phone redialling before its old
                    // leg timed out): this call takes over, the earlier one is released.
                    info!(meeting = %meeting_id, attendee = %attendee_id, "the attendee joins again: its earlier session is replaced");
                    mixer.remove(&meeting_id, &attendee_id);
                    let joined = mixer.join(
                        &meeting_id,
                        &attendee_id,
                        input.clone(),
                        output.clone(),
                        capability,
                    );
                    if joined.is_ok() {
                        self.ctx
                            .calls
                            .attendee_rejoined(&meeting_id, &attendee_id, &input);
                    }
                    joined
                }
                other => other,
            }
        };
        if let Err(e) = joined {
            info!(error = %e, "JoinChimeMeeting refused");
            return self.fail(id, "InvalidActionParameter", BAD_TOKEN);
        }
        media.control.set_pcm(Some(input.clone()));
        self.legs[i].bridge_in = Some(BridgeIn::Pcm {
            pipe: output,
            installed: None,
        });
        let call_id = uuid::Uuid::new_v4().to_string();
        info!(meeting = %meeting_id, attendee = %attendee_id, leg_b = %call_id, "joined the meeting");
        let transaction_id = self.engine.details().transaction_id.clone();
        self.ctx.calls.entered_meeting(&meeting_id, &transaction_id);
        self.legs[i].record.meeting(&meeting_id, &attendee_id);
        self.meeting = Some(MeetingLeg {
            meeting_id,
            attendee_id,
            call_id: call_id.clone(),
            leg: i,
            input,
        });
        self.refresh_bridge();
        let leg_b = Participant {
            call_id,
            participant_tag: ParticipantTag::LegB,
            to: MEETING_NUMBER.into(),
            from: "SMA".into(),
            direction: Direction::Outbound,
            start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
            status: Some(Status::Connected),
            sip_headers: None,
        };
        self.engine.on_bridged(id, leg_b);
    }

    /// Whether `call_id` is the meeting's side of the call (LEG-B of a join).
    pub(super) fn is_meeting_leg(&self, call_id: &str) -> bool {
        self.meeting.as_ref().is_some_and(|m| m.call_id == call_id)
    }

    /// Leaves the meeting: LEG-A is on its own again, and the engine hears LEG-B hang up
    /// with `status`.
    pub(super) fn leave_meeting(&mut self, status: u16) {
        let Some(m) = self.meeting.take() else {
            return;
        };
        self.ctx
            .meetings
            .clock()
            .mixer()
            .leave(&m.meeting_id, &m.attendee_id, &m.input);
        let leg = &mut self.legs[m.leg];
        let bridge_in = leg.bridge_in.take();
        if let Some(media) = &leg.media {
            media.control.set_pcm(None);
            if let Some(BridgeIn::Pcm {
                installed: Some(play),
                ..
            }) = bridge_in
            {
                media.output.stop_if(play);
            }
        }
        info!(meeting = %m.meeting_id, attendee = %m.attendee_id, status, "left the meeting");
        let transaction_id = self.engine.details().transaction_id.clone();
        self.ctx.calls.left_meeting(&m.meeting_id, &transaction_id);
        self.engine.on_leg_ended(&m.call_id, status);
    }

    /// `ModifyChimeMeetingAttendees`, run on the meeting leg.
    pub(super) fn modify_attendees(&mut self, id: u64, modify: &ModifyChimeMeetingAttendees) {
        let invalid = |message: &str| ("InvalidActionParameter", message.to_owned());
        let outcome = (|| {
            if modify.meeting_id.trim().is_empty() {
                return Err(invalid("Meeting ID parameter value is invalid."));
            }
            if modify.attendee_list.is_empty() || modify.attendee_list.len() > 100 {
                return Err(invalid("Attendee List parameter value is invalid."));
            }
            if self.meeting.is_none() && self.remote_meeting.is_some() {
                // The meeting is another service's: its attendees are not ours to mute.
                return Err((
                    "SystemException",
                    "Mute and unmute are not available for meetings joined through meeting_dial_in.".to_owned(),
                ));
            }
            let Some(m) = self.meeting.as_ref() else {
                return Err(invalid("Invalid action on the call."));
            };
            if !m.meeting_id.eq_ignore_ascii_case(&modify.meeting_id) {
                return Err(invalid("Call is not connected to Chime Meeting."));
            }
            if !self
                .ctx
                .meetings
                .has_attendees(&m.meeting_id, &modify.attendee_list)
            {
                return Err(invalid(
                    "One or more attendees are not part of this meeting. All attendees must be part of this meeting.",
                ));
            }
            let muted = modify.operation == AttendeeOperation::Mute;
            let mut mixer = self.ctx.meetings.clock().mixer();
            for attendee in &modify.attendee_list {
                // An attendee not connected now is not in the mixer: nothing to do.
                mixer.set_muted(&m.meeting_id, &attendee.to_ascii_lowercase(), muted);
            }
            info!(meeting = %m.meeting_id, muted, attendees = modify.attendee_list.len(), "attendees modified");
            Ok(())
        })();
        match outcome {
            Ok(()) => self
                .engine
                .on_action_done(id, Outcome::Succeeded(ActionResult::default())),
            Err((error_type, message)) => self.fail(id, error_type, message),
        }
    }

    /// A committed change of the meetings API: a deleted meeting or attendee releases the
    /// meeting leg (`HANGUP` for LEG-B); new capabilities apply at once.
    /// The call's attendee joined again from another call (`session` is that call's input):
    /// this session is over, as if the attendee had been deleted here.
    pub(super) fn on_attendee_rejoined(
        &mut self,
        meeting_id: &str,
        attendee_id: &str,
        session: &Arc<PcmPipe>,
    ) {
        let replaced = self.meeting.as_ref().is_some_and(|m| {
            m.meeting_id == meeting_id
                && m.attendee_id == attendee_id
                && !Arc::ptr_eq(&m.input, session)
        });
        if replaced {
            info!(meeting = %meeting_id, attendee = %attendee_id, "the attendee joined from another call; leaving the meeting here");
            self.leave_meeting(0);
        }
    }

    pub(super) fn on_meeting_effect(&mut self, effect: Effect) {
        let Some(m) = self.meeting.as_ref() else {
            return;
        };
        match effect {
            Effect::MeetingEnded { meeting_id } if meeting_id == m.meeting_id => {
                info!(meeting = %meeting_id, "the meeting ended");
                self.leave_meeting(0);
            }
            Effect::AttendeeDeleted {
                meeting_id,
                attendee_id,
            } if meeting_id == m.meeting_id && attendee_id == m.attendee_id => {
                info!(meeting = %meeting_id, attendee = %attendee_id, "the attendee was deleted");
                self.leave_meeting(0);
            }
            Effect::CapabilitiesChanged {
                meeting_id,
                attendee_id,
                capabilities,
            } if meeting_id == m.meeting_id && attendee_id == m.attendee_id => {
                let capability = AudioCapability::from_model(&capabilities.audio);
                if !self.ctx.meetings.clock().mixer().set_capability(
                    &meeting_id,
                    &attendee_id,
                    capability,
                ) {
                    warn!(meeting = %meeting_id, attendee = %attendee_id, "capabilities for an attendee the mixer does not have");
                }
            }
            _ => {}
        }
    }
}

/// The handler of a SIP dial-in (seed 001: a PBX calls the voice connector's host with an
/// attendee's join token): it joins the caller to the meeting, and hangs up when the
/// meeting's side goes (the attendee or meeting deleted) or the join fails.
pub struct DialIn {
    token: String,
}

impl DialIn {
    pub fn new(token: String) -> DialIn {
        DialIn { token }
    }
}

impl sma_handler::BuiltinHandler for DialIn {
    fn invoke(
        &self,
        event_json: &str,
    ) -> Result<sma_actions::ParsedResponse, sma_handler::InvokeError> {
        let event: serde_json::Value = serde_json::from_str(event_json)
            .map_err(|e| sma_handler::InvokeError::HandlerError(format!("event not JSON: {e}")))?;
        let data = &event["ActionData"];
        let actions = match (
            event["InvocationEventType"].as_str().unwrap_or_default(),
            data["Type"].as_str(),
        ) {
            ("NEW_INBOUND_CALL", _) => serde_json::json!([{"Type": "JoinChimeMeeting",
                "Parameters": {"JoinToken": self.token, "ParticipantTag": "LEG-A"}}]),
            ("ACTION_FAILED", Some("JoinChimeMeeting")) => serde_json::json!([{"Type": "Hangup",
                "Parameters": {"SipResponseCode": "403", "ParticipantTag": "LEG-A"}}]),
            ("HANGUP", _) if data["Parameters"]["ParticipantTag"] == "LEG-B" => {
                serde_json::json!([{"Type": "Hangup",
                    "Parameters": {"SipResponseCode": "0", "ParticipantTag": "LEG-A"}}])
            }
            _ => serde_json::json!([]),
        };
        let response = serde_json::json!({"SchemaVersion": "1.0", "Actions": actions});
        sma_actions::ParsedResponse::read(&response.to_string(), &sma_actions::Limits::default())
            .map_err(sma_handler::InvokeError::InvalidResponse)
    }
}

/// Where a dial-in carries its join token: the Request-URI's `X-chime-join-token`
/// parameter, the To URI's, or an `X-chime-join-token` header (names case-insensitive).
pub fn join_token(invite: &sma_sip::Request) -> Option<String> {
    // A parameter's `%XX` escapes are decoded (a broken escape keeps the text as sent, which
    // then matches no attendee).
    let param = |uri: &sma_sip::message::Uri| {
        uri.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(crate::meeting_backend::TOKEN_PARAM))
            .map(|(_, v)| {
                let v = v.unwrap_or_default();
                crate::meeting_backend::unescape_param(v).unwrap_or_else(|| v.to_owned())
            })
    };
    param(&invite.uri)
        .or_else(|| param(&invite.to.uri))
        .or_else(|| {
            invite
                .headers
                .get("X-chime-join-token")
                .map(|v| v.trim().to_owned())
        })
}

impl Meetings {
    /// Why a dial-in's token lets nobody in, if it does not (for the 403's Warning).
    pub fn check_token(&self, token: &str) -> Result<(), String> {
        self.lookup(token).map(|_| ())
    }
}

/// The rule a dial-in runs under: the runtime's own [`DialIn`] handler for `token`.
pub fn dial_in_rule(
    connector: &crate::routing_table::VoiceConnector,
    token: String,
) -> Arc<crate::routing_table::SipRule> {
    const ID: &str = "meeting-dial-in";
    let target = sma_handler::Target {
        name: ID.into(),
        application_id: ID.into(),
        region: connector.region.clone(),
        priority: 1,
        endpoint: sma_handler::HandlerEndpoint::Builtin(Arc::new(DialIn::new(token))),
    };
    Arc::new(crate::routing_table::SipRule {
        id: ID.into(),
        name: "meeting dial-in".into(),
        trigger: crate::routing::TriggerType::RequestUriHostname,
        trigger_value: connector.host.clone(),
        disabled: false,
        chain: Arc::new(sma_handler::FailoverChain::new(
            vec![target],
            sma_handler::CoolDownPolicy::default(),
        )),
        targets: vec![ID.into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sma_store::records::{Attendee, AttendeeCapabilities, JoinToken, Meeting};

    fn meeting(id: &str, created_ms: u64) -> Meeting {
        Meeting {
            meeting_id: id.into(),
            meeting_host_id: None,
            external_meeting_id: "x1".into(),
            media_region: "us-east-1".into(),
            media_placement: serde_json::json!({}),
            meeting_features: None,
            primary_meeting_id: None,
            tenant_ids: Vec::new(),
            meeting_arn: format!("arn:aws:chime:us-east-1:0:meeting/{id}"),
            client_request_token: id.into(),
            notifications: None,
            attendees: vec![Attendee {
                external_user_id: "u1".into(),
                attendee_id: format!("{id}-a"),
                join_token: format!("{id}-token"),
                capabilities: AttendeeCapabilities::default(),
            }],
            max_attendees: 10,
            tags: Vec::new(),
            created_ms,
        }
    }

    #[test]
    fn meetings_nobody_is_in_end_after_the_idle_time_and_occupied_ones_stay() {
        let store: Arc<dyn Store> = Arc::new(sma_store::SqliteStore::in_memory().unwrap());
        {
            let mut tx = store.begin().unwrap();
            for (id, created) in [("old", 0u64), ("new", 290_000), ("busy", 0)] {
                tx.put(&meeting(id, created)).unwrap();
                tx.put(&JoinToken {
                    join_token: format!("{id}-token"),
                    meeting_id: id.into(),
                    attendee_id: format!("{id}-a"),
                })
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let meetings = Meetings::start(store.clone(), ConferenceConfig::default(), 10).unwrap();
        let (input, output) = (PcmPipe::new(8000, 100), PcmPipe::new(8000, 100));
        let both = AudioCapability::from_model("SendReceive");
        meetings
            .clock()
            .mixer()
            .join("busy", "busy-a", input, output, both)
            .unwrap();
        let idle = std::time::Duration::from_secs(300);
        assert_eq!(meetings.sweep(idle, 300_000), vec!["old".to_string()]);
        assert!(
            meetings.lookup("old-token").is_err(),
            "its tokens went with it"
        );
        assert!(meetings.lookup("new-token").is_ok());
        // The busy one empties: it ends 300 s after it was last seen occupied.
        meetings.clock().mixer().remove("busy", "busy-a");
        assert!(meetings.sweep(idle, 500_000).is_empty());
        let mut ended = meetings.sweep(idle, 600_001);
        ended.sort();
        assert_eq!(ended, ["busy", "new"]);
    }
}

#[cfg(test)]
mod registry_tests {
    use super::super::actor::{CallRegistry, Msg};
    use sma_api::voice::Effect;
    use tokio::sync::mpsc;

    #[test]
    fn a_meetings_news_reaches_only_the_calls_in_that_meeting() {
        let registry = CallRegistry::default();
        let mut receivers = Vec::new();
        for id in ["in-1", "in-2", "elsewhere", "no-meeting"] {
            let (tx, rx) = mpsc::unbounded_channel();
            registry.lock().insert(id.into(), ("app".into(), tx));
            receivers.push(rx);
        }
        registry.entered_meeting("m1", "in-1");
        registry.entered_meeting("m1", "in-2");
        registry.entered_meeting("m2", "elsewhere");
        registry.meeting_changed(&Effect::MeetingEnded {
            meeting_id: "m1".into(),
        });
        let got: Vec<bool> = receivers
            .iter_mut()
            .map(|rx| matches!(rx.try_recv(), Ok(Msg::Meeting(_))))
            .collect();
        assert_eq!(got, [true, true, false, false]);
        // Once it left, a call hears nothing more of the meeting.
        registry.left_meeting("m1", "in-1");
        registry.left_meeting("m1", "in-2");
        registry.meeting_changed(&Effect::MeetingEnded {
            meeting_id: "m1".into(),
        });
        assert!(receivers.iter_mut().all(|rx| rx.try_recv().is_err()));
    }
}
