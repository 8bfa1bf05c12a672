//! The call actor: one tokio task per transaction, the one owner of its [`CallEngine`], its
//! handler invoker, and its legs (each leg's SIP dialog handle, RTP stream, receive task,
//! collectors and recorders). Everything it waits for arrives as a message on one channel —
//! SIP signals from the endpoint (tagged with the leg's dialog), handler results, prompts
//! loaded, playback finished, media events — so the task is a plain loop over messages and
//! the next deadline.
//!
//! The work is split by subject: this module runs the loop, the engine and the handler;
//! [`super::legs`] owns a leg's media and the actions that run on one leg;
//! [`super::bridging`] dials a second leg (`CallAndBridge`) and connects the two.

use super::bridging::Dialing;
use super::digits::{Collector, Listener, Step};
use crate::cdr::{CallRecord, CdrWriter};
use crate::outbound::Carrier;
use crate::routing_table::RoutingTable;
use serde_json::Value;
use sma_actions::{CallDetails, InvocationEvent, RecordingDestination};
use sma_engine::{ActionCommand, ActionResult, CallEngine, EngineConfig, Outcome, Output};
use sma_handler::{CallInvoker, FailoverChain, InvokeError};
use sma_media::bridge::{Destination, ReceiverControl, RelayGate};
use sma_media::codec::AudioCodec;
use sma_media::leg::{LegEvent, LegSockets};
use sma_media::output::OutputControl;
use sma_media::pacer::{Pacer, StreamHandle};
use sma_media::prompt::{EncodedPrompt, PromptCache};
use sma_media::record::{CallRecorder, Recorder};
use sma_media::rtp::SendCounters;
use sma_media::storage::Buckets;
use sma_media::tts::Synthesizer;
use sma_sip::auth::Credentials;
use sma_sip::message::{Headers, NameAddr, Uri};
use sma_sip::ua::CallHandle;
use sma_sip::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

/// What the actor asks the endpoint (the SIP side) to do for one of its legs.
pub enum SipCommand {
    /// Send 200 OK with the negotiated answer.
    Answer {
        call: CallHandle,
        /// When the far end of a bridge answered, when that is why this call is answered
        /// (the endpoint logs the answer-to-bridge latency the benchmark reads).
        bridged_at: Option<Instant>,
    },
    /// BYE when answered, CANCEL for our unanswered INVITE, else this final status.
    Hangup { call: CallHandle, status: u16 },
    /// The transaction is over; the endpoint forgets the call.
    Finished { call: CallHandle },
    /// A provisional response on an inbound leg: 180, or 183 with our answer (early media,
    /// for a ringback tone).
    Provisional { call: CallHandle, early_media: bool },
    /// Places an outbound leg; the outcome comes back as [`SipSignal::Dialed`].
    Dial(Box<DialRequest>),
    /// Registers with a carrier's registrar and keeps the registration refreshed.
    Register(Box<RegisterRequest>),
    /// A meeting dial-in's join token was read (the endpoint sends this to itself).
    DialInChecked(Box<crate::sip::endpoint::DialInCheck>),
}

/// A carrier registration to keep.
pub struct RegisterRequest {
    /// The carrier's name, for the log.
    pub carrier: String,
    pub registrar: Uri,
    pub aor: NameAddr,
    pub destination: SocketAddr,
    pub transport: Transport,
    pub expires: u32,
    pub credentials: Option<Credentials>,
}

/// An outbound leg to place.
pub struct DialRequest {
    /// Comes back in [`SipSignal::Dialed`], to match the answer to the request.
    pub token: u64,
    pub target: Uri,
    pub destination: SocketAddr,
    pub transport: Transport,
    /// Who calls (the caller ID) and whom.
    pub from: NameAddr,
    pub to: NameAddr,
    /// Headers the handler asked for (`SipHeaders`).
    pub headers: Headers,
    pub credentials: Option<Credentials>,
    /// Where the leg's signals go.
    pub signals: SignalSender,
}

/// The channel a call's legs report on, each signal tagged with its leg's dialog.
pub type SignalSender = mpsc::UnboundedSender<(CallHandle, SipSignal)>;

/// What the endpoint tells the actor about one leg.
pub enum SipSignal {
    /// The leg ended (BYE, CANCEL, rejection, timeout), with the status for `HANGUP`;
    /// `unconfirmed` when our 200 OK was never acknowledged (the call never really began).
    Ended {
        status: u16,
        unconfirmed: bool,
        /// What the transport said when the INVITE could not be delivered.
        why: Option<String>,
    },
    /// An offer/answer exchange changed the leg's media (re-INVITE, UPDATE, the answer in a
    /// late-offer ACK): where to send, the codec, the packet time, hold.
    Media(MediaUpdate),
    /// The session cannot carry media (a late offer's ACK, or an outbound leg's answer, had
    /// no usable SDP): the leg is ended, and the record says why.
    MediaFailed(String),
    /// A [`DialRequest`] was placed, with the media sockets its offer names, or could not be.
    Dialed {
        token: u64,
        result: Result<LegSockets, String>,
    },
    /// The far end of an outbound leg answered the INVITE at all (100 Trying).
    Trying,
    /// The far end of an outbound leg is ringing (180, or 183 with early media).
    Progress { status: u16 },
    /// An outbound leg answered, with the media its answer negotiated, and when its 200 OK
    /// arrived.
    Answered(MediaUpdate, Instant),
}

/// A leg's media after an offer/answer exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaUpdate {
    pub remote: SocketAddr,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub ptime: u32,
    pub rtcp_mux: bool,
    /// This side may send (not held, not `recvonly`/`inactive`, not `c=0.0.0.0`).
    pub send: bool,
    /// SDES-SRTP keys when the stream is encrypted.
    pub srtp: Option<SrtpKeys>,
}

pub use sma_net::sdes::SrtpKeys;

/// Node-wide things every call uses.
pub struct CallContext {
    pub pacer: Pacer,
    pub prompts: PromptCache,
    pub tts: Arc<dyn Synthesizer>,
    pub buckets: Buckets,
    pub engine: EngineConfig,
    pub inactivity: Duration,
    pub max_recording: Duration,
    pub cdr: CdrWriter,
    pub calls: Arc<CallRegistry>,
    /// The routing resources, for where a new leg goes.
    pub routing: Arc<RoutingTable>,
    pub carriers: Arc<Vec<Carrier>>,
    /// This runtime's own SIP listener, for numbers its rules serve (on-net calls).
    pub on_net: Option<(SocketAddr, Transport)>,
    /// A route that gives no response at all in this time is abandoned for the next.
    pub route_response_timeout: Duration,
    /// Meetings calls join (`JoinChimeMeeting`) and their mixer.
    pub meetings: Arc<super::meeting::Meetings>,
}

/// A leg's negotiated media and its sockets, as an inbound call starts with them.
pub struct LegMedia {
    pub negotiated: MediaUpdate,
    pub sockets: LegSockets,
}

/// Everything a new inbound call starts with.
pub struct CallSetup {
    pub details: CallDetails,
    pub rule_id: String,
    pub hostname_rule: bool,
    pub voice_connector: Option<String>,
    pub chain: Arc<FailoverChain>,
    /// Target applications whose message logs are on
    /// (`PutSipMediaApplicationLoggingConfiguration`): every event and response is logged.
    pub message_logs: Vec<String>,
    pub media: LegMedia,
    pub commands: mpsc::UnboundedSender<SipCommand>,
    pub signals: mpsc::UnboundedReceiver<(CallHandle, SipSignal)>,
    /// The sending side of `signals`, handed to the endpoint for the legs this call dials.
    pub signals_tx: SignalSender,
    pub sip_call_id: String,
    pub call: CallHandle,
}

/// Everything a call placed with `CreateSipMediaApplicationCall` starts with.
pub struct OutboundSetup {
    pub details: CallDetails,
    pub chain: Arc<FailoverChain>,
    pub message_logs: Vec<String>,
    /// The API's `ArgumentsMap`.
    pub arguments: serde_json::Map<String, Value>,
    /// E.164 numbers: the caller ID and the called party.
    pub from: String,
    pub to: String,
    /// The API's `SipHeaders`, sent on the INVITE.
    pub headers: Headers,
    pub commands: mpsc::UnboundedSender<SipCommand>,
}

/// The API call's LEG-A, dialed once `NEW_OUTBOUND_CALL` has been answered.
pub(super) struct PendingOutbound {
    from: String,
    to: String,
    headers: Headers,
}

pub(super) enum Msg {
    Signal(CallHandle, SipSignal),
    Invoked(
        Result<sma_actions::ParsedResponse, InvokeError>,
        Box<CallInvoker>,
    ),
    FirstInvoked(Result<sma_handler::Answered, sma_handler::AllFailed>),
    /// A leg's output played source `id` to its end.
    Played(usize, u64),
    Prompts(u64, Result<Vec<Arc<EncodedPrompt>>, (String, String)>),
    Leg(usize, LegEvent),
    /// What a leg's output sent, decoded (for its call recording).
    Outgoing(usize, Vec<i16>),
    RecordingDone(u64, Result<RecordingDestination, String>, Option<String>),
    /// `UpdateSipMediaApplicationCall`'s arguments.
    UpdateRequested(serde_json::Map<String, Value>),
    /// A route's host was resolved (dial `token`).
    Resolved(u64, Result<SocketAddr, String>),
    /// The meetings API changed a meeting (deleted it, or an attendee, or capabilities).
    Meeting(sma_api::voice::Effect),
    /// An attendee joined a meeting again from some call, whose mixer input is this pipe:
    /// any other call holding that attendee's session lets it go.
    Rejoined {
        meeting_id: String,
        attendee_id: String,
        session: Arc<sma_media::bridge::PcmPipe>,
    },
}

/// Calls in progress by TransactionId, so the management API can reach them.
#[derive(Default)]
pub struct CallRegistry {
    calls:
        std::sync::Mutex<std::collections::HashMap<String, (String, mpsc::UnboundedSender<Msg>)>>,
    /// The calls in each meeting (by MeetingId, their TransactionIds): a meeting's news goes
    /// to its own calls, not to every call of the node.
    meetings:
        std::sync::Mutex<std::collections::HashMap<String, std::collections::HashSet<String>>>,
}

impl CallRegistry {
    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (String, mpsc::UnboundedSender<Msg>)>,
    > {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meetings(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, std::collections::HashSet<String>>,
    > {
        self.meetings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Call `transaction_id` is in meeting `meeting_id` (it joined through this node's mixer).
    pub(super) fn entered_meeting(&self, meeting_id: &str, transaction_id: &str) {
        self.meetings()
            .entry(meeting_id.to_owned())
            .or_default()
            .insert(transaction_id.to_owned());
    }

    /// Call `transaction_id` left meeting `meeting_id`.
    pub(super) fn left_meeting(&self, meeting_id: &str, transaction_id: &str) {
        let mut meetings = self.meetings();
        if let Some(calls) = meetings.get_mut(meeting_id) {
            calls.remove(transaction_id);
            if calls.is_empty() {
                meetings.remove(meeting_id);
            }
        }
    }

    /// Sends `msg()` to every call in `meeting_id`.
    fn tell_meeting(&self, meeting_id: &str, msg: impl Fn() -> Msg) {
        let members: Vec<String> = self
            .meetings()
            .get(meeting_id)
            .map(|calls| calls.iter().cloned().collect())
            .unwrap_or_default();
        let calls = self.lock();
        for transaction_id in members {
            if let Some((_, tx)) = calls.get(&transaction_id) {
                let _ = tx.send(msg());
            }
        }
    }

    /// Tells the calls in a meeting of a meetings API change about it; they follow it.
    pub fn meeting_changed(&self, effect: &sma_api::voice::Effect) {
        self.tell_meeting(effect.meeting_id(), || Msg::Meeting(effect.clone()));
    }

    /// Tells the calls in `meeting_id` that an attendee joined it again with the mixer input
    /// `session`; the call that held its earlier session leaves.
    pub(super) fn attendee_rejoined(
        &self,
        meeting_id: &str,
        attendee_id: &str,
        session: &Arc<sma_media::bridge::PcmPipe>,
    ) {
        self.tell_meeting(meeting_id, || Msg::Rejoined {
            meeting_id: meeting_id.to_owned(),
            attendee_id: attendee_id.to_owned(),
            session: session.clone(),
        });
    }

    /// Delivers `CALL_UPDATE_REQUESTED` to the call `transaction_id` of application
    /// `sip_media_application_id`.
    pub fn update(
        &self,
        sip_media_application_id: &str,
        transaction_id: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<(), sma_api::voice::CallUpdateError> {
        let calls = self.lock();
        let no_call = || sma_api::voice::CallUpdateError::NoSuchCall(transaction_id.to_owned());
        let (application, tx) = calls.get(transaction_id).ok_or_else(no_call)?;
        if application != sip_media_application_id {
            return Err(no_call());
        }
        tx.send(Msg::UpdateRequested(arguments))
            .map_err(|_| no_call())
    }
}

/// A running action's media state.
pub(super) enum Running {
    Pause {
        id: u64,
        until: Instant,
    },
    Play {
        id: u64,
        terminators: Vec<char>,
    },
    Collect {
        id: u64,
        collector: Collector,
        prompt: Option<Arc<EncodedPrompt>>,
        failure: Option<Arc<EncodedPrompt>>,
    },
    Send {
        id: u64,
    },
    Record {
        id: u64,
        recorder: Option<Recorder>,
        destination: RecordingDestination,
        until: Instant,
    },
    /// Waiting for prompts or speech to be loaded.
    Loading {
        id: u64,
        command: Box<ActionCommand>,
    },
    /// A `CallAndBridge` dialing its second leg (see [`Dialing`]).
    Bridge {
        id: u64,
    },
}

impl Running {
    pub(super) fn id(&self) -> u64 {
        match self {
            Running::Pause { id, .. }
            | Running::Play { id, .. }
            | Running::Collect { id, .. }
            | Running::Send { id }
            | Running::Record { id, .. }
            | Running::Loading { id, .. }
            | Running::Bridge { id } => *id,
        }
    }
}

pub(super) struct CallRecording {
    pub recorder: CallRecorder,
    pub location: String,
    pub paused: bool,
    pub stopped: bool,
    /// It records what the party hears (`BOTH`, `OUTGOING`): the output is tapped.
    pub taps_outgoing: bool,
}

/// A leg's running media.
pub(super) struct Media {
    pub output: OutputControl,
    pub stream: StreamHandle,
    pub receiver: tokio::task::JoinHandle<()>,
    /// The far end holds the call (or our direction does not send).
    pub held: bool,
    /// What the receive task does with what arrives.
    pub control: ReceiverControl,
    /// The outgoing stream's SSRC and shared state, for a relay into it.
    pub ssrc: u32,
    pub counters: Arc<SendCounters>,
    pub destination: Destination,
    /// Whether a relay may send into this leg's stream now.
    pub gate: RelayGate,
    /// SRTP contexts, for a relay into this leg.
    pub srtp: Option<sma_media::leg::LegSrtp>,
}

/// One leg of the transaction: a SIP dialog and its media.
pub(super) struct Leg {
    /// The participant's `CallId`.
    pub id: String,
    pub call: CallHandle,
    pub sockets: Option<LegSockets>,
    /// The media the last offer/answer negotiated.
    pub negotiated: Option<MediaUpdate>,
    pub media: Option<Media>,
    pub answered: bool,
    pub ended: bool,
    pub listener: Option<(Listener, sma_actions::ActionData)>,
    pub recording: Option<CallRecording>,
    pub recording_started: bool,
    /// What the output plays for the running action or a ringback (stale "finished" reports
    /// of a replaced source are ignored).
    pub playing: Option<u64>,
    /// Noise suppression on what this leg receives (`VoiceFocus`).
    pub voice_focus: bool,
    /// How the other party's audio reaches this leg while bridged.
    pub bridge_in: Option<super::bridging::BridgeIn>,
    pub record: CallRecord,
}

pub(super) struct Actor {
    pub ctx: Arc<CallContext>,
    pub engine: CallEngine,
    pub chain: Arc<FailoverChain>,
    pub message_logs: Vec<String>,
    pub invoker: Option<CallInvoker>,
    pub tx: mpsc::UnboundedSender<Msg>,
    pub commands: mpsc::UnboundedSender<SipCommand>,
    pub signals_tx: SignalSender,
    pub legs: Vec<Leg>,
    /// The running action and the leg it runs on.
    pub running: Option<(usize, Running)>,
    /// A `CallAndBridge` placing its second leg.
    pub dialing: Option<Dialing>,
    /// LEG-A in a meeting (`JoinChimeMeeting`).
    pub meeting: Option<super::meeting::MeetingLeg>,
    /// The `MeetingId` of a meeting hosted elsewhere that the call joined through its
    /// application's `meeting_dial_in` (the meeting leg is then the bridge's LEG-B).
    pub remote_meeting: Option<String>,
    /// The two legs whose media is connected.
    pub bridge: Option<(usize, usize)>,
    pub next_play: u64,
    pub next_token: u64,
    /// An API call not dialed yet.
    pub pending_outbound: Option<PendingOutbound>,
    /// An API call that never reached anyone (its LEG-A has no dialog to finish).
    pub outbound_failed: bool,
    /// When a bridge's far end answered, until the caller's answer goes out.
    pub bridged_at: Option<Instant>,
}

/// Runs one inbound call to its end.
pub fn spawn(ctx: Arc<CallContext>, setup: CallSetup) {
    let transaction_id = setup.details.transaction_id.clone();
    let span =
        info_span!("call", transaction_id = %transaction_id, sip_call_id = %setup.sip_call_id);
    tokio::spawn(run(ctx, setup).instrument(span));
}

/// Forwards a call's SIP signals into its actor's channel.
fn forward_signals(
    mut signals: mpsc::UnboundedReceiver<(CallHandle, SipSignal)>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    tokio::spawn(async move {
        while let Some((call, s)) = signals.recv().await {
            if tx.send(Msg::Signal(call, s)).is_err() {
                return;
            }
        }
    });
}

/// Runs one call placed with `CreateSipMediaApplicationCall` to its end, on `runtime`.
pub fn spawn_outbound(
    runtime: &tokio::runtime::Handle,
    ctx: Arc<CallContext>,
    setup: OutboundSetup,
) {
    let transaction_id = setup.details.transaction_id.clone();
    let span = info_span!("call", transaction_id = %transaction_id, direction = "outbound");
    runtime.spawn(run_outbound(ctx, setup).instrument(span));
}

async fn run_outbound(ctx: Arc<CallContext>, setup: OutboundSetup) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (signals_tx, signals) = mpsc::unbounded_channel();
    forward_signals(signals, tx.clone());
    let transaction_id = setup.details.transaction_id.clone();
    ctx.calls.lock().insert(
        transaction_id.clone(),
        (setup.details.sip_media_application_id.clone(), tx.clone()),
    );
    let arguments = (!setup.arguments.is_empty()).then_some(setup.arguments);
    let engine = CallEngine::outbound(ctx.engine.clone(), setup.details, arguments);
    let actor = Actor {
        ctx,
        engine,
        chain: setup.chain,
        message_logs: setup.message_logs,
        invoker: None,
        tx,
        commands: setup.commands,
        signals_tx,
        legs: Vec::new(),
        running: None,
        dialing: None,
        meeting: None,
        remote_meeting: None,
        bridged_at: None,
        bridge: None,
        next_play: 1,
        next_token: 1,
        pending_outbound: Some(PendingOutbound {
            from: setup.from,
            to: setup.to,
            headers: setup.headers,
        }),
        outbound_failed: false,
    };
    drive(actor, rx, transaction_id).await;
}

async fn run(ctx: Arc<CallContext>, setup: CallSetup) {
    let now = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    forward_signals(setup.signals, tx.clone());
    let first = setup.details.participants.first();
    let leg_id = first.map(|p| p.call_id.clone()).unwrap_or_default();
    let mut record = CallRecord::inbound(&setup.details, &setup.rule_id);
    record.trigger(setup.hostname_rule, setup.voice_connector.clone());
    let transaction_id = setup.details.transaction_id.clone();
    ctx.calls.lock().insert(
        transaction_id.clone(),
        (setup.details.sip_media_application_id.clone(), tx.clone()),
    );
    let engine = CallEngine::inbound(ctx.engine.clone(), setup.details, now);
    let leg = Leg {
        id: leg_id,
        call: setup.call,
        sockets: Some(setup.media.sockets),
        negotiated: Some(setup.media.negotiated),
        media: None,
        answered: false,
        ended: false,
        listener: None,
        recording: None,
        recording_started: false,
        playing: None,
        voice_focus: false,
        bridge_in: None,
        record,
    };
    let actor = Actor {
        ctx,
        engine,
        chain: setup.chain,
        message_logs: setup.message_logs,
        invoker: None,
        tx,
        commands: setup.commands,
        signals_tx: setup.signals_tx,
        legs: vec![leg],
        running: None,
        dialing: None,
        meeting: None,
        remote_meeting: None,
        bridged_at: None,
        bridge: None,
        next_play: 1,
        next_token: 1,
        pending_outbound: None,
        outbound_failed: false,
    };
    drive(actor, rx, transaction_id).await;
}

/// The actor's loop: messages and deadlines until the engine says the transaction is over.
async fn drive(mut actor: Actor, mut rx: mpsc::UnboundedReceiver<Msg>, transaction_id: String) {
    actor.drain_engine();
    loop {
        if actor.engine.is_finished() {
            break;
        }
        let deadline = actor.next_deadline();
        let sleep = sma_net::time::sleep_until(deadline);
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                actor.on_message(msg);
            }
            _ = sleep => actor.on_timeout(Instant::now()),
        }
        actor.drain_engine();
    }
    let ctx = actor.ctx.clone();
    actor.finish();
    ctx.calls.lock().remove(&transaction_id);
}

impl Actor {
    fn next_deadline(&self) -> Option<Instant> {
        let mut at = self.engine.poll_timeout();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a: Instant| a.min(t)));
            }
        };
        match &self.running {
            Some((_, Running::Pause { until, .. })) | Some((_, Running::Record { until, .. })) => {
                consider(Some(*until))
            }
            Some((_, Running::Collect { collector, .. })) => consider(collector.poll_timeout()),
            _ => {}
        }
        for leg in &self.legs {
            if let Some((l, _)) = &leg.listener {
                consider(l.poll_timeout());
            }
        }
        if let Some(d) = &self.dialing {
            consider(d.next_deadline());
        }
        at
    }

    fn on_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        for i in 0..self.legs.len() {
            if let Some((listener, data)) = &mut self.legs[i].listener {
                if let Some(digits) = listener.handle_timeout(now) {
                    let data = data.clone();
                    info!(%digits, leg = %self.legs[i].id, "digits matched the ReceiveDigits listener");
                    self.engine.on_digits_received(&data, &digits);
                }
            }
        }
        self.dialing_timeout(now);
        match &mut self.running {
            Some((_, Running::Pause { id, until })) if *until <= now => {
                let id = *id;
                self.running = None;
                self.done(id, Outcome::Succeeded(ActionResult::default()));
            }
            Some((_, Running::Record { until, .. })) if *until <= now => {
                self.finish_record(sma_media::record::RecordEnd::Duration);
            }
            Some((_, Running::Collect { collector, .. })) => {
                let step = collector.handle_timeout(now);
                self.collect_step(step);
            }
            _ => {}
        }
    }

    pub(super) fn drain_engine(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Invoke(event) => self.invoke(*event),
                Output::Start(command) => self.start(*command),
                Output::Interrupt(id) => {
                    if self.running.as_ref().is_some_and(|(_, r)| r.id() == id) {
                        self.stop_running();
                        self.done(id, Outcome::Interrupted);
                    }
                }
                Output::Hangup { call_id, status } => {
                    if let Some(i) = self.leg_index(&call_id) {
                        if self.running.as_ref().is_some_and(|(leg, _)| *leg == i) {
                            self.stop_running();
                        }
                        self.hang_up(i, status);
                    } else {
                        // An API call's LEG-A not (yet) reached: it ends here.
                        self.pending_outbound = None;
                        self.abandon_dialing("the transaction ended before the call was answered");
                        self.engine.on_leg_ended(&call_id, status);
                    }
                }
                Output::Refused {
                    action_type,
                    error_type,
                    message,
                    ..
                } => info!(action = %action_type, %error_type, %message, "action refused"),
                Output::Finished => {}
            }
        }
    }

    pub(super) fn leg_index(&self, call_id: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.id == call_id)
    }

    fn leg_of_call(&self, call: CallHandle) -> Option<usize> {
        self.legs.iter().position(|l| l.call == call)
    }

    /// Asks the endpoint to end leg `i` (BYE, CANCEL, or `status` for an unanswered caller).
    pub(super) fn hang_up(&mut self, i: usize, status: u16) {
        let _ = self.commands.send(SipCommand::Hangup {
            call: self.legs[i].call,
            status,
        });
    }

    /// Logs one message to or from application `app` when its message logs are on.
    fn message_log(&self, app: &str, direction: &str, message: impl FnOnce() -> String) {
        if self.message_logs.iter().any(|a| a == app) {
            info!(target: "sma::messages", application = app, direction, json = %message(), "handler message");
        }
    }

    fn invoke(&mut self, event: InvocationEvent) {
        info!(
            sequence = event.sequence,
            event = event.invocation_event_type.as_str(),
            "invoking handler"
        );
        self.message_log(
            &event.call_details.sip_media_application_id,
            "event",
            || serde_json::to_string(&event).unwrap_or_default(),
        );
        let tx = self.tx.clone();
        match self.invoker.take() {
            None => {
                // Until a target answered, the failover chain picks one (contract §5.4).
                let chain = self.chain.clone();
                tokio::spawn(async move {
                    let result = chain.invoke(&event).await;
                    let _ = tx.send(Msg::FirstInvoked(result));
                });
            }
            Some(mut invoker) => {
                let transaction_id = event.call_details.transaction_id.clone();
                let json = serde_json::to_string(&event);
                // The invoker travels with the invocation and comes back with its result;
                // the engine never invokes twice at once, so nothing else needs it meanwhile.
                tokio::spawn(async move {
                    let result = match json {
                        Ok(json) => invoker.invoke(&json, &transaction_id).await,
                        Err(e) => Err(InvokeError::Load(format!("event not serializable: {e}"))),
                    };
                    let _ = tx.send(Msg::Invoked(result, Box::new(invoker)));
                });
            }
        }
    }

    fn on_message(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Signal(call, signal) => self.on_signal(call, signal, now),
            Msg::FirstInvoked(Ok(answered)) => {
                if let Some(leg) = self.legs.first_mut() {
                    for failure in &answered.failures {
                        leg.record.failed_target(failure);
                    }
                }
                self.engine
                    .pin_application(&answered.application_id, &answered.region);
                if let Some(leg) = self.legs.first_mut() {
                    leg.record
                        .application(&answered.application_id, &answered.region);
                }
                self.invoker = self
                    .chain
                    .endpoint(answered.target_index)
                    .map(|e| e.for_call());
                self.message_log(&answered.application_id, "response", || {
                    answered.response.to_value().to_string()
                });
                self.engine.on_response(answered.response);
                if let Some(p) = self.pending_outbound.take() {
                    self.dial_outbound(&p.from, &p.to, p.headers, now);
                }
            }
            Msg::FirstInvoked(Err(all)) => {
                if let Some(leg) = self.legs.first_mut() {
                    for failure in &all.failures {
                        leg.record.failed_target(failure);
                    }
                }
                warn!(%all, "no target application could be invoked");
                self.engine.on_invoke_failed(&all.to_string(), false, now);
            }
            Msg::Invoked(result, invoker) => {
                self.invoker = Some(*invoker);
                match result {
                    Ok(value) => {
                        let app = self.engine.details().sip_media_application_id.clone();
                        self.message_log(&app, "response", || value.to_value().to_string());
                        self.engine.on_response(value)
                    }
                    Err(error) => {
                        let why = format!("{error} [{}]", error.kind());
                        warn!(%why, "handler invocation failed");
                        if let Some(leg) = self.legs.first_mut() {
                            leg.record.invocation_failure(&why);
                        }
                        let retryable = !matches!(error, InvokeError::DeadlineExceeded(_));
                        self.engine.on_invoke_failed(&why, retryable, now);
                    }
                }
            }
            Msg::Played(leg, id) => self.on_played(leg, id, now),
            Msg::Prompts(id, result) => self.on_prompts(id, result, now),
            Msg::Leg(leg, event) => self.on_leg_event(leg, event, now),
            Msg::UpdateRequested(arguments) => {
                info!("call update requested through the API");
                self.engine.on_update_requested(arguments);
            }
            Msg::Outgoing(leg, samples) => self.record_outgoing(leg, samples),
            Msg::RecordingDone(id, result, terminator) => {
                if self.running.as_ref().is_none_or(|(_, r)| r.id() != id) {
                    return;
                }
                self.running = None;
                match result {
                    Ok(destination) => self.done(
                        id,
                        Outcome::Succeeded(ActionResult {
                            recording_destination: Some(destination),
                            recording_terminator_used: terminator,
                            ..Default::default()
                        }),
                    ),
                    Err(why) => self.done(
                        id,
                        Outcome::Failed {
                            error_type: "SystemException".into(),
                            message: format!("System error while running action: {why}"),
                        },
                    ),
                }
            }
            Msg::Resolved(token, result) => self.on_resolved(token, result, now),
            Msg::Meeting(effect) => self.on_meeting_effect(effect),
            Msg::Rejoined {
                meeting_id,
                attendee_id,
                session,
            } => self.on_attendee_rejoined(&meeting_id, &attendee_id, &session),
        }
    }

    fn on_signal(&mut self, call: CallHandle, signal: SipSignal, now: Instant) {
        // Signals of the leg being dialed (before it is a leg of the call) go to the dialer.
        let Some(i) = self.leg_of_call(call) else {
            self.on_dial_signal(call, signal, now);
            return;
        };
        match signal {
            SipSignal::Media(update) => self.on_media_update(i, update),
            SipSignal::MediaFailed(why) => {
                warn!(%why, leg = %self.legs[i].id, "the session cannot carry media; ending the leg");
                self.legs[i].record.invocation_failure(&why);
                self.hang_up(i, 488);
            }
            SipSignal::Ended {
                status,
                unconfirmed,
                ..
            } => self.leg_ended(i, status, unconfirmed),
            // An established leg's dialog does not dial again.
            SipSignal::Dialed { .. }
            | SipSignal::Trying
            | SipSignal::Progress { .. }
            | SipSignal::Answered(..) => {}
        }
    }

    /// Leg `i` is gone: what ran on it stops, its media is released, the bridge (if any) is
    /// undone, and the engine hears of it (`HANGUP` for that leg; the other leg stays).
    fn leg_ended(&mut self, i: usize, status: u16, unconfirmed: bool) {
        if self.legs[i].ended {
            return;
        }
        self.legs[i].ended = true;
        info!(status, leg = %self.legs[i].id, "leg ended");
        let answered = self.legs[i].answered;
        let record = &mut self.legs[i].record;
        if unconfirmed {
            record.unconfirmed(
                "the call was never confirmed: our 200 OK got no ACK within 64*T1 (32 s)",
            );
        }
        record.end(status, answered && !unconfirmed);
        if self.running.as_ref().is_some_and(|(leg, _)| *leg == i) {
            self.stop_running();
        }
        if self
            .dialing
            .as_ref()
            .is_some_and(|d| d.bridge_from() == Some(i))
        {
            // The caller left while the bridge rang: the second leg is cancelled.
            self.abandon_dialing("the caller hung up while the bridged party rang");
        }
        // A caller who leaves a meeting hosted elsewhere takes its meeting leg along (the
        // runtime tears the meeting leg down, as for a meeting of its own).
        let remote_meeting_leg = self
            .bridge
            .filter(|(a, _)| *a == i && self.remote_meeting.is_some())
            .map(|(_, b)| b);
        if self.bridge.is_some_and(|(a, b)| a == i || b == i) {
            self.unbridge();
        }
        if self.meeting.as_ref().is_some_and(|m| m.leg == i) {
            self.leave_meeting(0);
        }
        if let Some(b) = remote_meeting_leg {
            self.hang_up(b, 0);
            self.leg_ended(b, 0, false);
        }
        self.stop_media(i);
        let id = self.legs[i].id.clone();
        self.engine.on_leg_ended(&id, status);
    }

    pub(super) fn done(&mut self, id: u64, outcome: Outcome) {
        if let Outcome::Failed {
            error_type,
            message,
        } = &outcome
        {
            info!(%error_type, %message, "action failed");
        }
        self.engine.on_action_done(id, outcome);
    }

    pub(super) fn fail(&mut self, id: u64, error_type: &str, message: impl Into<String>) {
        self.running = None;
        self.done(
            id,
            Outcome::Failed {
                error_type: error_type.to_owned(),
                message: message.into(),
            },
        );
    }

    fn collector_mut(&mut self) -> Option<&mut Collector> {
        match &mut self.running {
            Some((_, Running::Collect { collector, .. })) => Some(collector),
            _ => None,
        }
    }

    pub(super) fn collect_step(&mut self, step: Step) {
        let Some((
            leg,
            Running::Collect {
                id,
                prompt,
                failure,
                ..
            },
        )) = &self.running
        else {
            return;
        };
        let (leg, id, prompt, failure) = (*leg, *id, prompt.clone(), failure.clone());
        match step {
            Step::Nothing => {}
            Step::StopPrompt => self.stop_output(leg),
            Step::PlayFailure => {
                self.stop_output(leg);
                match failure {
                    Some(f) => {
                        self.play_prompt(leg, &f, 1);
                    }
                    None => {
                        let next = self.collector_mut().map(|c| c.failure_finished());
                        if let Some(next) = next {
                            self.collect_step(next);
                        }
                    }
                }
            }
            Step::PlayPrompt => {
                if let Some(p) = prompt {
                    self.play_prompt(leg, &p, 1);
                }
            }
            Step::Done(digits) => {
                self.stop_output(leg);
                info!(%digits, "digits collected");
                self.running = None;
                self.done(
                    id,
                    Outcome::Succeeded(ActionResult {
                        received_digits: Some(digits),
                        ..Default::default()
                    }),
                );
            }
            Step::NoInput => {
                self.running = None;
                self.done(id, Outcome::NoInput);
            }
            Step::Failed(error_type) => {
                self.fail(
                    id,
                    error_type,
                    "The digits entered did not match the expected input.",
                );
            }
        }
    }

    fn on_played(&mut self, leg: usize, play: u64, now: Instant) {
        if self.legs.get(leg).is_none_or(|l| l.playing != Some(play)) {
            return;
        }
        self.legs[leg].playing = None;
        if self.ringback_finished(leg, play) {
            return;
        }
        match &mut self.running {
            Some((l, Running::Play { id, .. })) | Some((l, Running::Send { id })) if *l == leg => {
                let id = *id;
                self.running = None;
                self.done(id, Outcome::Succeeded(ActionResult::default()));
            }
            Some((l, Running::Collect { collector, .. })) if *l == leg => {
                // Either the prompt or the failure prompt ended.
                let step = collector.failure_finished();
                if step == Step::Nothing {
                    collector.prompt_finished(now);
                } else {
                    self.collect_step(step);
                }
            }
            _ => {}
        }
        // Nothing of its own plays on the leg now: the other party is heard again.
        self.refresh_bridge();
    }

    fn finish(mut self) {
        self.stop_running();
        self.abandon_dialing("the transaction ended");
        self.unbridge();
        // Never leave a participant in the mixer behind (its meeting would never be empty).
        self.leave_meeting(0);
        for i in 0..self.legs.len() {
            self.stop_media(i);
        }
        let invocations = self.engine.invocations();
        let details = self.engine.details().clone();
        for leg in &mut self.legs {
            leg.record.invocations(invocations);
            leg.record.finish(&details);
            self.ctx.cdr.write(&leg.record);
            let _ = self.commands.send(SipCommand::Finished { call: leg.call });
        }
        info!(sequence = self.engine.sequence(), "transaction finished");
    }
}

pub(super) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u32
}
