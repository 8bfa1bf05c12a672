//! One caller working through a scenario: a sans-IO state machine.
//!
//! The shell feeds it what happens on the call (responses to the INVITE, the end of the call,
//! decoded audio frames, digits from the far end, sends that finished) and the time; it
//! answers with commands (play, say, send digits, hang up) and, at the end, a verdict per
//! step. Every step has a deadline, so a far end that never answers, sends no RTP or never
//! hangs up fails a step with the reason instead of hanging the run. Tests drive it with
//! simulated time.

use super::listen::{level_dbov, PromptMatcher};
use super::scenario::{show, CallExpectation, DtmfMode, IncomingExpectation, Role, Scenario, Step};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An INVITE that reached a callee, as the run checks it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Incoming {
    /// The From URI, e.g. `sip:+12065550100@10.0.0.1`.
    pub from_uri: String,
    /// Its user part (the caller's number).
    pub from_user: String,
    /// The Request-URI's user part (the number dialed).
    pub to_user: String,
    /// Every header of the INVITE, in order.
    pub headers: Vec<(String, String)>,
}

/// Something that happened on the call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation<'a> {
    /// Callee role: the INVITE arrived.
    Incoming(&'a Incoming),
    /// A response to the INVITE.
    Response { status: u16, reason: &'a str },
    /// The 2xx's SDP could not be used; the call cannot carry media. Delivered before that
    /// 2xx's `Response`.
    MediaFailed(&'a str),
    /// The call is over. `by_far_end`: the far end sent BYE (or ended it some other way).
    Ended { by_far_end: bool, why: &'a str },
    /// One decoded frame from the far end.
    Audio(&'a [i16]),
    /// A digit the far end sent.
    Digit(char),
    /// A play, say or send_digits command finished.
    Done(u64),
}

/// What the shell should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Play the audio file of step `step`.
    Play { id: u64, step: usize },
    Say {
        id: u64,
        text: String,
        voice: Option<String>,
    },
    SendDigits {
        id: u64,
        digits: String,
        mode: DtmfMode,
        duration_ms: u32,
        gap_ms: u32,
    },
    /// BYE when answered, CANCEL before (a callee: 487 before answering).
    Hangup,
    /// Callee role: 180 Ringing.
    Ring,
    /// Callee role: 200 OK with our SDP answer; the shell reports the outcome as a
    /// `Response` (200, or the status it refused with when the offer was unusable).
    Answer,
    /// Callee role: refuse the INVITE with this status.
    Reject(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed,
    Failed(String),
    Skipped,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub index: usize,
    pub line: usize,
    pub label: String,
    pub verdict: Verdict,
    /// When the step started, from the INVITE.
    pub started: Duration,
    pub took: Duration,
    /// What was observed (for a pass too: the score, the digits, the response).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Dialing,
    Answered,
    Ended,
}

enum State {
    /// Callee role: waiting for the INVITE.
    Incoming {
        deadline: Instant,
    },
    Call {
        what: CallExpectation,
        deadline: Instant,
    },
    Audio {
        deadline: Instant,
        burst: Option<(Instant, Instant)>,
        longest_ms: u64,
        frames: u64,
        loudest: f64,
    },
    Silence {
        deadline: Instant,
        quiet_since: Instant,
        frames: u64,
    },
    Prompt {
        deadline: Instant,
        matcher: Box<PromptMatcher>,
        frames: u64,
        min_score: f32,
        /// Audio heard before the step started and searched with it (the backlog), in ms.
        before_ms: u64,
    },
    Digits {
        deadline: Instant,
    },
    Sending {
        id: u64,
        deadline: Instant,
    },
    Waiting {
        until: Instant,
    },
    HangingUp {
        deadline: Instant,
    },
    AwaitHangup {
        deadline: Instant,
    },
    /// All steps are done; the call is being cleared.
    Clearing {
        deadline: Instant,
    },
    Done,
}

/// The most audio kept for an `expect_prompt` to search from before it started.
const BACKLOG: Duration = Duration::from_secs(10);

/// How long the end of the call may take after the last step.
const CLEARING: Duration = Duration::from_secs(5);

/// Frames this long or longer after the last loud one end a burst.
const FRAME: Duration = Duration::from_millis(20);

pub struct ScenarioRun {
    scenario: Arc<Scenario>,
    started: Instant,
    /// The negotiated codec's sample rate, once answered.
    rate: Option<u32>,
    index: usize,
    step_started: Instant,
    state: State,
    reports: Vec<StepReport>,
    commands: VecDeque<Command>,
    phase: Phase,
    statuses: Vec<u16>,
    last_response: Option<(u16, String)>,
    answered_after: Option<Duration>,
    media_error: Option<String>,
    ended: Option<(bool, String, Duration)>,
    /// Digits from the far end not yet consumed by `expect_digits`.
    digits: String,
    hangup_sent: bool,
    next_id: u64,
    threshold: f64,
    /// Audio heard since the last listening step (`expect_audio`, `expect_silence`,
    /// `expect_prompt`) ended, at most [`BACKLOG`]: a prompt that began while an earlier
    /// step ran (a `send_digits` the far end barged in on) is found in it. Kept only when the
    /// scenario has an `expect_prompt`.
    backlog: VecDeque<i16>,
    keeps_backlog: bool,
    /// Callee role: the INVITE, once it arrived.
    incoming: Option<Incoming>,
}

impl ScenarioRun {
    /// Starts at the moment the INVITE goes out.
    pub fn new(scenario: Arc<Scenario>, now: Instant) -> ScenarioRun {
        let threshold = scenario.media.vad_threshold_dbov;
        let keeps_backlog = scenario
            .steps
            .iter()
            .any(|s| matches!(s, Step::ExpectPrompt(_)));
        let mut run = ScenarioRun {
            scenario,
            started: now,
            rate: None,
            index: 0,
            step_started: now,
            state: State::Done,
            reports: Vec::new(),
            commands: VecDeque::new(),
            phase: Phase::Dialing,
            statuses: Vec::new(),
            last_response: None,
            answered_after: None,
            media_error: None,
            ended: None,
            digits: String::new(),
            hangup_sent: false,
            next_id: 1,
            threshold,
            backlog: VecDeque::new(),
            keeps_backlog,
            incoming: None,
        };
        run.begin(now);
        run
    }

    /// The answered call's audio rate (8000 for G.711), for prompt matching.
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = Some(rate);
    }

    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub fn reports(&self) -> &[StepReport] {
        &self.reports
    }

    pub fn passed(&self) -> bool {
        self.is_finished() && self.reports.iter().all(|r| r.verdict == Verdict::Passed)
    }

    /// INVITE to 2xx.
    pub fn setup_time(&self) -> Option<Duration> {
        self.answered_after
    }

    /// The last response to the INVITE.
    pub fn final_response(&self) -> Option<&(u16, String)> {
        self.last_response.as_ref()
    }

    /// The first failed step.
    #[cfg(test)]
    pub fn first_failure(&self) -> Option<&StepReport> {
        self.reports
            .iter()
            .find(|r| matches!(r.verdict, Verdict::Failed(_)))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Call { deadline, .. }
            | State::Incoming { deadline }
            | State::Prompt { deadline, .. }
            | State::Digits { deadline }
            | State::Sending { deadline, .. }
            | State::HangingUp { deadline }
            | State::AwaitHangup { deadline }
            | State::Clearing { deadline } => Some(*deadline),
            State::Audio {
                deadline, burst, ..
            } => {
                let gap = self.audio_gap();
                Some(match burst {
                    Some((_, last)) => (*last + gap).min(*deadline),
                    None => *deadline,
                })
            }
            State::Silence {
                deadline,
                quiet_since,
                ..
            } => Some((*quiet_since + self.silence_needed()).min(*deadline)),
            State::Waiting { until } => Some(*until),
            State::Done => None,
        }
    }

    fn audio_gap(&self) -> Duration {
        match self.scenario.steps.get(self.index) {
            Some(Step::ExpectAudio(a)) => Duration::from_millis(a.gap_ms.into()),
            _ => Duration::from_millis(500),
        }
    }

    fn silence_needed(&self) -> Duration {
        match self.scenario.steps.get(self.index) {
            Some(Step::ExpectSilence(s)) => Duration::from_millis(s.min_ms.into()),
            _ => Duration::ZERO,
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts step `self.index` (or the clearing phase after the last).
    fn begin(&mut self, now: Instant) {
        self.step_started = now;
        let Some(step) = self.scenario.steps.get(self.index).cloned() else {
            self.clear(now);
            return;
        };
        let within =
            |d: Option<super::scenario::Dur>, default: Duration| now + d.map_or(default, |d| d.0);
        // Steps that need an answered call fail at once without one.
        let needs_media = !(step.is_callee_only()
            || matches!(
                step,
                Step::Expect(_) | Step::Wait(_) | Step::Hangup | Step::ExpectHangup(_)
            ));
        if needs_media {
            let listening = matches!(
                step,
                Step::ExpectAudio(_)
                    | Step::ExpectSilence(_)
                    | Step::ExpectPrompt(_)
                    | Step::ExpectDigits(_)
            );
            if let Some(why) = self.no_media(listening) {
                return self.fail(now, why);
            }
        }
        self.state = match step {
            Step::Expect(CallExpectation::Incoming) | Step::ExpectIncoming(_) => {
                let within = match &step {
                    Step::ExpectIncoming(IncomingExpectation {
                        within: Some(w), ..
                    }) => w.0,
                    _ => Duration::from_secs(30),
                };
                State::Incoming {
                    deadline: self.started + within,
                }
            }
            Step::Ring(d) => {
                self.commands.push_back(Command::Ring);
                State::Waiting { until: now + d.0 }
            }
            Step::Answer => {
                self.commands.push_back(Command::Answer);
                State::Call {
                    what: CallExpectation::Answered,
                    deadline: now + Duration::from_secs(10),
                }
            }
            Step::Reject(code) => {
                if let Some((_, why, at)) = &self.ended {
                    let why = format!("the call had already ended at +{} ({why})", show(*at));
                    return self.fail(now, why);
                }
                self.commands.push_back(Command::Reject(code.0));
                self.hangup_sent = true;
                State::HangingUp {
                    deadline: now + Duration::from_secs(5),
                }
            }
            Step::Expect(what) => State::Call {
                what,
                deadline: self.started + self.scenario.call.answer_timeout.0,
            },
            Step::ExpectAudio(a) => State::Audio {
                deadline: now + a.within.0,
                burst: None,
                longest_ms: 0,
                frames: 0,
                loudest: -100.0,
            },
            Step::ExpectSilence(s) => State::Silence {
                deadline: within(
                    s.within,
                    Duration::from_millis(u64::from(s.min_ms) + 10_000),
                ),
                quiet_since: now,
                frames: 0,
            },
            Step::ExpectPrompt(p) => {
                let rate = self.rate.unwrap_or(8000);
                let audio = match self.scenario.audio.get(&self.index) {
                    Some(a) => a.at_rate(rate),
                    None => Err("the prompt was not loaded".into()),
                };
                let pcm = match audio {
                    Ok(pcm) => pcm,
                    Err(why) => return self.fail(now, why),
                };
                let mut matcher = PromptMatcher::new(&pcm, rate);
                let default = Duration::from_millis(matcher.prompt_ms() + 10_000);
                let (front, back) = self.backlog.as_slices();
                matcher.push(front);
                matcher.push(back);
                let before_ms = self.backlog.len() as u64 * 1000 / u64::from(rate.max(1));
                State::Prompt {
                    deadline: within(p.within, default),
                    matcher: Box::new(matcher),
                    frames: 0,
                    min_score: p.min_score.unwrap_or(0.6) as f32,
                    before_ms,
                }
            }
            Step::ExpectDigits(d) => State::Digits {
                deadline: within(d.within, Duration::from_secs(10)),
            },
            Step::SendDigits(d) => {
                let id = self.id();
                let duration_ms = d.duration_ms.unwrap_or(100);
                let gap_ms = d.gap_ms.unwrap_or(100);
                let length: u64 = d
                    .digits
                    .chars()
                    .map(|c| {
                        if c == ',' {
                            500
                        } else {
                            u64::from(duration_ms + gap_ms)
                        }
                    })
                    .sum();
                self.commands.push_back(Command::SendDigits {
                    id,
                    digits: d.digits.clone(),
                    mode: d.mode.unwrap_or_default(),
                    duration_ms,
                    gap_ms,
                });
                State::Sending {
                    id,
                    deadline: now + Duration::from_millis(length + 5_000),
                }
            }
            Step::Play(p) => {
                let id = self.id();
                let length = self
                    .scenario
                    .audio
                    .get(&self.index)
                    .map_or(Duration::ZERO, |a| a.duration());
                self.commands.push_back(Command::Play {
                    id,
                    step: self.index,
                });
                if p.background {
                    return self.pass(now, "playing in the background".into());
                }
                State::Sending {
                    id,
                    deadline: now + length + Duration::from_secs(5),
                }
            }
            Step::Say(s) => {
                let id = self.id();
                self.commands.push_back(Command::Say {
                    id,
                    text: s.text.clone(),
                    voice: s.voice.clone(),
                });
                if s.background {
                    return self.pass(now, "speaking in the background".into());
                }
                State::Sending {
                    id,
                    deadline: now + Duration::from_secs(60),
                }
            }
            Step::Wait(d) => State::Waiting { until: now + d.0 },
            Step::Hangup => {
                if let Some((_, why, at)) = &self.ended {
                    let why = format!("the call had already ended at +{} ({why})", show(*at));
                    return self.fail(now, why);
                }
                self.commands.push_back(Command::Hangup);
                self.hangup_sent = true;
                State::HangingUp {
                    deadline: now + Duration::from_secs(34),
                }
            }
            Step::ExpectHangup(h) => State::AwaitHangup {
                deadline: within(h.within, Duration::from_secs(30)),
            },
        };
        self.evaluate(now);
    }

    /// Why media steps cannot run now, if they cannot. Listening may start with early media
    /// (a 18x with SDP started the call's media before the answer).
    fn no_media(&self, listening: bool) -> Option<String> {
        if let Some((by_far_end, why, at)) = &self.ended {
            let who = if *by_far_end {
                "the far end ended"
            } else {
                "ended"
            };
            return Some(format!("{who} the call at +{} ({why})", show(*at)));
        }
        if let Some(e) = &self.media_error {
            return Some(format!("the call has no usable media: {e}"));
        }
        let early_media = listening && self.phase == Phase::Dialing && self.rate.is_some();
        if self.phase != Phase::Answered && !early_media {
            return Some("the call is not answered".into());
        }
        None
    }

    fn record(&mut self, now: Instant, verdict: Verdict, detail: String) {
        let step = &self.scenario.steps[self.index];
        self.reports.push(StepReport {
            index: self.index,
            line: self.scenario.line(self.index),
            label: step.label(),
            verdict,
            started: self.step_started.saturating_duration_since(self.started),
            took: now.saturating_duration_since(self.step_started),
            detail,
        });
    }

    fn pass(&mut self, now: Instant, detail: String) {
        if matches!(
            self.state,
            State::Audio { .. } | State::Silence { .. } | State::Prompt { .. }
        ) {
            // What this step listened to is consumed; the next prompt searches from here.
            self.backlog.clear();
        }
        self.record(now, Verdict::Passed, detail);
        self.index += 1;
        self.begin(now);
    }

    /// Fails the current step, skips the rest, and clears the call.
    fn fail(&mut self, now: Instant, why: String) {
        self.record(now, Verdict::Failed(why.clone()), why);
        for index in self.index + 1..self.scenario.steps.len() {
            self.reports.push(StepReport {
                index,
                line: self.scenario.line(index),
                label: self.scenario.steps[index].label(),
                verdict: Verdict::Skipped,
                started: now.saturating_duration_since(self.started),
                took: Duration::ZERO,
                detail: String::new(),
            });
        }
        self.index = self.scenario.steps.len();
        self.clear(now);
    }

    /// Ends the call if it is still up, then finishes.
    fn clear(&mut self, now: Instant) {
        if self.ended.is_some()
            || (self.scenario.role == Role::Callee && self.incoming.is_none())
            || (self.phase == Phase::Dialing
                && self.last_response.as_ref().is_some_and(|r| r.0 >= 300))
        {
            self.state = State::Done;
            return;
        }
        if !self.hangup_sent {
            self.commands.push_back(Command::Hangup);
            self.hangup_sent = true;
        }
        // A far end that does not complete our BYE or CANCEL does not hold the verdict
        // back for the full transaction timeout.
        self.state = State::Clearing {
            deadline: now + CLEARING,
        };
    }

    pub fn handle(&mut self, observation: Observation<'_>, now: Instant) {
        match observation {
            Observation::Incoming(incoming) => {
                if self.incoming.is_none() {
                    self.incoming = Some(incoming.clone());
                }
            }
            Observation::Response { status, reason } => {
                self.statuses.push(status);
                self.last_response = Some((status, reason.to_owned()));
                if (200..300).contains(&status) && self.phase == Phase::Dialing {
                    self.phase = Phase::Answered;
                    self.answered_after = Some(now.saturating_duration_since(self.started));
                }
            }
            Observation::MediaFailed(why) => self.media_error = Some(why.to_owned()),
            Observation::Ended { by_far_end, why } => {
                if self.ended.is_none() {
                    let at = now.saturating_duration_since(self.started);
                    self.ended = Some((by_far_end, why.to_owned(), at));
                }
                self.phase = Phase::Ended;
            }
            Observation::Audio(samples) => self.hear(samples, now),
            Observation::Digit(c) => self.digits.push(c),
            Observation::Done(id) => {
                if let State::Sending { id: running, .. } = self.state {
                    if running == id {
                        return self.pass(now, String::new());
                    }
                }
            }
        }
        self.evaluate(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.evaluate(now);
    }

    fn hear(&mut self, samples: &[i16], now: Instant) {
        if self.keeps_backlog {
            self.backlog.extend(samples);
            let cap = BACKLOG.as_millis() as usize * self.rate.unwrap_or(8000) as usize / 1000;
            let excess = self.backlog.len().saturating_sub(cap);
            self.backlog.drain(..excess);
        }
        let level = level_dbov(samples);
        let loud = level > self.threshold;
        let gap = self.audio_gap();
        match &mut self.state {
            State::Audio {
                burst,
                longest_ms,
                frames,
                loudest,
                ..
            } => {
                *frames += 1;
                *loudest = loudest.max(level);
                if loud {
                    *burst = match *burst {
                        Some((start, last)) if now.saturating_duration_since(last) <= gap => {
                            Some((start, now))
                        }
                        _ => Some((now, now)),
                    };
                    if let Some((start, last)) = *burst {
                        let ms = (last.saturating_duration_since(start) + FRAME).as_millis();
                        *longest_ms = (*longest_ms).max(ms as u64);
                    }
                }
            }
            State::Silence {
                quiet_since,
                frames,
                ..
            } => {
                *frames += 1;
                if loud {
                    *quiet_since = now;
                }
            }
            State::Prompt {
                matcher, frames, ..
            } => {
                *frames += 1;
                matcher.push(samples);
            }
            _ => {}
        }
    }

    /// Checks whether the current step has passed, failed or timed out.
    fn evaluate(&mut self, now: Instant) {
        // The scenario is shared: hold the step by reference, not by a copy per audio frame.
        let scenario = self.scenario.clone();
        let step = scenario.steps.get(self.index);
        let needed = self.silence_needed();
        // A call that ended fails any step still waiting on it (except the ones about the
        // end itself, and waits).
        if let (Some((by_far_end, why, at)), Some(step)) = (self.ended.clone(), &step) {
            match (&self.state, step) {
                (State::HangingUp { .. }, _) => {
                    return self.pass(now, format!("call ended ({why})"));
                }
                (State::AwaitHangup { .. }, _) if by_far_end => {
                    return self.pass(now, format!("far end hung up at +{} ({why})", show(at)));
                }
                (State::Waiting { .. }, _) => {}
                // The prompt may have been heard whole before the far end hung up: the
                // step decides on all the audio received.
                (State::Prompt { .. }, _) => {}
                (State::Call { .. }, _)
                | (State::Incoming { .. }, _)
                | (State::Done, _)
                | (State::Clearing { .. }, _) => {}
                (State::Digits { .. }, _) if self.digits_outcome().is_some() => {}
                _ => {
                    let who = if by_far_end {
                        "the far end hung up"
                    } else {
                        "the call ended"
                    };
                    return self.fail(now, format!("{who} at +{} ({why})", show(at)));
                }
            }
        }
        match &mut self.state {
            State::Incoming { deadline } => {
                let deadline = *deadline;
                if let Some(incoming) = &self.incoming {
                    let checked = match step {
                        Some(Step::ExpectIncoming(want)) => check_incoming(want, incoming),
                        _ => Ok(()),
                    };
                    let detail =
                        format!("INVITE to {} from {}", incoming.to_user, incoming.from_uri);
                    return match checked {
                        Ok(()) => self.pass(now, detail),
                        Err(why) => self.fail(now, format!("{detail}: {why}")),
                    };
                }
                if now >= deadline {
                    let why = format!(
                        "no INVITE within {}",
                        show(deadline.saturating_duration_since(self.started))
                    );
                    self.fail(now, why);
                }
            }
            State::Call { what, deadline } => {
                let (what, deadline) = (*what, *deadline);
                self.evaluate_call(what, deadline, now);
            }
            State::Audio {
                deadline,
                burst,
                longest_ms,
                frames,
                loudest,
            } => {
                let Some(Step::ExpectAudio(a)) = step else {
                    return;
                };
                let gap = Duration::from_millis(a.gap_ms.into());
                if let Some((start, last)) = *burst {
                    let ms = (last.saturating_duration_since(start) + FRAME).as_millis() as u64;
                    let ended = now.saturating_duration_since(last) > gap;
                    match a.max_ms {
                        Some(max) if ms > u64::from(max) => {
                            return self.fail(
                                now,
                                format!("audio went on for more than {max} ms ({ms} ms so far)"),
                            );
                        }
                        None if ms >= u64::from(a.min_ms) => {
                            return self.pass(now, format!("heard {ms} ms of audio"));
                        }
                        Some(_) if ended && ms >= u64::from(a.min_ms) => {
                            return self.pass(now, format!("heard {ms} ms of audio"));
                        }
                        _ if ended => *burst = None,
                        _ => {}
                    }
                }
                if now >= *deadline {
                    let within = show(a.within.0);
                    let why = if *frames == 0 {
                        format!("no RTP received within {within}")
                    } else if *longest_ms == 0 {
                        format!(
                            "only silence within {within} (loudest frame {:.0} dBov, threshold {:.0} dBov)",
                            loudest, self.threshold
                        )
                    } else {
                        format!(
                            "longest burst of audio was {} ms, expected at least {} ms, within {within}",
                            longest_ms, a.min_ms
                        )
                    };
                    self.fail(now, why);
                }
            }
            State::Silence {
                deadline,
                quiet_since,
                frames,
            } => {
                let quiet = now.saturating_duration_since(*quiet_since);
                if quiet >= needed {
                    let detail = if *frames == 0 {
                        format!("{} of silence (no RTP received)", show(quiet))
                    } else {
                        format!("{} of silence", show(quiet))
                    };
                    return self.pass(now, detail);
                }
                if now >= *deadline {
                    let why = format!(
                        "never {} of silence in a row: the far end kept sending audio",
                        show(needed)
                    );
                    self.fail(now, why);
                }
            }
            State::Prompt {
                deadline,
                matcher,
                frames,
                min_score,
                before_ms,
            } => {
                let ended = self.ended.clone();
                let (score, at) = if ended.is_some() {
                    matcher.best_final()
                } else {
                    matcher.best()
                };
                if score >= *min_score {
                    let detail = if at >= *before_ms {
                        format!(
                            "matched with score {score:.2}, starting +{} into the step",
                            show(Duration::from_millis(at - *before_ms))
                        )
                    } else {
                        format!(
                            "matched with score {score:.2}, starting {} before the step",
                            show(Duration::from_millis(*before_ms - at))
                        )
                    };
                    return self.pass(now, detail);
                }
                if let Some((by_far_end, why, at)) = ended {
                    let who = if by_far_end {
                        "the far end hung up"
                    } else {
                        "the call ended"
                    };
                    let why = format!(
                        "{who} at +{} ({why}) before the prompt was heard: best correlation {score:.2}, needed {min_score:.2}",
                        show(at)
                    );
                    return self.fail(now, why);
                }
                if now >= *deadline {
                    let why = if *frames == 0 {
                        "no RTP received".to_owned()
                    } else {
                        format!("not heard: best correlation {score:.2}, needed {min_score:.2}")
                    };
                    self.fail(now, why);
                }
            }
            State::Digits { deadline } => {
                let deadline = *deadline;
                match self.digits_outcome() {
                    Some(Ok(())) => {
                        let Some(Step::ExpectDigits(d)) = step else {
                            return;
                        };
                        self.digits.drain(..d.digits.len());
                        self.pass(now, format!("received \"{}\"", d.digits));
                    }
                    Some(Err(why)) => self.fail(now, why),
                    None if now >= deadline => {
                        let Some(Step::ExpectDigits(d)) = step else {
                            return;
                        };
                        let why = if self.digits.is_empty() {
                            format!("expected \"{}\", no digits received", d.digits)
                        } else {
                            format!(
                                "expected \"{}\", received only \"{}\"",
                                d.digits, self.digits
                            )
                        };
                        self.fail(now, why);
                    }
                    None => {}
                }
            }
            State::Sending { deadline, .. } => {
                if now >= *deadline {
                    self.fail(now, "the audio did not finish sending in time".into());
                }
            }
            State::Waiting { until } => {
                if now >= *until {
                    self.pass(now, String::new());
                }
            }
            State::HangingUp { deadline } => {
                if now >= *deadline {
                    self.fail(now, "no response to our BYE or CANCEL".into());
                }
            }
            State::AwaitHangup { deadline } => {
                if now >= *deadline {
                    let why = format!(
                        "the far end did not hang up within {}",
                        show(deadline.saturating_duration_since(self.step_started))
                    );
                    self.fail(now, why);
                }
            }
            State::Clearing { deadline } => {
                if self.ended.is_some()
                    || (self.phase == Phase::Dialing
                        && self.last_response.as_ref().is_some_and(|r| r.0 >= 300))
                    || now >= *deadline
                {
                    self.state = State::Done;
                }
            }
            State::Done => {}
        }
    }

    /// Whether the digits received so far settle the current `expect_digits`.
    fn digits_outcome(&self) -> Option<Result<(), String>> {
        let Some(Step::ExpectDigits(d)) = self.scenario.steps.get(self.index) else {
            return None;
        };
        if self.digits.starts_with(&d.digits) {
            Some(Ok(()))
        } else if d.digits.starts_with(&self.digits) {
            None
        } else {
            Some(Err(format!(
                "expected \"{}\", received \"{}\"",
                d.digits, self.digits
            )))
        }
    }

    fn evaluate_call(&mut self, what: CallExpectation, deadline: Instant, now: Instant) {
        let final_status = self.statuses.iter().copied().find(|s| *s >= 200);
        let last = self
            .last_response
            .as_ref()
            .map(|(s, r)| format!("{s} {r}"))
            .unwrap_or_else(|| "no response".into());
        match what {
            CallExpectation::Ringing => {
                if self.statuses.iter().any(|s| (180..190).contains(s)) {
                    let s = self.statuses.iter().find(|s| (180..190).contains(*s));
                    return self.pass(now, format!("{} received", s.copied().unwrap_or(180)));
                }
                if final_status.is_some() {
                    return self.fail(now, format!("no 18x before the final response ({last})"));
                }
            }
            CallExpectation::Answered => {
                if let Some(status) = final_status {
                    if (200..300).contains(&status) {
                        if let Some(e) = &self.media_error {
                            let why = format!("answered, but the SDP answer is unusable: {e}");
                            return self.fail(now, why);
                        }
                        let after = self.answered_after.unwrap_or_default();
                        return self.pass(now, format!("{last} after {}", show(after)));
                    }
                    if let Some(e) = &self.media_error {
                        let why = format!("the SDP offer was unusable ({e}): refused with {last}");
                        return self.fail(now, why);
                    }
                    return self.fail(now, format!("the call was rejected: {last}"));
                }
                if let Some((_, why, _)) = &self.ended {
                    let why = format!("the call ended before an answer ({why})");
                    return self.fail(now, why);
                }
            }
            // Settled in `State::Incoming`.
            CallExpectation::Incoming => {}
            CallExpectation::SipStatus(want) => {
                if self.statuses.contains(&want) {
                    return self.pass(now, format!("{want} received"));
                }
                if final_status.is_some() {
                    return self.fail(
                        now,
                        format!("expected {want}, the final response was {last}"),
                    );
                }
            }
        }
        if self.ended.is_some() {
            return self.fail(now, format!("the call ended; last response {last}"));
        }
        if now >= deadline {
            let why = format!(
                "no final response within {} (last: {last})",
                show(self.scenario.call.answer_timeout.0)
            );
            self.fail(now, why);
        }
    }
}

/// Whether an INVITE carries what `expect_incoming` asks for; the first difference otherwise.
fn check_incoming(want: &IncomingExpectation, got: &Incoming) -> Result<(), String> {
    if let Some(from) = &want.from {
        if from != &got.from_uri && from != &got.from_user {
            return Err(format!(
                "expected the caller {from}, it was {}",
                got.from_uri
            ));
        }
    }
    if let Some(to) = &want.to {
        if to != &got.to_user {
            return Err(format!(
                "expected a call to {to}, it was to {}",
                got.to_user
            ));
        }
    }
    for (name, value) in &want.headers {
        match got
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) if v == value => {}
            Some((_, v)) => {
                return Err(format!("{name} was `{v}`, expected `{value}`"));
            }
            None => return Err(format!("no {name} header (expected `{value}`)")),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
