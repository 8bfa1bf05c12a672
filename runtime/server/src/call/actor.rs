//! The call actor: one tokio task per transaction, the one owner of its [`CallEngine`], its
//! handler invoker, and its leg's media (the RTP stream, the receive task, collectors and
//! recorders). Everything it waits for arrives as a message on one channel — SIP signals from
//! the endpoint, handler results, prompts loaded, playback finished, media events — so the
//! task is a plain loop over messages and the engine's next deadline.

use super::digits::{CollectSpec, Collector, Listener, Step};
use super::engine::{ActionCommand, ActionResult, CallEngine, EngineConfig, Outcome, Output};
use super::storage::{self, Buckets};
use crate::cdr::{CallRecord, CdrWriter};
use serde_json::Value;
use sma_actions::{
    Action, AudioSource, CallDetails, CallRecordingDestination, DigitCollection, DigitsPattern,
    InvocationEvent, RecordingDestination, SpeechParameters,
};
use sma_handler::{CallInvoker, FailoverChain, InvokeError};
use sma_media::codec::AudioCodec;
use sma_media::dtmf::Digit;
use sma_media::leg::{spawn_receiver, LegConfig, LegEvent, LegSockets};
use sma_media::output::{LegOutput, OutputControl};
use sma_media::pacer::{FrameSource, Pacer, StreamHandle};
use sma_media::prompt::{EncodedPrompt, PromptCache, PromptError, PromptSource};
use sma_media::record::{CallRecorder, RecordEnd, RecordLimits, Recorder, Track};
use sma_media::rtp::{RtpSender, SendCounters};
use sma_media::source::digit_sequence;
use sma_media::tts::{self, SpeechRequest, Synthesizer, TextType};
use sma_sip::ua::CallHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

/// What the actor asks the endpoint (the SIP side) to do for its leg.
#[derive(Debug)]
pub enum SipCommand {
    /// Send 200 OK with the negotiated answer.
    Answer { call: CallHandle },
    /// BYE when answered, else this final status.
    Hangup { call: CallHandle, status: u16 },
    /// The transaction is over; the endpoint forgets the call.
    Finished { call: CallHandle },
}

/// What the endpoint tells the actor.
#[derive(Debug)]
pub enum SipSignal {
    /// The leg ended (BYE, CANCEL, rejection, timeout), with the status for `HANGUP`;
    /// `unconfirmed` when our 200 OK was never acknowledged (the call never really began).
    Ended { status: u16, unconfirmed: bool },
    /// An offer/answer exchange changed the leg's media (re-INVITE, UPDATE, the answer in a
    /// late-offer ACK): where to send, the codec, the packet time, hold.
    Media(MediaUpdate),
    /// The session cannot carry media (a late offer's ACK had no usable answer): the call is
    /// ended, and the record says why.
    MediaFailed(String),
}

/// The leg's media after an offer/answer exchange.
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
}

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
}

/// The leg's negotiated media.
pub struct LegMedia {
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub ptime: u32,
    pub remote: SocketAddr,
    pub rtcp_mux: bool,
    pub sockets: LegSockets,
    /// This side may send (the answer's direction sends and the far end is not on hold).
    pub send: bool,
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
    pub signals: mpsc::UnboundedReceiver<SipSignal>,
    pub sip_call_id: String,
    pub call: CallHandle,
}

enum Msg {
    Signal(SipSignal),
    Invoked(
        Result<sma_actions::ParsedResponse, InvokeError>,
        Box<CallInvoker>,
    ),
    FirstInvoked(Result<sma_handler::Answered, sma_handler::AllFailed>),
    Played(u64),
    Prompts(u64, Result<Vec<Arc<EncodedPrompt>>, (String, String)>),
    Leg(LegEvent),
    Outgoing(Vec<i16>),
    RecordingDone(u64, Result<RecordingDestination, String>, Option<String>),
    /// `UpdateSipMediaApplicationCall`'s arguments.
    UpdateRequested(serde_json::Map<String, Value>),
}

/// Calls in progress by TransactionId, so the management API can reach them.
#[derive(Default)]
pub struct CallRegistry {
    calls:
        std::sync::Mutex<std::collections::HashMap<String, (String, mpsc::UnboundedSender<Msg>)>>,
}

impl CallRegistry {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (String, mpsc::UnboundedSender<Msg>)>,
    > {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
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
enum Running {
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
}

impl Running {
    fn id(&self) -> u64 {
        match self {
            Running::Pause { id, .. }
            | Running::Play { id, .. }
            | Running::Collect { id, .. }
            | Running::Send { id }
            | Running::Record { id, .. }
            | Running::Loading { id, .. } => *id,
        }
    }
}

struct CallRecording {
    recorder: CallRecorder,
    location: String,
    paused: bool,
    stopped: bool,
    /// It records what the party hears (`BOTH`, `OUTGOING`): the output is tapped.
    taps_outgoing: bool,
}

struct Media {
    output: OutputControl,
    stream: StreamHandle,
    receiver: tokio::task::JoinHandle<()>,
    /// The far end holds the call (or our direction does not send).
    held: bool,
}

struct Actor {
    ctx: Arc<CallContext>,
    engine: CallEngine,
    chain: Arc<FailoverChain>,
    message_logs: Vec<String>,
    invoker: Option<CallInvoker>,
    tx: mpsc::UnboundedSender<Msg>,
    commands: mpsc::UnboundedSender<SipCommand>,
    leg_call_id: String,
    call: CallHandle,
    leg_media: Option<LegMedia>,
    media: Option<Media>,
    answered: bool,
    ended: bool,
    running: Option<Running>,
    listener: Option<(Listener, sma_actions::ActionData)>,
    recording: Option<CallRecording>,
    recording_started: bool,
    record: CallRecord,
    next_play: u64,
    /// What the leg's output is playing for the running action (stale "finished" reports of
    /// a replaced source are ignored).
    playing: Option<u64>,
}

/// Runs one inbound call to its end.
pub fn spawn(ctx: Arc<CallContext>, setup: CallSetup) {
    let transaction_id = setup.details.transaction_id.clone();
    let span =
        info_span!("call", transaction_id = %transaction_id, sip_call_id = %setup.sip_call_id);
    tokio::spawn(run(ctx, setup).instrument(span));
}

async fn run(ctx: Arc<CallContext>, setup: CallSetup) {
    let now = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut signals = setup.signals;
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(s) = signals.recv().await {
                if tx.send(Msg::Signal(s)).is_err() {
                    return;
                }
            }
        });
    }
    let leg_call_id = setup
        .details
        .participants
        .first()
        .map(|p| p.call_id.clone())
        .unwrap_or_default();
    let mut record = CallRecord::inbound(&setup.details, &setup.rule_id);
    record.trigger(setup.hostname_rule, setup.voice_connector.clone());
    let transaction_id = setup.details.transaction_id.clone();
    ctx.calls.lock().insert(
        transaction_id.clone(),
        (setup.details.sip_media_application_id.clone(), tx.clone()),
    );
    let engine = CallEngine::inbound(ctx.engine.clone(), setup.details, now);
    let mut actor = Actor {
        ctx,
        engine,
        chain: setup.chain,
        message_logs: setup.message_logs,
        invoker: None,
        tx,
        commands: setup.commands,
        leg_call_id,
        call: setup.call,
        leg_media: Some(setup.media),
        media: None,
        answered: false,
        ended: false,
        running: None,
        listener: None,
        recording: None,
        recording_started: false,
        record,
        next_play: 1,
        playing: None,
    };
    actor.drain_engine();
    loop {
        if actor.engine.is_finished() {
            break;
        }
        let deadline = actor.next_deadline();
        let sleep = crate::time::sleep_until(deadline);
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
            Some(Running::Pause { until, .. }) | Some(Running::Record { until, .. }) => {
                consider(Some(*until))
            }
            Some(Running::Collect { collector, .. }) => consider(collector.poll_timeout()),
            _ => {}
        }
        if let Some((l, _)) = &self.listener {
            consider(l.poll_timeout());
        }
        at
    }

    fn on_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        if let Some((listener, data)) = &mut self.listener {
            if let Some(digits) = listener.handle_timeout(now) {
                let data = data.clone();
                info!(%digits, "digits matched the ReceiveDigits listener");
                self.engine.on_digits_received(&data, &digits);
            }
        }
        match &mut self.running {
            Some(Running::Pause { id, until }) if *until <= now => {
                let id = *id;
                self.running = None;
                self.done(id, Outcome::Succeeded(ActionResult::default()));
            }
            Some(Running::Record { until, .. }) if *until <= now => {
                self.finish_record(RecordEnd::Duration);
            }
            Some(Running::Collect { collector, .. }) => {
                let step = collector.handle_timeout(now);
                self.collect_step(step);
            }
            _ => {}
        }
    }

    fn drain_engine(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Invoke(event) => self.invoke(*event),
                Output::Start(command) => self.start(*command),
                Output::Interrupt(id) => {
                    if self.running.as_ref().is_some_and(|r| r.id() == id) {
                        self.stop_running();
                        self.done(id, Outcome::Interrupted);
                    }
                }
                Output::Hangup { status, .. } => {
                    // One leg per transaction until bridging: it is this actor's leg.
                    self.stop_running();
                    let _ = self.commands.send(SipCommand::Hangup {
                        call: self.call,
                        status,
                    });
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
            Msg::Signal(SipSignal::Media(update)) => self.on_media_update(update),
            Msg::Signal(SipSignal::MediaFailed(why)) => {
                warn!(%why, "the session cannot carry media; ending the call");
                self.record.invocation_failure(&why);
                let _ = self.commands.send(SipCommand::Hangup {
                    call: self.call,
                    status: 488,
                });
            }
            Msg::Signal(SipSignal::Ended {
                status,
                unconfirmed,
            }) => {
                if !self.ended {
                    self.ended = true;
                    info!(status, "leg ended");
                    if unconfirmed {
                        self.record.unconfirmed(
                            "the call was never confirmed: our 200 OK got no ACK within 64*T1 (32 s)",
                        );
                    }
                    self.record.end(status, self.answered && !unconfirmed);
                    self.stop_running();
                    self.stop_media();
                    let id = self.leg_call_id.clone();
                    self.engine.on_leg_ended(&id, status);
                }
            }
            Msg::FirstInvoked(Ok(answered)) => {
                for failure in &answered.failures {
                    self.record.failed_target(failure);
                }
                self.engine
                    .pin_application(&answered.application_id, &answered.region);
                self.record
                    .application(&answered.application_id, &answered.region);
                self.invoker = self
                    .chain
                    .endpoint(answered.target_index)
                    .map(|e| e.for_call());
                self.message_log(&answered.application_id, "response", || {
                    answered.response.to_value().to_string()
                });
                self.engine.on_response(answered.response);
            }
            Msg::FirstInvoked(Err(all)) => {
                for failure in &all.failures {
                    self.record.failed_target(failure);
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
                        self.record.invocation_failure(&why);
                        let retryable = !matches!(error, InvokeError::DeadlineExceeded(_));
                        self.engine.on_invoke_failed(&why, retryable, now);
                    }
                }
            }
            Msg::Played(id) => self.on_played(id, now),
            Msg::Prompts(id, result) => self.on_prompts(id, result, now),
            Msg::Leg(event) => self.on_leg_event(event, now),
            Msg::UpdateRequested(arguments) => {
                info!("call update requested through the API");
                self.engine.on_update_requested(arguments);
            }
            Msg::Outgoing(samples) => {
                if let Some(r) = self.recording.as_mut().filter(|r| !r.stopped) {
                    let s = if r.paused {
                        vec![0; samples.len()]
                    } else {
                        samples
                    };
                    if let Err(e) = r.recorder.outgoing(&s) {
                        warn!(%e, "call recording write failed");
                    }
                }
            }
            Msg::RecordingDone(id, result, terminator) => {
                if self.running.as_ref().is_none_or(|r| r.id() != id) {
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
        }
    }

    fn done(&mut self, id: u64, outcome: Outcome) {
        if let Outcome::Failed {
            error_type,
            message,
        } = &outcome
        {
            info!(%error_type, %message, "action failed");
        }
        self.engine.on_action_done(id, outcome);
    }

    fn fail(&mut self, id: u64, error_type: &str, message: impl Into<String>) {
        self.running = None;
        self.done(
            id,
            Outcome::Failed {
                error_type: error_type.to_owned(),
                message: message.into(),
            },
        );
    }

    /// Answers the leg and starts its media (the first media action does this, §1.3).
    fn ensure_answered(&mut self) -> Result<(), String> {
        if self.ended {
            return Err("the leg has ended".into());
        }
        if self.answered {
            return Ok(());
        }
        self.start_media()?;
        self.answered = true;
        self.record.answered();
        let _ = self.commands.send(SipCommand::Answer { call: self.call });
        let leg_id = self.leg_call_id.clone();
        self.engine.on_leg_answered(&leg_id);
        Ok(())
    }

    /// Starts sending and receiving on the leg with its negotiated media.
    fn start_media(&mut self) -> Result<(), String> {
        let Some(leg) = self.leg_media.as_ref() else {
            return Err("no media for the leg".into());
        };
        let tx = self.tx.clone();
        let (output, control) = LegOutput::new(
            leg.codec,
            leg.payload_type,
            leg.ptime,
            Box::new(move |id| {
                let _ = tx.send(Msg::Played(id));
            }),
        )
        .map_err(|e| format!("codec: {e}"))?;
        let counters = Arc::new(SendCounters::default());
        let ssrc: u32 = rand_u32();
        let mut sender = RtpSender::new(ssrc, rand_u32() as u16, rand_u32());
        sender.shared = Some(counters.clone());
        let stream = self.ctx.pacer.add(
            leg.sockets.rtp.clone(),
            leg.remote,
            sender,
            Box::new(output),
            Duration::from_millis(u64::from(leg.ptime)),
            Instant::now(),
        );
        let retarget = stream.clone();
        let config = LegConfig {
            codec: leg.codec,
            audio_payload_type: leg.payload_type,
            telephone_event: leg.telephone_event,
            ptime_ms: leg.ptime,
            rtcp_mux: leg.rtcp_mux,
            remote: leg.remote,
            inactivity: self.ctx.inactivity,
            rtcp_interval: Duration::from_secs(5),
            inband_dtmf: false,
            ssrc,
            sent: Some(counters),
        };
        let (mut events, receiver) = spawn_receiver(
            &leg.sockets,
            config,
            Some(Arc::new(move |addr| retarget.retarget(addr))),
        )
        .map_err(|e| format!("media sockets: {e}"))?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if tx.send(Msg::Leg(e)).is_err() {
                    return;
                }
            }
        });
        let held = !leg.send;
        control.set_held(held);
        self.media = Some(Media {
            output: control,
            stream,
            receiver,
            held,
        });
        Ok(())
    }

    /// Sends what the party hears to the call recording.
    fn tap_outgoing(&self) {
        let tx = self.tx.clone();
        if let Some(m) = &self.media {
            let _ = m.output.set_tap(Some(Box::new(move |s: &[i16]| {
                let _ = tx.send(Msg::Outgoing(s.to_vec()));
            })));
        }
    }

    /// A new offer/answer: media follows the signalling. A new address retargets the stream;
    /// hold and resume stop and restart sending (what plays keeps its time); a new codec or
    /// packet time restarts sending and receiving with it (what was playing ends there).
    fn on_media_update(&mut self, update: MediaUpdate) {
        let Some(leg) = self.leg_media.as_mut() else {
            return;
        };
        let rebuild = leg.codec != update.codec
            || leg.payload_type != update.payload_type
            || leg.ptime != update.ptime
            || leg.telephone_event != update.telephone_event
            || leg.rtcp_mux != update.rtcp_mux;
        info!(
            remote = %update.remote,
            codec = ?update.codec,
            ptime = update.ptime,
            send = update.send,
            rebuild,
            "media follows the new offer/answer"
        );
        leg.remote = update.remote;
        leg.codec = update.codec;
        leg.payload_type = update.payload_type;
        leg.telephone_event = update.telephone_event;
        leg.ptime = update.ptime;
        leg.rtcp_mux = update.rtcp_mux;
        leg.send = update.send;
        if self.media.is_none() {
            // Not answered yet: the media starts with these when it does.
            return;
        }
        if rebuild {
            let playing = self.playing.take();
            if let Some(media) = self.media.take() {
                media.stream.stop();
                media.receiver.abort();
            }
            if let Err(why) = self.start_media() {
                warn!(%why, "media could not restart with the new codec");
                self.record.invocation_failure(&why);
                let _ = self.commands.send(SipCommand::Hangup {
                    call: self.call,
                    status: 488,
                });
                return;
            }
            if self
                .recording
                .as_ref()
                .is_some_and(|r| !r.stopped && r.taps_outgoing)
            {
                self.tap_outgoing();
            }
            // What was playing was encoded for the old codec: it ends here.
            if let Some(id) = playing {
                let _ = self.tx.send(Msg::Played(id));
                self.playing = Some(id);
            }
            return;
        }
        if let Some(media) = self.media.as_mut() {
            if !update.remote.ip().is_unspecified() {
                media.stream.retarget(update.remote);
            }
            if media.held == update.send {
                media.held = !update.send;
                media.output.set_held(media.held);
                info!(held = media.held, "hold changed");
            }
        }
    }

    fn codec(&self) -> AudioCodec {
        self.leg_media
            .as_ref()
            .map_or(AudioCodec::Pcmu, |m| m.codec)
    }

    fn play(&mut self, source: Box<dyn FrameSource>) -> Option<u64> {
        let id = self.next_play;
        self.next_play += 1;
        self.media.as_ref()?.output.play(id, source);
        self.playing = Some(id);
        Some(id)
    }

    fn play_prompt(&mut self, prompt: &Arc<EncodedPrompt>, repeat: u32) -> Option<u64> {
        let pt = self.leg_media.as_ref().map_or(0, |m| m.payload_type);
        let ptime = prompt.ptime_ms;
        self.play(Box::new(PromptSource::new(
            prompt.clone(),
            pt,
            repeat,
            0,
            ptime,
        )))
    }

    fn start(&mut self, command: ActionCommand) {
        let id = command.id;
        let name = command.action.name();
        debug!(action = name, id, "starting action");
        match &command.action {
            Action::Hangup(h) => {
                let code = h.sip_response_code.map_or(0, |c| c.get());
                let status = if code == 0 { 480 } else { code as u16 };
                self.engine.on_action_done(id, Outcome::Silent);
                let _ = self.commands.send(SipCommand::Hangup {
                    call: self.call,
                    status,
                });
            }
            Action::Pause(p) => {
                let ms = p.duration_in_milliseconds.get().max(0) as u64;
                self.running = Some(Running::Pause {
                    id,
                    until: Instant::now() + Duration::from_millis(ms),
                });
            }
            Action::VoiceFocus(_) => {
                // No noise suppressor yet: accepted as a no-op (contract §3.14's recommendation).
                self.engine
                    .on_action_done(id, Outcome::Succeeded(ActionResult::default()));
            }
            // The engine refuses these before they start; a shell never sees them.
            Action::CallAndBridge(_)
            | Action::JoinChimeMeeting(_)
            | Action::ModifyChimeMeetingAttendees(_)
            | Action::StartBotConversation(_) => {
                self.fail(
                    id,
                    "SystemException",
                    format!("System error while running action: {name} is not supported by this runtime yet."),
                );
            }
            Action::PlayAudio(_)
            | Action::PlayAudioAndGetDigits(_)
            | Action::Speak(_)
            | Action::SpeakAndGetDigits(_) => {
                if let Err(why) = self.ensure_answered() {
                    return self.fail(id, "SystemException", why);
                }
                self.load(command);
            }
            Action::ReceiveDigits(r) => {
                if let Err(why) = self.ensure_answered() {
                    return self.fail(id, "SystemException", why);
                }
                let Some(Some(regex)) = self.digits_regex(id, Some(&r.input_digits_regex)) else {
                    return;
                };
                let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
                let listener = Listener::new(
                    regex,
                    ms(r.in_between_digits_duration_in_milliseconds.get()),
                    ms(r.flush_digits_duration_in_milliseconds.get()),
                );
                let data =
                    sma_actions::ActionData::new("ReceiveDigits", command.parameters.to_map());
                self.listener = Some((listener, data));
                self.engine.on_action_done(
                    id,
                    Outcome::Succeeded(ActionResult {
                        received_digits: Some(String::new()),
                        ..Default::default()
                    }),
                );
            }
            Action::SendDigits(s) => {
                if let Err(why) = self.ensure_answered() {
                    return self.fail(id, "SystemException", why);
                }
                let tone = s.tone_duration_in_milliseconds.map_or(250, |t| t.get()) as u32;
                match self.digit_source(&s.digits, tone) {
                    Ok(source) => {
                        self.play(source);
                        self.running = Some(Running::Send { id });
                    }
                    Err(why) => self.fail(id, "SystemException", why),
                }
            }
            Action::RecordAudio(r) => {
                if let Err(why) = self.ensure_answered() {
                    return self.fail(id, "SystemException", why);
                }
                self.start_record(id, r);
            }
            Action::StartCallRecording(r) => {
                if let Err(why) = self.ensure_answered() {
                    return self.fail(id, "SystemException", why);
                }
                self.start_call_recording(id, r);
            }
            Action::StopCallRecording(_)
            | Action::PauseCallRecording(_)
            | Action::ResumeCallRecording(_) => {
                let outcome = self.control_call_recording(&command.action);
                self.engine.on_action_done(id, outcome);
            }
        }
    }

    /// SendDigits: RFC 4733 events when negotiated, in-band tones otherwise; `,` pauses 500 ms.
    fn digit_source(&self, digits: &str, tone_ms: u32) -> Result<Box<dyn FrameSource>, String> {
        let Some(leg) = self.leg_media.as_ref() else {
            return Err("no media".into());
        };
        digit_sequence(
            digits,
            tone_ms,
            60,
            leg.codec,
            leg.payload_type,
            leg.telephone_event,
            leg.ptime,
        )
        .map_err(|e| e.to_string())
    }

    /// Loads the prompts or synthesizes the speech an action plays, off the async threads.
    fn load(&mut self, command: ActionCommand) {
        let id = command.id;
        let codec = self.codec();
        let ctx = self.ctx.clone();
        let jobs: Vec<Job> = match &command.action {
            Action::PlayAudio(p) => vec![Job::File(p.audio_source.clone())],
            Action::PlayAudioAndGetDigits(p) => std::iter::once(&p.audio_source)
                .chain(&p.failure_audio_source)
                .map(|source| Job::File(source.clone()))
                .collect(),
            Action::Speak(s) => vec![Job::Speech(SpeechParameters {
                text: s.text.clone(),
                engine: s.engine,
                language_code: s.language_code.clone(),
                text_type: s.text_type,
                voice_id: s.voice_id.clone(),
            })],
            Action::SpeakAndGetDigits(s) => {
                let main = s.speech_parameters.clone();
                // Unset failure parameters inherit the prompt's (contract §3.12).
                let failure = s
                    .failure_speech_parameters
                    .as_ref()
                    .map(|f| SpeechParameters {
                        text: f.text.clone(),
                        engine: f.engine.or(main.engine),
                        language_code: f.language_code.clone().or(main.language_code.clone()),
                        text_type: f.text_type.or(main.text_type),
                        voice_id: f.voice_id.clone().or(main.voice_id.clone()),
                    });
                std::iter::once(main)
                    .chain(failure)
                    .map(Job::Speech)
                    .collect()
            }
            _ => Vec::new(),
        };
        self.running = Some(Running::Loading {
            id,
            command: Box::new(command),
        });
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = jobs.into_iter().map(|job| job.run(&ctx, codec)).collect();
            let _ = tx.send(Msg::Prompts(id, result));
        });
    }

    fn on_prompts(
        &mut self,
        id: u64,
        result: Result<Vec<Arc<EncodedPrompt>>, (String, String)>,
        now: Instant,
    ) {
        let Some(Running::Loading { id: running, .. }) = &self.running else {
            return;
        };
        if *running != id {
            return;
        }
        let Some(Running::Loading { command, .. }) = self.running.take() else {
            return;
        };
        let prompts = match result {
            Ok(p) => p,
            Err((error_type, message)) => return self.fail(id, &error_type, message),
        };
        let Some(first) = prompts.first().cloned() else {
            return self.fail(id, "SystemException", "nothing to play");
        };
        match &command.action {
            Action::PlayAudio(p) => {
                let repeat = p.repeat().clamp(1, 1000) as u32;
                let terminators = p
                    .playback_terminators
                    .iter()
                    .flatten()
                    .filter_map(|t| t.chars().next())
                    .collect();
                self.play_prompt(&first, repeat);
                self.running = Some(Running::Play { id, terminators });
            }
            Action::Speak(_) => {
                self.play_prompt(&first, 1);
                self.running = Some(Running::Play {
                    id,
                    terminators: Vec::new(),
                });
            }
            Action::PlayAudioAndGetDigits(p) => {
                self.start_collect(id, p, first, prompts.get(1).cloned(), now)
            }
            Action::SpeakAndGetDigits(p) => {
                self.start_collect(id, p, first, prompts.get(1).cloned(), now)
            }
            _ => {}
        }
    }

    fn start_collect(
        &mut self,
        id: u64,
        p: &dyn DigitCollection,
        prompt: Arc<EncodedPrompt>,
        failure: Option<Arc<EncodedPrompt>>,
        _now: Instant,
    ) {
        let Some(regex) = self.digits_regex(id, p.input_digits_regex()) else {
            return;
        };
        let ms = |v: i64| Duration::from_millis(v.max(1) as u64);
        let spec = CollectSpec {
            min: p.min_digits().max(0) as usize,
            max: p.max_digits().clamp(1, 128) as usize,
            terminators: p
                .terminators()
                .iter()
                .filter_map(|t| t.chars().next())
                .collect(),
            in_between: ms(p.in_between_ms()),
            per_attempt: ms(p.repeat_duration_ms()),
            attempts: p.attempts().clamp(1, 100) as u32,
            regex,
        };
        self.play_prompt(&prompt, 1);
        self.running = Some(Running::Collect {
            id,
            collector: Collector::new(spec),
            prompt: Some(prompt),
            failure,
        });
    }

    /// Compiles `InputDigitsRegex`: `None` when it is invalid (the action has then failed with
    /// the contract's message), `Some(None)` when there is none.
    fn digits_regex(&mut self, id: u64, pattern: Option<&str>) -> Option<Option<DigitsPattern>> {
        match pattern.map(DigitsPattern::new).transpose() {
            Ok(regex) => Some(regex),
            Err(_) => {
                self.fail(
                    id,
                    "InvalidActionParameter",
                    "The InputDigitsRegex parameter is invalid.",
                );
                None
            }
        }
    }

    fn collect_step(&mut self, step: Step) {
        let Some(Running::Collect {
            id,
            prompt,
            failure,
            ..
        }) = &self.running
        else {
            return;
        };
        let (id, prompt, failure) = (*id, prompt.clone(), failure.clone());
        match step {
            Step::Nothing => {}
            Step::StopPrompt => {
                if let Some(m) = &self.media {
                    m.output.stop();
                }
            }
            Step::PlayFailure => {
                if let Some(m) = &self.media {
                    m.output.stop();
                }
                match failure {
                    Some(f) => {
                        self.play_prompt(&f, 1);
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
                    self.play_prompt(&p, 1);
                }
            }
            Step::Done(digits) => {
                if let Some(m) = &self.media {
                    m.output.stop();
                }
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

    fn collector_mut(&mut self) -> Option<&mut Collector> {
        match &mut self.running {
            Some(Running::Collect { collector, .. }) => Some(collector),
            _ => None,
        }
    }

    fn on_played(&mut self, play: u64, now: Instant) {
        if self.playing != Some(play) {
            return;
        }
        self.playing = None;
        match &mut self.running {
            Some(Running::Play { id, .. }) | Some(Running::Send { id }) => {
                let id = *id;
                self.running = None;
                self.done(id, Outcome::Succeeded(ActionResult::default()));
            }
            Some(Running::Collect { collector, .. }) => {
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
    }

    fn on_leg_event(&mut self, event: LegEvent, now: Instant) {
        match event {
            LegEvent::Audio { samples, .. } => {
                if let Some(r) = self.recording.as_mut().filter(|r| !r.stopped) {
                    let s = if r.paused {
                        vec![0; samples.len()]
                    } else {
                        samples.clone()
                    };
                    if let Err(e) = r.recorder.incoming(&s) {
                        warn!(%e, "call recording write failed");
                    }
                }
                if let Some(Running::Record {
                    recorder: Some(recorder),
                    ..
                }) = &mut self.running
                {
                    match recorder.push(&samples) {
                        Ok(Some(end)) => self.finish_record(end),
                        Ok(None) => {}
                        Err(e) => {
                            let id = self.running.as_ref().map_or(0, Running::id);
                            self.fail(
                                id,
                                "SystemException",
                                format!("System error while running action: {e}"),
                            );
                        }
                    }
                }
            }
            LegEvent::Digit { digit, source } => {
                let c = digit.as_char();
                debug!(digit = %c, ?source, "digit received");
                if let Some((listener, _)) = &mut self.listener {
                    listener.digit(c, now);
                }
                match &mut self.running {
                    Some(Running::Play { id, terminators }) if terminators.contains(&c) => {
                        let id = *id;
                        if let Some(m) = &self.media {
                            m.output.stop();
                        }
                        self.running = None;
                        self.done(id, Outcome::Succeeded(ActionResult::default()));
                    }
                    Some(Running::Collect { collector, .. }) => {
                        let step = collector.digit(c, now);
                        self.collect_step(step);
                    }
                    Some(Running::Record {
                        recorder: Some(recorder),
                        ..
                    }) => {
                        if let Some(end) = recorder.digit(digit) {
                            self.finish_record(end);
                        }
                    }
                    _ => {}
                }
            }
            LegEvent::Inactive => {
                if !self.ended {
                    warn!("no RTP from the caller for the inactivity timeout; hanging up");
                    let _ = self.commands.send(SipCommand::Hangup {
                        call: self.call,
                        status: 408,
                    });
                }
            }
            LegEvent::Latched(addr) => debug!(%addr, "media latched"),
            LegEvent::Quality(q) => {
                debug!(
                    mos = q.mos,
                    jitter_ms = q.jitter_ms,
                    loss = q.fraction_lost,
                    "quality"
                );
                self.record.quality(q.mos);
            }
        }
    }

    fn start_record(&mut self, id: u64, r: &sma_actions::RecordAudio) {
        let destination = &r.recording_destination;
        let prefix = destination.prefix.clone().unwrap_or_default();
        let key = storage::record_audio_key(
            &prefix,
            &self.engine.details().transaction_id,
            &self.leg_call_id,
            storage::now_ms(),
        );
        let path = match self.ctx.buckets.object(&destination.bucket_name, &key) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    id,
                    "InvalidActionParameter",
                    format!("RecordingDestination parameter value is invalid: {e}"),
                )
            }
        };
        let rate = self.codec().sample_rate();
        let max = r.duration_in_seconds.map_or(self.ctx.max_recording, |d| {
            Duration::from_secs(d.get().max(1) as u64).min(self.ctx.max_recording)
        });
        let silence = r.silence_duration_in_seconds.map(|d| {
            (
                Duration::from_secs(d.get().max(1) as u64),
                r.silence_threshold
                    .map_or(200, |t| t.get().clamp(1, 1000) as u16),
            )
        });
        let limits = RecordLimits {
            sample_rate: rate,
            max_duration: max,
            silence,
            terminators: r
                .recording_terminators
                .iter()
                .flatten()
                .filter_map(|t| t.chars().next().and_then(Digit::new))
                .collect(),
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match Recorder::create(&path, limits) {
            Ok(recorder) => {
                self.running = Some(Running::Record {
                    id,
                    recorder: Some(recorder),
                    destination: RecordingDestination {
                        r#type: "S3".into(),
                        bucket_name: destination.bucket_name.clone(),
                        prefix: None,
                        key: Some(key),
                    },
                    // A caller who sends no RTP still ends the recording on time.
                    until: Instant::now() + max + Duration::from_millis(500),
                });
            }
            Err(e) => self.fail(
                id,
                "InvalidActionParameter",
                format!("Error occurred while uploading recording to S3 bucket: {e}"),
            ),
        }
    }

    /// Ends a RecordAudio: the file is committed (fsync + rename) off the async threads, and
    /// only then is success reported.
    fn finish_record(&mut self, end: RecordEnd) {
        let Some(Running::Record {
            id,
            recorder,
            destination,
            ..
        }) = &mut self.running
        else {
            return;
        };
        let Some(recorder) = recorder.take() else {
            return;
        };
        let (id, destination) = (*id, destination.clone());
        let tx = self.tx.clone();
        let terminator = match end {
            RecordEnd::Terminator(d) => Some(d.as_char().to_string()),
            _ => None,
        };
        info!(?end, "recording finished");
        tokio::task::spawn_blocking(move || {
            let result = recorder
                .finish()
                .map(|_| destination)
                .map_err(|e| e.to_string());
            let _ = tx.send(Msg::RecordingDone(id, result, terminator));
        });
    }

    fn start_call_recording(&mut self, id: u64, r: &sma_actions::StartCallRecording) {
        if self.recording_started {
            return self.fail(
                id,
                "InvalidActionParameter",
                "CallId parameter for action is invalid: call recording was already started on this leg.",
            );
        }
        let location = r.destination.location.trim_matches('/');
        let (bucket, prefix) = match location.split_once('/') {
            Some((b, p)) => (b, Some(p)),
            None => (location, None),
        };
        let key = storage::call_recording_key(
            prefix,
            &self.engine.details().transaction_id,
            &self.leg_call_id,
            storage::now_ms(),
        );
        let path = match self.ctx.buckets.object(bucket, &key) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    id,
                    "InvalidActionParameter",
                    format!("NoAccessToDestination: Error while accessing destination ({e})"),
                )
            }
        };
        let track = match r.track() {
            sma_actions::Track::Both => Track::Both,
            sma_actions::Track::Incoming => Track::Incoming,
            sma_actions::Track::Outgoing => Track::Outgoing,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let recorder = match CallRecorder::create(&path, track, self.codec().sample_rate()) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(
                    id,
                    "SystemException",
                    format!("NoAccessToDestination: Error while accessing destination ({e})"),
                )
            }
        };
        let taps_outgoing = matches!(track, Track::Both | Track::Outgoing);
        if taps_outgoing {
            self.tap_outgoing();
        }
        let location = format!("{bucket}/{key}");
        self.recording = Some(CallRecording {
            recorder,
            location: location.clone(),
            paused: false,
            stopped: false,
            taps_outgoing,
        });
        self.recording_started = true;
        self.engine.on_action_done(
            id,
            Outcome::Succeeded(ActionResult {
                call_recording_destination: Some(CallRecordingDestination {
                    r#type: "S3".into(),
                    location,
                }),
                ..Default::default()
            }),
        );
    }

    fn control_call_recording(&mut self, action: &Action) -> Outcome {
        let Some(recording) = self.recording.as_mut().filter(|r| !r.stopped) else {
            return Outcome::Failed {
                error_type: "InvalidActionParameter".into(),
                message: "CallId parameter for action is invalid: no call recording is in progress on this leg.".into(),
            };
        };
        match action {
            Action::PauseCallRecording(_) => recording.paused = true,
            Action::ResumeCallRecording(_) => recording.paused = false,
            _ => self.stop_call_recording(),
        }
        Outcome::Succeeded(ActionResult::default())
    }

    /// Finalizes the call recording (stop, or the call's end); it cannot restart on the leg.
    fn stop_call_recording(&mut self) {
        if let Some(m) = &self.media {
            let _ = m.output.set_tap(None);
        }
        let Some(recording) = self.recording.take() else {
            return;
        };
        let location = recording.location.clone();
        tokio::task::spawn_blocking(move || match recording.recorder.finish() {
            Ok(info) => {
                info!(%location, seconds = info.duration.as_secs_f64(), "call recording delivered")
            }
            Err(e) => warn!(%location, %e, "call recording could not be finalized"),
        });
    }

    /// Stops the running action's media without reporting it.
    fn stop_running(&mut self) {
        match self.running.take() {
            Some(Running::Record {
                recorder: Some(recorder),
                ..
            }) => {
                // Keep what was recorded: a hang-up during voicemail is the usual end of one.
                tokio::task::spawn_blocking(move || {
                    let _ = recorder.finish();
                });
            }
            Some(Running::Play { .. })
            | Some(Running::Collect { .. })
            | Some(Running::Send { .. }) => {
                if let Some(m) = &self.media {
                    m.output.stop();
                }
            }
            _ => {}
        }
    }

    fn stop_media(&mut self) {
        self.stop_call_recording();
        if let Some(media) = self.media.take() {
            media.stream.stop();
            media.receiver.abort();
        }
        // Dropping the sockets returns the ports to the range.
        self.leg_media = None;
    }

    fn finish(mut self) {
        self.stop_running();
        self.stop_media();
        self.record.invocations(self.engine.invocations());
        self.record.finish(self.engine.details());
        self.ctx.cdr.write(&self.record);
        let _ = self.commands.send(SipCommand::Finished { call: self.call });
        info!(sequence = self.engine.sequence(), "transaction finished");
    }
}

/// A prompt or speech to prepare.
enum Job {
    File(AudioSource),
    Speech(SpeechParameters),
}

impl Job {
    /// Runs on a blocking thread: reads and decodes a file, or synthesizes speech, through
    /// the shared cache. Errors carry the contract's error type.
    fn run(
        self,
        ctx: &CallContext,
        codec: AudioCodec,
    ) -> Result<Arc<EncodedPrompt>, (String, String)> {
        match self {
            Job::File(source) => {
                let invalid = |why: String| {
                    (
                        "InvalidAudioSource".to_owned(),
                        format!("Cannot access S3 bucket or audio file: {why}"),
                    )
                };
                if !sma_actions::is_s3(&source.r#type) {
                    return Err(invalid(format!(
                        "audio source type `{}` is not S3",
                        source.r#type
                    )));
                }
                let path = ctx
                    .buckets
                    .object(&source.bucket_name, &source.key)
                    .map_err(|e| invalid(e.to_string()))?;
                let meta = std::fs::metadata(&path)
                    .map_err(|e| invalid(format!("{}/{}: {e}", source.bucket_name, source.key)))?;
                // Identity without hashing the content: path, size and modification time.
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let identity = format!(
                    "file\u{0}{}\u{0}{}\u{0}{modified}",
                    path.display(),
                    meta.len()
                );
                ctx.prompts
                    .get_with(identity.as_bytes(), codec, || {
                        let bytes = std::fs::read(&path).map_err(|e| {
                            PromptError::Corrupt(format!("{}: {e}", path.display()))
                        })?;
                        sma_media::prompt::decode(bytes)
                    })
                    .map_err(|e| invalid(e.to_string()))
            }
            Job::Speech(p) => {
                let request = SpeechRequest {
                    text: p.text.clone(),
                    text_type: match p.text_type {
                        Some(sma_actions::TextType::Ssml) => TextType::Ssml,
                        _ => TextType::Text,
                    },
                    voice_id: p.voice_id.clone(),
                    language_code: p.language_code.clone(),
                };
                tts::cached(&ctx.prompts, ctx.tts.as_ref(), &request, codec).map_err(|e| {
                    let t = match e {
                        tts::TtsError::Engine { .. } => "SystemException",
                        _ => "InvalidActionParameter",
                    };
                    (t.to_owned(), e.to_string())
                })
            }
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u32
}
