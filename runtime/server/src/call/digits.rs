//! Digit collection, sans-IO: the `*AndGetDigits` collector (prompt, attempts, failure
//! prompt) and the `ReceiveDigits` background listener. Both take digits and `now` and say
//! what the shell should do next; time is simulated in tests.

use sma_actions::DigitsPattern;
use std::time::{Duration, Instant};

/// `InputDigitsRegex` applied with "find" semantics against the collected string (contract
/// §3.12: like JavaScript's `RegExp.test`, so `^\d{2}#$` and `[0-9]` both behave). A
/// backtracking pattern that gives up on its step limit does not match.
fn matches(regex: Option<&DigitsPattern>, text: &str) -> bool {
    regex.is_none_or(|r| match r.is_match(text) {
        Ok(matched) => matched,
        Err(why) => {
            tracing::warn!(pattern = r.as_str(), digits = text, %why, "InputDigitsRegex gave up; counted as no match");
            false
        }
    })
}

/// What `*AndGetDigits` asks for.
#[derive(Debug, Clone)]
pub struct CollectSpec {
    pub min: usize,
    pub max: usize,
    pub terminators: Vec<char>,
    pub in_between: Duration,
    pub per_attempt: Duration,
    pub attempts: u32,
    pub regex: Option<DigitsPattern>,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Barge-in: stop the prompt (a digit arrived while it played).
    StopPrompt,
    /// Play the failure prompt; call [`Collector::failure_finished`] when it ends.
    PlayFailure,
    /// Play the prompt again; call [`Collector::prompt_finished`] when it ends.
    PlayPrompt,
    /// Collection succeeded with these digits (`ReceivedDigits`).
    Done(String),
    /// Every attempt failed with digits that did not satisfy the action: the contract's
    /// error type.
    Failed(&'static str),
    /// Every attempt ended with no digit at all (the engine picks the error type).
    NoInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prompt,
    Listening,
    Failure,
}

/// The `PlayAudioAndGetDigits` / `SpeakAndGetDigits` state machine.
#[derive(Debug)]
pub struct Collector {
    spec: CollectSpec,
    phase: Phase,
    attempt: u32,
    digits: String,
    any_digit: bool,
    attempt_deadline: Option<Instant>,
    digit_deadline: Option<Instant>,
}

impl Collector {
    /// Starts the first attempt; the shell is playing the prompt.
    pub fn new(spec: CollectSpec) -> Collector {
        Collector {
            spec,
            phase: Phase::Prompt,
            attempt: 1,
            digits: String::new(),
            any_digit: false,
            attempt_deadline: None,
            digit_deadline: None,
        }
    }

    /// The prompt ended: the attempt's wait starts (unless digits already started it).
    pub fn prompt_finished(&mut self, now: Instant) {
        if self.phase == Phase::Prompt {
            self.phase = Phase::Listening;
            if self.attempt_deadline.is_none() {
                self.attempt_deadline = Some(now + self.spec.per_attempt);
            }
        }
    }

    /// The failure prompt ended: the next attempt, or the end.
    pub fn failure_finished(&mut self) -> Step {
        if self.phase != Phase::Failure {
            return Step::Nothing;
        }
        if self.attempt < self.spec.attempts {
            self.attempt += 1;
            self.phase = Phase::Prompt;
            self.digits.clear();
            self.attempt_deadline = None;
            self.digit_deadline = None;
            Step::PlayPrompt
        } else if self.any_digit {
            Step::Failed("InvalidDigitsReceived")
        } else {
            Step::NoInput
        }
    }

    pub fn digit(&mut self, digit: char, now: Instant) -> Step {
        if self.phase == Phase::Failure {
            return Step::Nothing;
        }
        self.any_digit = true;
        let barge_in = self.phase == Phase::Prompt;
        if barge_in {
            self.phase = Phase::Listening;
            self.attempt_deadline = Some(now + self.spec.per_attempt);
        }
        let step = if self.spec.terminators.contains(&digit) {
            self.evaluate(Some(digit))
        } else {
            self.digits.push(digit);
            self.digit_deadline = Some(now + self.spec.in_between);
            if self.digits.len() >= self.spec.max {
                // Enough digits. When they do not match alone but a pattern may want the
                // terminator (`^\d{2}#$`), wait for it until the inter-digit timeout.
                let alone = matches(self.spec.regex.as_ref(), &self.digits);
                let with_terminator =
                    self.spec.regex.is_some()
                        && self.spec.terminators.iter().any(|t| {
                            matches(self.spec.regex.as_ref(), &format!("{}{t}", self.digits))
                        });
                if !alone && with_terminator {
                    Step::Nothing
                } else {
                    self.evaluate(None)
                }
            } else {
                Step::Nothing
            }
        };
        match (barge_in, step) {
            (true, Step::Nothing) => Step::StopPrompt,
            (_, step) => step,
        }
    }

    fn evaluate(&mut self, terminator: Option<char>) -> Step {
        self.attempt_deadline = None;
        self.digit_deadline = None;
        let count_ok = (self.spec.min..=self.spec.max).contains(&self.digits.len());
        if count_ok {
            let regex = self.spec.regex.as_ref();
            // The contract's regex examples (`^\d{2}#$`) include the terminator: try with it
            // first, then the digits alone; without a regex the digits alone.
            if let (Some(t), Some(_)) = (terminator, regex) {
                let with = format!("{}{t}", self.digits);
                if matches(regex, &with) {
                    return Step::Done(with);
                }
            }
            if matches(regex, &self.digits) {
                return Step::Done(std::mem::take(&mut self.digits));
            }
        }
        self.phase = Phase::Failure;
        Step::PlayFailure
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.attempt_deadline, self.digit_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Step {
        if self.phase != Phase::Listening {
            return Step::Nothing;
        }
        let digit_gap = self.digit_deadline.is_some_and(|d| d <= now);
        let attempt_over = self.attempt_deadline.is_some_and(|d| d <= now);
        if digit_gap || attempt_over {
            return self.evaluate(None);
        }
        Step::Nothing
    }
}

/// The `ReceiveDigits` listener: digits gather in a window opened by the first digit; after
/// each gap of `in_between` the buffer is checked against the regex, and a match is
/// delivered (`DIGITS_RECEIVED`) and clears the buffer. When the window closes the buffer is
/// discarded (contract §3.8's recommendation: deliver only matches).
#[derive(Debug)]
pub struct Listener {
    regex: DigitsPattern,
    in_between: Duration,
    flush: Duration,
    buffer: String,
    window_end: Option<Instant>,
    check_at: Option<Instant>,
}

impl Listener {
    pub fn new(regex: DigitsPattern, in_between: Duration, flush: Duration) -> Listener {
        Listener {
            regex,
            in_between,
            flush,
            buffer: String::new(),
            window_end: None,
            check_at: None,
        }
    }

    pub fn digit(&mut self, digit: char, now: Instant) {
        if self.buffer.is_empty() {
            self.window_end = Some(now + self.flush);
        }
        self.buffer.push(digit);
        self.check_at = Some(now + self.in_between);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.check_at, self.window_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The digits to deliver, when the buffer matched.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<String> {
        if self.check_at.is_some_and(|at| at <= now) {
            self.check_at = None;
            if matches(Some(&self.regex), &self.buffer) {
                self.window_end = None;
                return Some(std::mem::take(&mut self.buffer));
            }
        }
        if self.window_end.is_some_and(|at| at <= now) {
            self.window_end = None;
            self.check_at = None;
            self.buffer.clear();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: usize, max: usize, attempts: u32, regex: Option<&str>) -> CollectSpec {
        CollectSpec {
            min,
            max,
            terminators: vec!['#'],
            in_between: Duration::from_millis(3000),
            per_attempt: Duration::from_millis(5000),
            attempts,
            regex: regex.map(|r| DigitsPattern::new(r).unwrap()),
        }
    }

    #[test]
    fn barge_in_then_terminator_completes() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(1, 5, 1, None));
        assert_eq!(c.digit('1', t0), Step::StopPrompt);
        assert_eq!(c.digit('2', t0), Step::Nothing);
        assert_eq!(c.digit('#', t0), Step::Done("12".into()));
    }

    #[test]
    fn regex_with_terminator_is_tried_first() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(0, 128, 1, Some(r"^\d{2}#$")));
        c.prompt_finished(t0);
        c.digit('4', t0);
        c.digit('2', t0);
        assert_eq!(c.digit('#', t0), Step::Done("42#".into()));
    }

    #[test]
    fn at_max_digits_a_pattern_wanting_the_terminator_waits_for_it() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(1, 2, 1, Some(r"^\d{2}#$")));
        c.prompt_finished(t0);
        assert_eq!(c.digit('4', t0), Step::Nothing);
        assert_eq!(c.digit('2', t0), Step::Nothing);
        assert_eq!(c.digit('#', t0), Step::Done("42#".into()));
    }

    #[test]
    fn max_digits_completes_without_terminator() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(1, 1, 1, Some("^[12]$")));
        c.prompt_finished(t0);
        assert_eq!(c.digit('2', t0), Step::Done("2".into()));
    }

    #[test]
    fn wrong_input_replays_failure_then_prompt_then_fails() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(1, 1, 2, Some("^[12]$")));
        c.prompt_finished(t0);
        assert_eq!(c.digit('9', t0), Step::PlayFailure);
        assert_eq!(c.failure_finished(), Step::PlayPrompt);
        c.prompt_finished(t0);
        assert_eq!(c.digit('7', t0), Step::PlayFailure);
        assert_eq!(c.failure_finished(), Step::Failed("InvalidDigitsReceived"));
    }

    #[test]
    fn silence_times_out_each_attempt() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(1, 3, 1, None));
        c.prompt_finished(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(5000)));
        assert_eq!(
            c.handle_timeout(t0 + Duration::from_millis(4999)),
            Step::Nothing
        );
        assert_eq!(
            c.handle_timeout(t0 + Duration::from_millis(5000)),
            Step::PlayFailure
        );
        assert_eq!(c.failure_finished(), Step::NoInput);
    }

    #[test]
    fn inter_digit_gap_ends_input() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(2, 5, 1, None));
        c.prompt_finished(t0);
        c.digit('1', t0);
        c.digit('2', t0 + Duration::from_millis(100));
        let at = c.poll_timeout().unwrap();
        assert_eq!(at, t0 + Duration::from_millis(3100));
        assert_eq!(c.handle_timeout(at), Step::Done("12".into()));
    }

    #[test]
    fn too_few_digits_fail_the_attempt() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(3, 5, 1, None));
        c.prompt_finished(t0);
        c.digit('1', t0);
        assert_eq!(c.digit('#', t0), Step::PlayFailure);
    }

    #[test]
    fn listener_delivers_matches_and_flushes_the_rest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut l = Listener::new(DigitsPattern::new(r"^\*\d$").unwrap(), ms(500), ms(2000));
        l.digit('*', t0);
        l.digit('5', t0 + ms(100));
        assert_eq!(l.handle_timeout(t0 + ms(599)), None);
        assert_eq!(l.handle_timeout(t0 + ms(600)), Some("*5".into()));
        // No match: discarded when the window closes; the next digit opens a new window.
        l.digit('9', t0 + ms(1000));
        assert_eq!(l.handle_timeout(t0 + ms(1500)), None);
        assert_eq!(l.handle_timeout(t0 + ms(3000)), None);
        l.digit('*', t0 + ms(3100));
        l.digit('1', t0 + ms(3200));
        assert_eq!(l.handle_timeout(t0 + ms(3700)), Some("*1".into()));
    }
}
