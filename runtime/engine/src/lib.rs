//! The contract's execution model (§1.2–1.10) as a sans-IO state machine: one per transaction.
//!
//! It owns the sequence number, the transaction attributes, the legs' participant records, the
//! action queue and the queue of events waiting for the handler. It never invokes a handler,
//! touches media or sends SIP itself: it yields [`Output`]s (invoke this event, start this
//! action, hang up this leg) and takes the outcomes back (`on_response`, `on_action_done`,
//! `on_leg_ended`, ...). Time comes in as `now`, so every rule is tested with simulated time.
//!
//! Rules implemented, with the contract's recommendation where it leaves a point open:
//! - one invocation at a time; events that happen meanwhile queue behind it (B.12);
//! - a non-empty action list replaces the queue after the running action; absent, `null` or
//!   `[]` keeps it (B.2); actions run in order;
//! - "reporting" actions report success at once, others only when last in their list (§1.5);
//!   a failure reports `ACTION_FAILED` and discards the rest of the list;
//! - which responses are honoured per event (§1.7); attributes are replaced whole (B.4);
//! - invalid responses yield `INVALID_LAMBDA_RESPONSE`; that many in a row hang up (B.5);
//! - an empty answer to `NEW_INBOUND_CALL` leaves the call ringing until the unanswered
//!   timeout, then 480 and `HANGUP` (B.3);
//! - a failed invocation is retried (same `Sequence`, B.14) and then every leg is released
//!   with 480 without invoking again;
//! - at most `max_invocations` per transaction, then every leg is hung up;
//! - `CallAndBridge` adds LEG-B when it answers (§3.1) and reports at once; while it rings the
//!   unanswered timeout of LEG-A waits (the bridge has its own); either leg's end is its own
//!   `HANGUP` and the other leg stays;
//! - an API-created call (§1.4) starts with `NEW_OUTBOUND_CALL` (actions ignored, attributes
//!   kept), then `RINGING`, then `CALL_ANSWERED` or `HANGUP`.

use serde_json::{Map, Value};
use sma_actions::{
    Action, ActionData, CallDetails, CallRecordingDestination, Disposition, EventType,
    InvocationEvent, LegRef, Limits, Parameters, ParsedResponse, Participant, ParticipantTag,
    RecordingDestination, Rejection, ResponseError, Status, TransactionAttributes, ValidatedAction,
    SCHEMA_VERSION,
};
use std::collections::VecDeque;

/// `ActionData.Type` of a `NEW_OUTBOUND_CALL` that carries the API's `ArgumentsMap` (handlers
/// read only `ActionData.Parameters.Arguments`; the type is this runtime's choice).
pub const OUTBOUND_CALL_REQUEST: &str = "CallCreateRequest";
use std::time::{Duration, Instant};

/// Policies of the execution model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub limits: Limits,
    pub max_invocations: u64,
    pub max_consecutive_invalid: u32,
    pub unanswered_timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    /// Action names that report success mid-list; `None`: the contract's recommended set.
    pub reporting: Option<Vec<String>>,
    /// The `ErrorType` a digit collection that got no digits at all fails with.
    pub no_input_error: NoInputError,
}

/// What a digit collection that got no digits at all fails with.
///
/// The contract's digest suggests `InputTimeLimitExceeded`, but handlers written for the
/// hosted service branch only on `InvalidDigitsReceived` for every collection failure, no
/// input included (AWS's own samples do), so that is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum NoInputError {
    #[default]
    InvalidDigitsReceived,
    InputTimeLimitExceeded,
}

impl NoInputError {
    pub fn as_str(self) -> &'static str {
        match self {
            NoInputError::InvalidDigitsReceived => "InvalidDigitsReceived",
            NoInputError::InputTimeLimitExceeded => "InputTimeLimitExceeded",
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            limits: Limits::default(),
            max_invocations: 1000,
            max_consecutive_invalid: 2,
            unanswered_timeout: Duration::from_secs(30),
            retries: 1,
            retry_delay: Duration::from_secs(5),
            reporting: None,
            no_input_error: NoInputError::default(),
        }
    }
}

/// An action for the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionCommand {
    pub id: u64,
    pub action: Action,
    /// The leg it runs on (resolved from `CallId` / `ParticipantTag`).
    pub call_id: String,
    /// Its parameters as received, as its `ActionData` echoes them.
    pub parameters: EchoedParameters,
}

/// An action's parameters as the handler sent them, plus the leg the runtime adds to their
/// echo when they name none (§2.5): no `CallId`, or a blank or `null` one (handlers copy
/// templates with `"CallId": ""` left in, and read the echo's `CallId` back).
///
/// Kept as received and turned into a map only when an event carries them: most actions
/// never report (a `Speak` mid-list, `Pause`, `Hangup`), and theirs never need one.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoedParameters {
    received: Parameters,
    /// The echo's `CallId` when it is a string: as received, or the leg the runtime adds.
    call_id: Option<String>,
    /// The runtime wrote `call_id` into the echo (the handler named no leg by `CallId`).
    added: bool,
}

impl EchoedParameters {
    /// The parameters of `action`, running on `leg`.
    fn new(received: Parameters, leg: &str) -> Self {
        let sent = received.get("CallId");
        match sent.as_ref().and_then(Value::as_str) {
            Some(id) if !id.trim().is_empty() => Self {
                call_id: Some(id.to_owned()),
                received,
                added: false,
            },
            _ => Self {
                call_id: Some(leg.to_owned()),
                received,
                added: true,
            },
        }
    }

    /// The echo: the parameters as received, with the leg as `CallId` when they named none.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.received.to_map();
        if let (true, Some(leg)) = (self.added, &self.call_id) {
            map.insert("CallId".into(), Value::from(leg.as_str()));
        }
        map
    }

    /// The echo's `CallId` when it is a string: the leg the action's events are about.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }
}

/// What the engine asks its shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Invoke the handler with this event; answer with `on_response` or `on_invoke_failed`.
    Invoke(Box<InvocationEvent>),
    /// Run an action; answer with `on_action_done`.
    Start(Box<ActionCommand>),
    /// Stop a running interruptible action (a `CALL_UPDATE_REQUESTED` list replaced it);
    /// answer with `on_action_done(id, Interrupted)`.
    Interrupt(u64),
    /// An action failed at its turn without being started (a parameter rule, an unknown
    /// leg, an action this runtime cannot run); its `ACTION_FAILED` follows. For the
    /// shell's log and the simulator's timeline; nothing to answer.
    Refused {
        action_type: String,
        /// Its parameters as its `ACTION_FAILED` echoes them.
        parameters: Map<String, Value>,
        error_type: String,
        message: String,
    },
    /// Release a leg: BYE when answered, else a final response with `status`. Answer with
    /// `on_leg_ended`.
    Hangup { call_id: String, status: u16 },
    /// The transaction is over: nothing more will be asked.
    Finished,
}

/// Results an action adds to its `ActionData`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionResult {
    pub received_digits: Option<String>,
    pub recording_destination: Option<RecordingDestination>,
    pub recording_terminator_used: Option<String>,
    pub call_recording_destination: Option<CallRecordingDestination>,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(ActionResult),
    Failed {
        error_type: String,
        message: String,
    },
    Interrupted,
    /// A digit collection got no digits at all in any attempt: it fails with the configured
    /// [`NoInputError`].
    NoInput,
    /// It ended without a report: its leg went away, or it is a `Hangup` (reported as
    /// `HANGUP` when the leg ends).
    Silent,
}

#[derive(Debug, Clone)]
enum Queued {
    Valid(Box<ValidatedAction>),
    /// Failed validation with an `ACTION_FAILED` disposition: it fails when its turn comes.
    Invalid {
        action_type: String,
        parameters: Parameters,
        error_type: String,
        message: String,
    },
}

#[derive(Debug)]
struct Running {
    id: u64,
    name: &'static str,
    parameters: EchoedParameters,
    reports: bool,
    interruptible: bool,
    /// The list it came from is still the current one (not replaced meanwhile).
    list: u64,
}

impl Running {
    /// Its `ActionData`, for the event that reports how it ended.
    fn data(&self) -> ActionData {
        ActionData::new(self.name, self.parameters.to_map())
    }
}

#[derive(Debug, Clone)]
struct PendingEvent {
    kind: EventType,
    data: Option<ActionData>,
    error: Option<(String, String)>,
    /// The leg the event is about (the default target of the response's actions).
    leg: String,
}

#[derive(Debug)]
struct Invocation {
    event: PendingEvent,
    sequence: u64,
    attempts: u32,
}

/// One transaction's execution state.
pub struct CallEngine {
    config: EngineConfig,
    details: CallDetails,
    answered: Vec<bool>,
    sequence: u64,
    invocations: u64,
    queue: VecDeque<Queued>,
    list: u64,
    /// Leg the current list's actions default to.
    list_leg: String,
    running: Option<Running>,
    invoking: Option<Invocation>,
    retry_at: Option<Instant>,
    events: VecDeque<PendingEvent>,
    outputs: VecDeque<Output>,
    consecutive_invalid: u32,
    unanswered_deadline: Option<Instant>,
    next_id: u64,
    /// No more invocations (limits reached, handler gone, last leg gone and reported).
    closed: bool,
    finished: bool,
    hangup_requested: bool,
    /// The `CallAndBridge` dialing now: LEG-A's unanswered timeout waits for it.
    bridging: Option<u64>,
}

impl CallEngine {
    /// A transaction for an inbound call: `leg` is LEG-A (status `Connected`, as the contract
    /// shows even before the answer). Queues `NEW_INBOUND_CALL`.
    pub fn inbound(config: EngineConfig, details: CallDetails, now: Instant) -> CallEngine {
        let leg = details
            .participants
            .first()
            .map(|p| p.call_id.clone())
            .unwrap_or_default();
        let count = details.participants.len();
        let unanswered = now + config.unanswered_timeout;
        let mut engine = CallEngine {
            config,
            details,
            answered: vec![false; count],
            sequence: 0,
            invocations: 0,
            queue: VecDeque::new(),
            list: 0,
            list_leg: leg.clone(),
            running: None,
            invoking: None,
            retry_at: None,
            events: VecDeque::new(),
            outputs: VecDeque::new(),
            consecutive_invalid: 0,
            unanswered_deadline: Some(unanswered),
            next_id: 1,
            closed: false,
            finished: false,
            hangup_requested: false,
            bridging: None,
        };
        engine.events.push_back(PendingEvent {
            kind: EventType::NewInboundCall,
            data: None,
            error: None,
            leg,
        });
        engine.advance();
        engine
    }

    /// A transaction for a call placed with `CreateSipMediaApplicationCall` (§1.4): `details`
    /// has LEG-A, outbound, with no status yet. Queues `NEW_OUTBOUND_CALL`, carrying the API's
    /// `ArgumentsMap` at `ActionData.Parameters.Arguments` when there is one. The far end's
    /// answer is not timed here: the shell dials with its own timeout and reports the end.
    pub fn outbound(
        config: EngineConfig,
        details: CallDetails,
        arguments: Option<Map<String, Value>>,
    ) -> CallEngine {
        let leg = details
            .participants
            .first()
            .map(|p| p.call_id.clone())
            .unwrap_or_default();
        let count = details.participants.len();
        let mut engine = CallEngine {
            config,
            details,
            answered: vec![false; count],
            sequence: 0,
            invocations: 0,
            queue: VecDeque::new(),
            list: 0,
            list_leg: leg.clone(),
            running: None,
            invoking: None,
            retry_at: None,
            events: VecDeque::new(),
            outputs: VecDeque::new(),
            consecutive_invalid: 0,
            unanswered_deadline: None,
            next_id: 1,
            closed: false,
            finished: false,
            hangup_requested: false,
            bridging: None,
        };
        let data = arguments.map(|arguments| {
            let mut parameters = Map::new();
            parameters.insert("Arguments".into(), Value::Object(arguments));
            ActionData::new(OUTBOUND_CALL_REQUEST, parameters)
        });
        engine.events.push_back(PendingEvent {
            kind: EventType::NewOutboundCall,
            data,
            error: None,
            leg,
        });
        engine.advance();
        engine
    }

    /// The API-created leg `call_id` is ringing: `RINGING` (its response is ignored, §1.7).
    pub fn on_ringing(&mut self, call_id: &str) {
        if self.leg_index(call_id).is_none() {
            return;
        }
        self.events.push_back(PendingEvent {
            kind: EventType::Ringing,
            data: None,
            error: None,
            leg: call_id.to_owned(),
        });
        self.advance();
    }

    /// The API-created leg `call_id` answered: it is `Connected`, and `CALL_ANSWERED` asks the
    /// handler for its first actions.
    pub fn on_outbound_answered(&mut self, call_id: &str) {
        let Some(i) = self.leg_index(call_id) else {
            return;
        };
        self.answered[i] = true;
        self.details.participants[i].status = Some(Status::Connected);
        self.events.push_back(PendingEvent {
            kind: EventType::CallAnswered,
            data: None,
            error: None,
            leg: call_id.to_owned(),
        });
        self.advance();
    }

    /// The `CallAndBridge` `id` was answered: `leg_b` (LEG-B, outbound) joins the
    /// participants as `Connected`, LEG-A is answered too, and the action succeeds at once.
    /// An earlier LEG-B that has left is replaced, so each tag names one participant (a
    /// handler finds "the" LEG-B by its tag).
    pub fn on_bridged(&mut self, id: u64, mut leg_b: Participant) {
        if self.running.as_ref().is_none_or(|r| r.id != id) {
            return;
        }
        self.bridging = None;
        leg_b.status = Some(Status::Connected);
        while let Some(i) = self.details.participants.iter().position(|p| {
            p.participant_tag == leg_b.participant_tag && p.status == Some(Status::Disconnected)
        }) {
            self.details.participants.remove(i);
            self.answered.remove(i);
        }
        self.details.participants.push(leg_b);
        self.answered.push(true);
        let leg_a = self
            .running
            .as_ref()
            .and_then(|r| r.parameters.call_id())
            .map(str::to_owned);
        if let Some(a) = leg_a {
            self.on_leg_answered(&a);
        }
        self.on_action_done(id, Outcome::Succeeded(ActionResult::default()));
    }

    /// The `CallAndBridge` `id` got no answer (busy, no answer in time, refused, no route, no
    /// usable media): `ACTION_FAILED` with `error_type`. An unanswered LEG-A gets its full
    /// unanswered timeout again from `now`, for the handler's next move.
    pub fn on_bridge_failed(&mut self, id: u64, error_type: &str, message: &str, now: Instant) {
        if self.running.as_ref().is_none_or(|r| r.id != id) {
            return;
        }
        self.bridging = None;
        if self.leg_index_unanswered().is_some() {
            self.unanswered_deadline = Some(now + self.config.unanswered_timeout);
        }
        self.on_action_done(
            id,
            Outcome::Failed {
                error_type: error_type.to_owned(),
                message: message.to_owned(),
            },
        );
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let unanswered = self.unanswered_deadline.filter(|_| self.bridging.is_none());
        match (self.retry_at, unanswered) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn details(&self) -> &CallDetails {
        &self.details
    }

    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The application that answered the first invocation (failover picked it).
    pub fn pin_application(&mut self, application_id: &str, region: &str) {
        self.details.sip_media_application_id = application_id.to_owned();
        self.details.aws_region = region.to_owned();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            if let Some(invocation) = &self.invoking {
                let event = self.build_event(&invocation.event, invocation.sequence);
                self.outputs.push_back(Output::Invoke(Box::new(event)));
            }
        }
        if self.bridging.is_none() && self.unanswered_deadline.is_some_and(|at| at <= now) {
            self.unanswered_deadline = None;
            if let Some(i) = self.leg_index_unanswered() {
                let call_id = self.details.participants[i].call_id.clone();
                self.outputs.push_back(Output::Hangup {
                    call_id,
                    status: 480,
                });
            }
        }
    }

    fn leg_index_unanswered(&self) -> Option<usize> {
        self.details
            .participants
            .iter()
            .enumerate()
            .position(|(i, p)| !self.answered[i] && p.status != Some(Status::Disconnected))
    }

    /// A leg was answered (the executor answered it before a media action).
    pub fn on_leg_answered(&mut self, call_id: &str) {
        if let Some(i) = self.leg_index(call_id) {
            self.answered[i] = true;
        }
        if self.leg_index_unanswered().is_none() {
            self.unanswered_deadline = None;
        }
    }

    fn leg_index(&self, call_id: &str) -> Option<usize> {
        self.details
            .participants
            .iter()
            .position(|p| p.call_id == call_id)
    }

    fn connected_legs(&self) -> usize {
        self.details
            .participants
            .iter()
            .filter(|p| p.status != Some(Status::Disconnected))
            .count()
    }

    /// The handler answered (read as JSON, not yet validated).
    pub fn on_response(&mut self, response: ParsedResponse) {
        let Some(invocation) = self.invoking.take() else {
            return;
        };
        if response.is_nothing() {
            // `null` or a blank body: the handler has nothing to add, as with an empty
            // response (what is queued runs on, an unanswered call keeps ringing). Python and
            // Node handlers answer so for events they do not handle, and the hosted service
            // keeps such calls up.
            tracing::debug!(
                transaction_id = %self.details.transaction_id,
                event = invocation.event.kind.as_str(),
                "the handler answered null: nothing changes"
            );
            self.consecutive_invalid = 0;
            self.advance();
            return;
        }
        let kind = invocation.event.kind;
        let leg = invocation.event.leg.clone();
        // Responses to these are informational only (§1.7).
        let ignored = match kind {
            EventType::ActionInterrupted => true,
            EventType::Hangup => self.connected_legs() == 0,
            _ => false,
        } || self.closed;
        if !ignored {
            self.apply_response(kind, response, &leg);
        }
        self.advance();
    }

    fn apply_response(&mut self, kind: EventType, response: ParsedResponse, leg: &str) {
        let validated = response.validate(SCHEMA_VERSION, &self.config.limits);
        let (actions, attributes) = match validated {
            Ok(r) => {
                self.consecutive_invalid = 0;
                (
                    r.actions.map(|list| {
                        list.into_iter()
                            .map(|a| Queued::Valid(Box::new(a)))
                            .collect::<Vec<_>>()
                    }),
                    r.transaction_attributes,
                )
            }
            Err(rejection) => match rejection.error.disposition() {
                Disposition::ActionFailed(t) => {
                    self.consecutive_invalid = 0;
                    self.partially_valid(*rejection, t.as_str())
                }
                Disposition::InvalidResponse(t) => {
                    self.consecutive_invalid += 1;
                    tracing::warn!(
                        transaction_id = %self.details.transaction_id,
                        error_type = t.as_str(),
                        error = %rejection.error,
                        "invalid handler response"
                    );
                    if self.consecutive_invalid >= self.config.max_consecutive_invalid {
                        self.give_up("invalid responses in a row");
                    } else {
                        self.events.push_front(PendingEvent {
                            kind: EventType::InvalidLambdaResponse,
                            data: None,
                            error: Some((t.as_str().to_owned(), rejection.error.to_string())),
                            leg: leg.to_owned(),
                        });
                    }
                    return;
                }
            },
        };
        if let Some(attributes) = attributes {
            self.details.transaction_attributes = Some(attributes);
            if self
                .details
                .transaction_attributes
                .as_ref()
                .is_some_and(|a| a.is_empty())
            {
                self.details.transaction_attributes = None;
            }
        }
        if !kind.actions_honoured() && kind != EventType::Hangup {
            return;
        }
        match actions {
            Some(list) if !list.is_empty() => {
                self.queue = list.into();
                self.list += 1;
                self.list_leg = leg.to_owned();
                if kind == EventType::CallUpdateRequested {
                    if let Some(r) = &self.running {
                        if r.interruptible {
                            self.outputs.push_back(Output::Interrupt(r.id));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A response whose action `index` broke a rule that fails the action, not the response:
    /// the actions before it run, it fails in its turn.
    fn partially_valid(
        &mut self,
        rejection: Rejection,
        error_type: &str,
    ) -> (Option<Vec<Queued>>, Option<TransactionAttributes>) {
        let Rejection {
            error,
            valid_prefix,
            transaction_attributes,
            refused_parameters,
        } = rejection;
        let ResponseError::Action {
            action_type, error, ..
        } = error
        else {
            return (None, None);
        };
        let mut actions: Vec<Queued> = valid_prefix
            .into_iter()
            .map(|a| Queued::Valid(Box::new(a)))
            .collect();
        let action_type = action_type.unwrap_or_default();
        // §3.3: a JoinChimeMeeting with any bad or missing parameter fails with the one
        // error the service gives for it.
        let (error_type, message) = if action_type == "JoinChimeMeeting" {
            tracing::info!(transaction_id = %self.details.transaction_id, %error, "JoinChimeMeeting refused");
            (
                "InvalidActionParameter".to_owned(),
                "JoinToken parameter value is invalid.".to_owned(),
            )
        } else {
            (error_type.to_owned(), error.to_string())
        };
        actions.push(Queued::Invalid {
            action_type,
            parameters: refused_parameters,
            error_type,
            message,
        });
        (Some(actions), transaction_attributes)
    }

    /// The invocation failed (after failover on the first event). A failure that can be
    /// retried (transport, throttling, a refused request — not a deadline overrun, which has
    /// already spent the contract's 20 s) is retried per policy with the same `Sequence`;
    /// then every leg is released.
    pub fn on_invoke_failed(&mut self, reason: &str, retryable: bool, now: Instant) {
        let Some(invocation) = self.invoking.as_mut() else {
            return;
        };
        // The first event went through failover already (the shell's chain).
        let first = matches!(
            invocation.event.kind,
            EventType::NewInboundCall | EventType::NewOutboundCall
        );
        if !first && retryable && invocation.attempts <= self.config.retries {
            invocation.attempts += 1;
            self.retry_at = Some(now + self.config.retry_delay);
            return;
        }
        tracing::warn!(
            transaction_id = %self.details.transaction_id,
            %reason,
            "handler unavailable; releasing the call"
        );
        self.invoking = None;
        self.give_up(reason);
        self.advance();
    }

    /// Stops invoking and releases every leg with 480.
    fn give_up(&mut self, why: &str) {
        tracing::info!(transaction_id = %self.details.transaction_id, why, "ending the transaction");
        self.closed = true;
        self.events.clear();
        self.queue.clear();
        self.hang_up_all(480);
    }

    fn hang_up_all(&mut self, status: u16) {
        if self.hangup_requested {
            return;
        }
        self.hangup_requested = true;
        for p in &self.details.participants {
            if p.status != Some(Status::Disconnected) {
                self.outputs.push_back(Output::Hangup {
                    call_id: p.call_id.clone(),
                    status,
                });
            }
        }
    }

    /// An action ended.
    pub fn on_action_done(&mut self, id: u64, outcome: Outcome) {
        let Some(running) = self.running.take_if(|r| r.id == id) else {
            return;
        };
        let last = self.queue.is_empty() && running.list == self.list;
        let leg = running.parameters.call_id().unwrap_or_default().to_owned();
        match outcome {
            Outcome::Succeeded(result) => {
                if running.reports || last {
                    let mut data = running.data();
                    data.received_digits = result.received_digits;
                    data.recording_destination = result.recording_destination;
                    data.recording_terminator_used = result.recording_terminator_used;
                    data.call_recording_destination = result.call_recording_destination;
                    self.events.push_back(PendingEvent {
                        kind: EventType::ActionSuccessful,
                        data: Some(data),
                        error: None,
                        leg,
                    });
                }
            }
            Outcome::Failed {
                error_type,
                message,
            } => {
                self.queue.clear();
                self.events.push_back(PendingEvent {
                    kind: EventType::ActionFailed,
                    data: Some(running.data().failed(&error_type, &message)),
                    error: None,
                    leg,
                });
            }
            Outcome::NoInput => {
                self.queue.clear();
                let error_type = self.config.no_input_error.as_str();
                self.events.push_back(PendingEvent {
                    kind: EventType::ActionFailed,
                    data: Some(
                        running
                            .data()
                            .failed(error_type, "No digits were entered before the time limit."),
                    ),
                    error: None,
                    leg,
                });
            }
            Outcome::Interrupted => {
                self.events.push_back(PendingEvent {
                    kind: EventType::ActionInterrupted,
                    data: Some(running.data()),
                    error: None,
                    leg,
                });
            }
            Outcome::Silent => {}
        }
        self.advance();
    }

    /// A `ReceiveDigits` listener matched: `DIGITS_RECEIVED` with its action data.
    pub fn on_digits_received(&mut self, listener: &ActionData, digits: &str) {
        let mut data = listener.clone();
        data.received_digits = Some(digits.to_owned());
        let leg = data.parameter_str("CallId").unwrap_or_default().to_owned();
        self.events.push_back(PendingEvent {
            kind: EventType::DigitsReceived,
            data: Some(data),
            error: None,
            leg,
        });
        self.advance();
    }

    /// `UpdateSipMediaApplicationCall`: `CALL_UPDATE_REQUESTED` with the arguments.
    pub fn on_update_requested(&mut self, arguments: Map<String, Value>) {
        let mut parameters = Map::new();
        parameters.insert("Arguments".into(), Value::Object(arguments));
        let leg = self
            .details
            .participants
            .first()
            .map(|p| p.call_id.clone())
            .unwrap_or_default();
        self.events.push_back(PendingEvent {
            kind: EventType::CallUpdateRequested,
            data: Some(ActionData::new("CallUpdateRequest", parameters)),
            error: None,
            leg,
        });
        self.advance();
    }

    /// A leg disconnected (either side), with the SIP status that ended it (0 normal).
    pub fn on_leg_ended(&mut self, call_id: &str, status: u16) {
        let Some(i) = self.leg_index(call_id) else {
            return;
        };
        if self.details.participants[i].status == Some(Status::Disconnected) {
            return;
        }
        self.details.participants[i].status = Some(Status::Disconnected);
        let tag = self.details.participants[i].participant_tag;
        // What ran on that leg is over (the shell stopped it; it is not reported); with no
        // leg left nothing queued can run.
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.parameters.call_id() == Some(call_id))
        {
            self.running = None;
            self.bridging = None;
        }
        if self.connected_legs() == 0 {
            self.queue.clear();
            self.unanswered_deadline = None;
        }
        if !self.closed {
            let mut parameters = Map::new();
            parameters.insert("SipResponseCode".into(), Value::from(status));
            parameters.insert("CallId".into(), Value::from(call_id));
            parameters.insert("ParticipantTag".into(), Value::from(tag.as_str()));
            self.events.push_back(PendingEvent {
                kind: EventType::Hangup,
                data: Some(ActionData::new("Hangup", parameters)),
                error: None,
                leg: call_id.to_owned(),
            });
        }
        self.advance();
    }

    fn build_event(&self, event: &PendingEvent, sequence: u64) -> InvocationEvent {
        let mut out = InvocationEvent::new(event.kind, sequence, self.details.clone());
        out.action_data = event.data.clone();
        if let Some((t, m)) = &event.error {
            out.error_type = Some(t.clone());
            out.error_message = Some(m.clone());
        }
        out
    }

    /// Moves the transaction forward: the next event to invoke, else the next action to run.
    fn advance(&mut self) {
        loop {
            if self.finished {
                return;
            }
            if self.invoking.is_none() {
                if let Some(event) = self.events.pop_front() {
                    if self.closed {
                        self.events.clear();
                    } else if self.invocations >= self.config.max_invocations {
                        tracing::warn!(
                            transaction_id = %self.details.transaction_id,
                            limit = self.config.max_invocations,
                            "invocation limit reached"
                        );
                        self.events.clear();
                        self.give_up("invocation limit reached");
                    } else {
                        self.invocations += 1;
                        self.sequence += 1;
                        let built = self.build_event(&event, self.sequence);
                        self.invoking = Some(Invocation {
                            event,
                            sequence: self.sequence,
                            attempts: 1,
                        });
                        self.outputs.push_back(Output::Invoke(Box::new(built)));
                        return;
                    }
                }
            }
            if self.invoking.is_some() || self.running.is_some() {
                return;
            }
            if self.connected_legs() == 0 {
                if self.events.is_empty() {
                    self.finished = true;
                    self.outputs.push_back(Output::Finished);
                }
                return;
            }
            if !self.events.is_empty() {
                continue;
            }
            match self.queue.pop_front() {
                // Either it runs now, or its failure is queued as an event for the next turn.
                Some(next) => self.start(next),
                None => return,
            }
        }
    }

    /// Starts one queued action, or queues its `ACTION_FAILED` when it cannot start.
    fn start(&mut self, next: Queued) {
        let id = self.next_id;
        self.next_id += 1;
        let (action, parameters) = match next {
            Queued::Valid(v) => (v.action, v.parameters),
            Queued::Invalid {
                action_type,
                parameters,
                error_type,
                message,
            } => {
                let data = ActionData::new(action_type, parameters.to_map());
                let leg = self.list_leg.clone();
                return self.refuse(data, &error_type, message, leg);
            }
        };
        let name = action.name();
        let Some(leg) = self.resolve_leg(action.target()) else {
            let data = ActionData::new(name, parameters.to_map());
            let leg = self.list_leg.clone();
            return self.refuse(
                data,
                "InvalidActionParameter",
                "CallId or ParticipantTag parameter for action is invalid.".into(),
                leg,
            );
        };
        // Echo the resolved leg (§2.5): the parameters as received plus CallId.
        let parameters = EchoedParameters::new(parameters, &leg);
        if let Some(why) = unsupported(&action) {
            // Refused here, not by a shell, so `sma serve` and `sma simulate` refuse alike.
            let leg = parameters.call_id().unwrap_or(&self.list_leg).to_owned();
            return self.refuse(
                ActionData::new(name, parameters.to_map()),
                "SystemException",
                why,
                leg,
            );
        }
        if matches!(action, Action::CallAndBridge(_)) {
            let bridged = self.details.participants.iter().any(|p| {
                p.participant_tag == ParticipantTag::LegB && p.status != Some(Status::Disconnected)
            });
            if bridged {
                let leg = parameters.call_id().unwrap_or(&self.list_leg).to_owned();
                return self.refuse(
                    ActionData::new(name, parameters.to_map()),
                    "InvalidActionParameter",
                    "The call is already bridged: hang up LEG-B before bridging again.".into(),
                    leg,
                );
            }
            self.bridging = Some(id);
        }
        let reports = match &self.config.reporting {
            Some(names) => names.iter().any(|n| n == name),
            None => action.reports_on_success(),
        } && !matches!(action, Action::Hangup(_));
        self.running = Some(Running {
            id,
            name,
            parameters: parameters.clone(),
            reports,
            interruptible: action.is_interruptible(),
            list: self.list,
        });
        self.outputs
            .push_back(Output::Start(Box::new(ActionCommand {
                id,
                action,
                call_id: leg,
                parameters,
            })));
    }

    /// An action fails at its turn without starting: `ACTION_FAILED` for it, the rest of
    /// its list discarded, and [`Output::Refused`] so the shell can say so.
    fn refuse(&mut self, data: ActionData, error_type: &str, message: String, leg: String) {
        self.queue.clear();
        self.outputs.push_back(Output::Refused {
            action_type: data.r#type.clone(),
            parameters: data.parameters.clone(),
            error_type: error_type.to_owned(),
            message: message.clone(),
        });
        self.events.push_back(PendingEvent {
            kind: EventType::ActionFailed,
            data: Some(data.failed(error_type, &message)),
            error: None,
            leg,
        });
    }

    fn resolve_leg(&self, target: LegRef<'_>) -> Option<String> {
        let live = |p: &&Participant| p.status != Some(Status::Disconnected);
        match target {
            LegRef::CallId(id) => self
                .details
                .participants
                .iter()
                .filter(live)
                .find(|p| p.call_id == id)
                .map(|p| p.call_id.clone()),
            LegRef::Tag(tag) => self
                .details
                .participants
                .iter()
                .filter(live)
                .find(|p| p.participant_tag == tag)
                .map(|p| p.call_id.clone()),
            LegRef::Invoking => self
                .details
                .participants
                .iter()
                .filter(live)
                .find(|p| p.call_id == self.list_leg)
                .or_else(|| {
                    self.details
                        .participants
                        .iter()
                        .filter(live)
                        .find(|p| p.participant_tag == ParticipantTag::LegA)
                })
                .map(|p| p.call_id.clone()),
        }
    }
}

/// Why this runtime cannot execute `action` yet, for the ones it cannot: they fail with the
/// contract's `SystemException`, as the hosted service fails an action it cannot run.
fn unsupported(action: &Action) -> Option<String> {
    match action {
        Action::StartBotConversation(_) => Some(format!(
            "System error while running action: {} is not supported by this runtime yet.",
            action.name()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
