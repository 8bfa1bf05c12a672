//! `sma simulate`: a handler through a call flow with no SIP and no media.
//!
//! The simulator plays the runtime's part with the runtime's own execution model (the
//! sans-IO [`CallEngine`]): it sends the contract's events, runs the returned actions
//! instantly on simulated time, and takes each action's outcome from the scenario's script
//! (digits entered, recordings, failures, the caller hanging up). It prints the timeline of
//! events and actions and checks the scenario's expectations, so handler authors in any
//! language get unit tests of their call flow.

use crate::scenario::ScenarioError;
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sma_actions::{
    Action, AudioSource, CallDetails, Direction, Participant, ParticipantTag, RecordingDestination,
    Status,
};
use sma_engine::{ActionResult, CallEngine, EngineConfig, Outcome, Output};
use sma_handler::FailoverChain;
use sma_media::storage::Buckets;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The handler: a component (`.wasm`) or a webhook URL.
    #[arg(long, value_name = "PATH.wasm|URL")]
    handler: String,
    /// The simulation scenario (YAML).
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Webhook signing secret.
    #[arg(long, env = "SMA_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Handler deadline per invocation.
    #[arg(long, default_value_t = 20_000)]
    deadline_ms: u64,
    /// Write the timeline as JSON here (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Compiled-component cache directory.
    #[arg(long, env = "SMA_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Take the execution model's policies (`[calls]`: limits, retries, the no-input error
    /// type, ...) from this `sma.toml`, so the simulation runs as `sma serve` with it would.
    #[arg(long, value_name = "sma.toml")]
    config: Option<PathBuf>,
}

/// What the runtime reports for the next action that can take it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScriptItem {
    /// The caller enters these digits at the next digit-collecting action.
    Digits(String),
    /// The next digit-collecting action gets no input (`InvalidDigitsReceived`, or
    /// `InputTimeLimitExceeded` where `[calls] no_input_error` says so).
    NoInput,
    /// The next digit-collecting action gets digits that do not match (`InvalidDigitsReceived`).
    InvalidDigits,
    /// The next `RecordAudio` finishes.
    Recording(RecordingOutcome),
    /// The next action fails with this error.
    Fail(Failure),
    /// The caller hangs up during the next action.
    Hangup,
    /// The next `CallAndBridge` is not answered (`CallNotAnswered`); without this item a
    /// bridge is answered at once.
    NotAnswered,
    /// The bridged party (LEG-B) hangs up during the next action.
    LegBHangsUp,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingOutcome {
    /// The terminating digit the caller pressed, if any.
    pub terminator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub error_type: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSpec {
    #[serde(default = "default_from")]
    from: String,
    #[serde(default = "default_to")]
    to: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_from() -> String {
    "+15555550123".into()
}
fn default_to() -> String {
    "+12065550100".into()
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The action types the handler returns, in order, exactly.
    pub actions: Option<Vec<String>>,
    /// Transaction attributes the call ends with (a subset).
    pub attributes: Option<BTreeMap<String, String>>,
    /// The event types sent, in order, exactly.
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: Option<String>,
    #[serde(default = "default_call")]
    call: CallSpec,
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    script: Vec<ScriptItem>,
    #[serde(default)]
    expect: Expectations,
}

fn default_call() -> CallSpec {
    CallSpec {
        from: default_from(),
        to: default_to(),
        headers: BTreeMap::new(),
    }
}

/// A loaded simulation scenario.
pub struct Simulation {
    pub name: String,
    call: CallSpec,
    pub script: Vec<ScriptItem>,
    pub expect: Expectations,
}

impl Simulation {
    pub fn parse(text: &str, path: &Path) -> Result<Simulation, ScenarioError> {
        let file = path.display().to_string();
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let doc: Document = serde_path_to_error::deserialize(de)
            .map_err(|e| crate::scenario::yaml_error(e, &file))?;
        Ok(Simulation {
            name: doc.name.unwrap_or_else(|| {
                path.file_stem()
                    .map_or("simulation".into(), |s| s.to_string_lossy().into_owned())
            }),
            call: doc.call,
            script: doc.script,
            expect: doc.expect,
        })
    }
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub enum Entry {
    Event(Value),
    Action {
        r#type: String,
        parameters: Value,
    },
    Script {
        index: usize,
        item: String,
    },
    HandlerFailed(String),
    /// What the simulated caller or runtime did on its own.
    Note(String),
}

/// What happened, and the verdict.
pub struct SimulationResult {
    pub entries: Vec<Entry>,
    pub failures: Vec<String>,
}

const LEG: &str = "simulated-leg-a";
const LEG_B: &str = "simulated-leg-b";

/// The party a `CallAndBridge` reaches, as LEG-B.
fn bridged_party(action: &Action, call_id: String) -> Participant {
    let (to, from) = match action {
        Action::CallAndBridge(b) => (
            b.endpoints
                .first()
                .map(|e| e.uri.clone())
                .unwrap_or_default(),
            b.caller_id_number.clone(),
        ),
        _ => (String::new(), String::new()),
    };
    Participant {
        call_id,
        participant_tag: ParticipantTag::LegB,
        to,
        from,
        direction: Direction::Outbound,
        start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
        status: Some(Status::Connected),
        sip_headers: None,
    }
}

/// The legs still connected.
fn connected(engine: &CallEngine) -> Vec<String> {
    engine
        .details()
        .participants
        .iter()
        .filter(|p| p.status != Some(Status::Disconnected))
        .map(|p| p.call_id.clone())
        .collect()
}

fn details(sim: &Simulation) -> CallDetails {
    let headers: sma_actions::SipHeaders = sim
        .call
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    CallDetails {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        transaction_attributes: None,
        aws_account_id: "000000000000".into(),
        aws_region: "us-east-1".into(),
        sip_rule_id: Some("simulated-rule".into()),
        sip_media_application_id: "simulated-application".into(),
        participants: vec![Participant {
            call_id: LEG.into(),
            participant_tag: ParticipantTag::LegA,
            to: sim.call.to.clone(),
            from: sim.call.from.clone(),
            direction: Direction::Inbound,
            start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
            status: Some(Status::Connected),
            sip_headers: (!headers.is_empty()).then_some(headers),
        }],
    }
}

fn collects_digits(action: &Action) -> bool {
    matches!(
        action,
        Action::SpeakAndGetDigits(_) | Action::PlayAudioAndGetDigits(_)
    )
}

fn describe(item: &ScriptItem) -> String {
    match item {
        ScriptItem::Digits(d) => format!("digits \"{d}\""),
        ScriptItem::NoInput => "no_input".into(),
        ScriptItem::InvalidDigits => "invalid_digits".into(),
        ScriptItem::Recording(r) => match &r.terminator {
            Some(t) => format!("recording ended by \"{t}\""),
            None => "recording".into(),
        },
        ScriptItem::Fail(f) => format!("fail with {}", f.error_type),
        ScriptItem::Hangup => "caller hangs up".into(),
        ScriptItem::NotAnswered => "the bridged party does not answer".into(),
        ScriptItem::LegBHangsUp => "the bridged party hangs up".into(),
    }
}

/// What `sma serve` would run the simulated call with: the execution model's policies, and
/// the buckets audio sources are read from (when a `sma.toml` says where they are).
pub struct AsServed {
    pub engine: EngineConfig,
    pub buckets: Option<Buckets>,
}

/// Why `sma serve` would fail `action` for its audio source: the same check, on the same
/// bucket directories (the audio is not decoded here).
fn missing_audio(buckets: &Buckets, action: &Action) -> Option<String> {
    let sources: Vec<&AudioSource> = match action {
        Action::PlayAudio(p) => vec![&p.audio_source],
        Action::PlayAudioAndGetDigits(p) => std::iter::once(&p.audio_source)
            .chain(&p.failure_audio_source)
            .collect(),
        _ => return None,
    };
    sources.into_iter().find_map(|source| {
        let path = buckets.object(&source.bucket_name, &source.key);
        match path.map(|p| std::fs::metadata(p).map(|m| m.is_file())) {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => Some(format!(
                "Cannot access S3 bucket or audio file: {}/{}: not a file",
                source.bucket_name, source.key
            )),
            Ok(Err(e)) => Some(format!(
                "Cannot access S3 bucket or audio file: {}/{}: {e}",
                source.bucket_name, source.key
            )),
            Err(e) => Some(format!("Cannot access S3 bucket or audio file: {e}")),
        }
    })
}

/// Runs the simulation against `chain` as `runtime` would.
pub async fn simulate(
    sim: &Simulation,
    chain: &FailoverChain,
    runtime: AsServed,
) -> SimulationResult {
    let config = runtime.engine;
    let mut now = Instant::now();
    let mut engine = CallEngine::inbound(config, details(sim), now);
    let mut entries = Vec::new();
    let mut script = sim.script.iter().enumerate().peekable();
    let mut used = vec![false; sim.script.len()];
    let mut answered = false;
    let mut recordings = 0u32;
    let mut steps = 0u32;
    let mut failures = Vec::new();
    let mut caller_gave_up = false;
    let mut bridges = 0u32;
    while !engine.is_finished() {
        steps += 1;
        if steps > 2_000 {
            failures.push("the call did not end after 2,000 steps (a handler loop?)".into());
            break;
        }
        let Some(output) = engine.poll_output() else {
            match engine.poll_timeout() {
                Some(at) => {
                    now = now.max(at);
                    engine.handle_timeout(now);
                    continue;
                }
                // Nothing left to do and the call is up (the handler answered `null`, or an
                // empty list with nothing queued): the parties still on it hang up, once.
                None if !caller_gave_up => {
                    caller_gave_up = true;
                    for leg in connected(&engine) {
                        let who = if leg == LEG {
                            "caller"
                        } else {
                            "bridged party"
                        };
                        entries.push(Entry::Note(format!(
                            "the {who} hangs up: nothing was left to do"
                        )));
                        engine.on_leg_ended(&leg, 0);
                    }
                    continue;
                }
                None => {
                    failures.push("the call stalled: no event, action or timer pending".into());
                    break;
                }
            }
        };
        match output {
            Output::Invoke(event) => {
                let value = serde_json::to_value(&*event).unwrap_or(Value::Null);
                entries.push(Entry::Event(value));
                match chain.invoke(&event).await {
                    Ok(answered) => engine.on_response(answered.response),
                    Err(all) => {
                        let why = all
                            .failures
                            .iter()
                            .map(|a| format!("{}: {}", a.name, a.error))
                            .collect::<Vec<_>>()
                            .join("; ");
                        entries.push(Entry::HandlerFailed(why.clone()));
                        // As the runtime: a deadline overrun is not retried (contract §1.8).
                        let retryable = !all.failures.iter().any(|a| {
                            matches!(a.error, sma_handler::InvokeError::DeadlineExceeded(_))
                        });
                        engine.on_invoke_failed(&why, retryable, now);
                    }
                }
            }
            Output::Start(command) => {
                let mut parameters = command.parameters.to_map();
                parameters.remove("CallId");
                let parameters = Value::Object(parameters);
                let name = command.action.name();
                entries.push(Entry::Action {
                    r#type: name.to_owned(),
                    parameters,
                });
                if let Action::Hangup(_) = command.action {
                    engine.on_action_done(command.id, Outcome::Silent);
                    let status = if answered || command.call_id != LEG {
                        0
                    } else {
                        480
                    };
                    engine.on_leg_ended(&command.call_id, status);
                    continue;
                }
                if let Action::JoinChimeMeeting(j) = &command.action {
                    // The meeting takes any non-empty token: its side joins as LEG-B, with the
                    // contract's placeholder numbers.
                    if j.join_token.trim().is_empty() {
                        engine.on_action_done(
                            command.id,
                            Outcome::Failed {
                                error_type: "InvalidActionParameter".into(),
                                message: "JoinToken parameter value is invalid.".into(),
                            },
                        );
                    } else {
                        if !answered {
                            answered = true;
                            engine.on_leg_answered(LEG);
                        }
                        let mut meeting =
                            bridged_party(&command.action, format!("{LEG_B}-meeting"));
                        meeting.to = "+17035550122".into();
                        meeting.from = "SMA".into();
                        engine.on_bridged(command.id, meeting);
                    }
                    continue;
                }
                if let Action::CallAndBridge(_) = command.action {
                    // The bridged party answers at once unless the script says otherwise.
                    let item = match script.peek() {
                        Some((_, ScriptItem::NotAnswered | ScriptItem::Hangup)) => script.next(),
                        _ => None,
                    };
                    match item {
                        Some((i, ScriptItem::Hangup)) => {
                            used[i] = true;
                            entries.push(Entry::Script {
                                index: i + 1,
                                item: describe(&ScriptItem::Hangup),
                            });
                            engine.on_leg_ended(LEG, 487);
                        }
                        Some((i, item)) => {
                            used[i] = true;
                            entries.push(Entry::Script {
                                index: i + 1,
                                item: describe(item),
                            });
                            engine.on_bridge_failed(
                                command.id,
                                "CallNotAnswered",
                                "Call not answered",
                                now,
                            );
                        }
                        None => {
                            bridges += 1;
                            let call_id = if bridges == 1 {
                                LEG_B.to_owned()
                            } else {
                                format!("{LEG_B}-{bridges}")
                            };
                            answered = true;
                            engine.on_bridged(command.id, bridged_party(&command.action, call_id));
                        }
                    }
                    continue;
                }
                if !answered {
                    answered = true;
                    engine.on_leg_answered(LEG);
                }
                if let Some(why) = runtime
                    .buckets
                    .as_ref()
                    .and_then(|b| missing_audio(b, &command.action))
                {
                    engine.on_action_done(
                        command.id,
                        Outcome::Failed {
                            error_type: "InvalidAudioSource".into(),
                            message: why,
                        },
                    );
                    continue;
                }
                // The next script item this action can take.
                let leg_b_up = connected(&engine).iter().any(|l| l != LEG);
                let takes = |item: &ScriptItem| match item {
                    ScriptItem::Fail(_) | ScriptItem::Hangup => true,
                    ScriptItem::LegBHangsUp => leg_b_up,
                    ScriptItem::NotAnswered => false,
                    ScriptItem::Digits(_) | ScriptItem::NoInput | ScriptItem::InvalidDigits => {
                        collects_digits(&command.action)
                    }
                    ScriptItem::Recording(_) => matches!(command.action, Action::RecordAudio(_)),
                };
                let item = match script.peek() {
                    Some((_, item)) if takes(item) => script.next(),
                    _ => None,
                };
                let mut result = ActionResult::default();
                let outcome = match item {
                    Some((i, item)) => {
                        used[i] = true;
                        entries.push(Entry::Script {
                            index: i + 1,
                            item: describe(item),
                        });
                        match item {
                            ScriptItem::Hangup => {
                                engine.on_leg_ended(LEG, 0);
                                continue;
                            }
                            ScriptItem::LegBHangsUp => {
                                if let Some(b) = connected(&engine).into_iter().find(|l| l != LEG) {
                                    engine.on_leg_ended(&b, 0);
                                }
                                // The action on the other leg runs on.
                                Outcome::Succeeded(ActionResult::default())
                            }
                            ScriptItem::NotAnswered => Outcome::Succeeded(ActionResult::default()),
                            ScriptItem::Fail(f) => Outcome::Failed {
                                error_type: f.error_type.clone(),
                                message: f
                                    .message
                                    .clone()
                                    .unwrap_or_else(|| format!("{} (scripted)", f.error_type)),
                            },
                            ScriptItem::Digits(d) => {
                                result.received_digits = Some(d.clone());
                                Outcome::Succeeded(result)
                            }
                            ScriptItem::NoInput => Outcome::NoInput,
                            ScriptItem::InvalidDigits => Outcome::Failed {
                                error_type: "InvalidDigitsReceived".into(),
                                message: "The digits did not match (scripted).".into(),
                            },
                            ScriptItem::Recording(r) => {
                                recordings += 1;
                                result.recording_destination = Some(recording_destination(
                                    &command.parameters.to_map(),
                                    recordings,
                                ));
                                result.recording_terminator_used = r.terminator.clone();
                                Outcome::Succeeded(result)
                            }
                        }
                    }
                    // The script has no digits left: the caller enters none.
                    None if collects_digits(&command.action) => Outcome::NoInput,
                    None => {
                        if let Action::RecordAudio(_) = command.action {
                            recordings += 1;
                            result.recording_destination = Some(recording_destination(
                                &command.parameters.to_map(),
                                recordings,
                            ));
                        }
                        Outcome::Succeeded(result)
                    }
                };
                engine.on_action_done(command.id, outcome);
            }
            Output::Interrupt(id) => engine.on_action_done(id, Outcome::Interrupted),
            // Returned by the handler, failed at its turn without running.
            Output::Refused {
                action_type,
                mut parameters,
                error_type,
                ..
            } => {
                parameters.remove("CallId");
                entries.push(Entry::Action {
                    r#type: action_type,
                    parameters: Value::Object(parameters),
                });
                entries.push(Entry::Note(format!("refused: {error_type}")));
            }
            Output::Hangup { call_id, status } => {
                let status = if answered { 0 } else { status };
                engine.on_leg_ended(&call_id, status);
            }
            Output::Finished => {}
        }
    }
    for (i, item) in sim.script.iter().enumerate() {
        if !used[i] {
            failures.push(format!(
                "script item {} ({}) was never used: no action took it",
                i + 1,
                describe(item)
            ));
        }
    }
    check_expectations(sim, &entries, engine.details(), &mut failures);
    SimulationResult { entries, failures }
}

fn recording_destination(parameters: &Map<String, Value>, n: u32) -> RecordingDestination {
    let bucket = parameters
        .get("RecordingDestination")
        .and_then(|d| d.get("BucketName"))
        .and_then(Value::as_str)
        .unwrap_or("simulated-bucket");
    RecordingDestination {
        r#type: "S3".into(),
        bucket_name: bucket.to_owned(),
        prefix: None,
        key: Some(format!("simulated-recording-{n}.wav")),
    }
}

fn check_expectations(
    sim: &Simulation,
    entries: &[Entry],
    details: &CallDetails,
    failures: &mut Vec<String>,
) {
    if let Some(want) = &sim.expect.actions {
        let got: Vec<&str> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Action { r#type, .. } => Some(r#type.as_str()),
                _ => None,
            })
            .collect();
        if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
            failures.push(format!(
                "expected actions [{}], the handler returned [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(want) = &sim.expect.events {
        let got: Vec<String> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Event(v) => v["InvocationEventType"].as_str().map(str::to_owned),
                _ => None,
            })
            .collect();
        if &got != want {
            failures.push(format!(
                "expected events [{}], sent [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(want) = &sim.expect.attributes {
        let got = details.transaction_attributes.clone().unwrap_or_default();
        for (k, v) in want {
            match got.get(k) {
                Some(actual) if actual == v => {}
                Some(actual) => failures.push(format!(
                    "attribute `{k}`: expected \"{v}\", the call ended with \"{actual}\""
                )),
                None => failures.push(format!(
                    "attribute `{k}`: expected \"{v}\", the call ended without it"
                )),
            }
        }
    }
}

/// The readable timeline.
pub fn timeline(name: &str, handler: &str, result: &SimulationResult) -> String {
    let mut out = format!("sma simulate: {name} with {handler}\n");
    for entry in &result.entries {
        match entry {
            Entry::Event(v) => {
                let kind = v["InvocationEventType"].as_str().unwrap_or("?");
                let seq = v["Sequence"].as_u64().unwrap_or(0);
                let mut extra = String::new();
                if let Some(t) = v["ActionData"]["Type"].as_str() {
                    let _ = write!(extra, " {t}");
                }
                if let Some(d) = v["ActionData"]["ReceivedDigits"].as_str() {
                    let _ = write!(extra, " ReceivedDigits={d}");
                }
                if let Some(e) = v["ErrorType"].as_str() {
                    let _ = write!(extra, " ErrorType={e}");
                }
                let _ = writeln!(out, "  -> {kind}{extra}  (sequence {seq})");
            }
            Entry::Action { r#type, parameters } => {
                let _ = writeln!(out, "  <- {type} {parameters}", type = r#type);
            }
            Entry::Script { index, item } => {
                let _ = writeln!(out, "     script {index}: {item}");
            }
            Entry::HandlerFailed(why) => {
                let _ = writeln!(out, "     handler failed: {why}");
            }
            Entry::Note(what) => {
                let _ = writeln!(out, "     {what}");
            }
        }
    }
    if result.failures.is_empty() {
        out.push_str("PASS\n");
    } else {
        for f in &result.failures {
            let _ = writeln!(out, "FAIL: {f}");
        }
    }
    out
}

fn to_json(result: &SimulationResult) -> Value {
    let timeline: Vec<Value> = result
        .entries
        .iter()
        .map(|e| match e {
            Entry::Event(v) => json!({"event": v}),
            Entry::Action { r#type, parameters } => {
                json!({"action": {"Type": r#type, "Parameters": parameters}})
            }
            Entry::Script { index, item } => json!({"script": {"index": index, "item": item}}),
            Entry::HandlerFailed(why) => json!({"handler_failed": why}),
            Entry::Note(what) => json!({"note": what}),
        })
        .collect();
    json!({"passed": result.failures.is_empty(), "failures": result.failures, "timeline": timeline})
}

/// `sma simulate`; `as_served` reads a `sma.toml` given with `--config` (the server's
/// configuration format, which this crate does not know).
pub fn run(args: SimulateArgs, as_served: &dyn Fn(&Path) -> Result<AsServed, String>) -> ExitCode {
    let text = match std::fs::read_to_string(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sma simulate: {}: {e}", args.scenario.display());
            return ExitCode::from(2);
        }
    };
    let sim = match Simulation::parse(&text, &args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sma simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let endpoints = match crate::invoke::handler_endpoints(
        std::slice::from_ref(&args.handler),
        args.secret.as_deref(),
        Duration::from_millis(args.deadline_ms),
        64,
        args.cache_dir.as_ref(),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sma simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let chain = crate::invoke::chain(
        std::slice::from_ref(&args.handler),
        endpoints,
        "simulated-application",
        "us-east-1",
    );
    let runtime = match crate::invoke::two_thread_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sma simulate: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let as_served = match &args.config {
        None => AsServed {
            engine: EngineConfig::default(),
            buckets: None,
        },
        Some(path) => match as_served(path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("sma simulate: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let result = runtime.block_on(simulate(&sim, &chain, as_served));
    print!("{}", timeline(&sim.name, &args.handler, &result));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&to_json(&result)).unwrap_or_default();
        let written = if path.as_os_str() == "-" {
            println!("{text}");
            Ok(())
        } else {
            std::fs::write(path, text)
        };
        if let Err(e) = written {
            eprintln!("sma simulate: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if result.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
