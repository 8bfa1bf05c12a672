//! Scenario files for `sma call`: what to dial and the steps a caller takes, in YAML.
//!
//! Everything that can be checked without dialing is checked at load: unknown steps and
//! fields, wrong types, missing or undecodable audio files, bad digits, contradictory limits.
//! Each error names the file, the line and the field, so a QA engineer can fix a scenario
//! from the message alone.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use sma_media::dtmf::Digit;
use sma_sip::message::Uri;
use sma_sip::Transport;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A scenario that failed to load.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; 0 when the problem is the file itself.
    pub line: usize,
    /// Where in the document, e.g. `steps[2].expect_prompt.file`.
    pub field: String,
    pub message: String,
}

/// A duration written as `2s`, `1.5s`, `250ms`, `1m`, or a bare number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl std::str::FromStr for Dur {
    type Err = String;

    fn from_str(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => t.split_at(i),
            None => (t, "ms"),
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (write 2s, 500ms or 1m)"))?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{text}` (use ms, s or m)"
                ))
            }
        };
        if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 {
            return Err(format!("`{text}` is out of range (0 to 24 h)"));
        }
        Ok(Dur(Duration::from_secs_f64(value * scale)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 2s, 500ms or a number of milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_millis(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_millis(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                format!("{v}ms").parse().map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Steps that accept a short form (`say: hello`) as well as a map (`say: {text: hello}`).
/// The short form goes through `$short`; the map form is checked field by field as `Full`.
macro_rules! short_form {
    ($ty:ident, $full:ident, $what:literal, $short:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str(concat!($what, " or a map of its fields"))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        let short: fn(&str) -> Result<$ty, String> = $short;
                        short(v).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<$ty, M::Error> {
                        let full: $full =
                            Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        Ok(full.into())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// What `expect:` waits for on the signalling side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CallExpectation {
    /// A 18x provisional response.
    Ringing,
    /// A 2xx to the INVITE with usable SDP.
    Answered,
    /// A response with exactly this status (provisional or final).
    SipStatus(u16),
    /// Callee role: an INVITE arrives (any caller; `expect_incoming` checks who).
    Incoming,
}

/// `expect_incoming` (callee role): an INVITE arrives, carrying what it must.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingExpectation {
    /// The caller: the From URI whole (`sip:+1206…@host`) or its user part (`+12065550100`).
    pub from: Option<String>,
    /// The number or user dialed: the Request-URI's user part.
    pub to: Option<String>,
    /// Headers the INVITE must carry with exactly these values (names in any case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Default: 30 s from the start of the scenario's listening.
    pub within: Option<Dur>,
}

/// `reject` (callee role): the final response to the INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject(pub u16);

impl<'de> Deserialize<'de> for Reject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reject, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            status: u16,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Reject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a SIP status (486) or {status: 486}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Reject, E> {
                u16::try_from(v)
                    .map(Reject)
                    .map_err(|_| E::custom(format!("{v} is not a SIP status")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Reject, E> {
                v.trim()
                    .parse()
                    .map(Reject)
                    .map_err(|_| E::custom(format!("`{v}` is not a SIP status")))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Reject, M::Error> {
                let full: Full =
                    Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Reject(full.status))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expect_audio`: a burst of speech or tone from the far end.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioExpectation {
    /// Shortest acceptable burst.
    #[serde(default = "default_min_audio")]
    pub min_ms: u32,
    /// Longest acceptable burst; without it the step passes as soon as `min_ms` is heard.
    pub max_ms: Option<u32>,
    /// Quiet gaps shorter than this belong to the same burst (pauses between words).
    #[serde(default = "default_gap")]
    pub gap_ms: u32,
    #[serde(default = "default_within")]
    pub within: Dur,
}

fn default_min_audio() -> u32 {
    200
}
fn default_gap() -> u32 {
    500
}
fn default_within() -> Dur {
    Dur(Duration::from_secs(10))
}

/// `expect_silence`: the far end is quiet for `min_ms` in a row.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceExpectation {
    pub min_ms: u32,
    /// Default: `min_ms` plus 10 s.
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptExpectationFull {
    pub file: PathBuf,
    pub within: Option<Dur>,
    pub min_score: Option<f64>,
}

/// `expect_prompt`: the far end plays this audio file (matched by cross-correlation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptExpectation {
    pub file: PathBuf,
    /// Default: the prompt's length plus 10 s.
    pub within: Option<Dur>,
    /// Normalised correlation needed, 0–1 (default 0.6).
    pub min_score: Option<f64>,
}

impl From<PromptExpectationFull> for PromptExpectation {
    fn from(f: PromptExpectationFull) -> Self {
        PromptExpectation {
            file: f.file,
            within: f.within,
            min_score: f.min_score,
        }
    }
}

/// `expect_digits`: digits the far end sends (RFC 4733 or in-band).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DigitsExpectation {
    pub digits: String,
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitsExpectationFull {
    pub digits: String,
    pub within: Option<Dur>,
}

impl From<DigitsExpectationFull> for DigitsExpectation {
    fn from(f: DigitsExpectationFull) -> Self {
        DigitsExpectation {
            digits: f.digits,
            within: f.within,
        }
    }
}

/// How digits go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfMode {
    /// RFC 4733 telephone-events (in-band when the far end did not negotiate them).
    #[default]
    Rfc4733,
    /// Tones in the audio.
    Inband,
}

/// `send_digits`: press keys. `,` pauses 500 ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendDigits {
    pub digits: String,
    pub mode: Option<DtmfMode>,
    pub duration_ms: Option<u32>,
    pub gap_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendDigitsFull {
    pub digits: String,
    pub mode: Option<DtmfMode>,
    pub duration_ms: Option<u32>,
    pub gap_ms: Option<u32>,
}

impl From<SendDigitsFull> for SendDigits {
    fn from(f: SendDigitsFull) -> Self {
        SendDigits {
            digits: f.digits,
            mode: f.mode,
            duration_ms: f.duration_ms,
            gap_ms: f.gap_ms,
        }
    }
}

/// `play`: an audio file into the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Play {
    pub file: PathBuf,
    /// Go on to the next step at once instead of when playback ends.
    pub background: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayFull {
    pub file: PathBuf,
    #[serde(default)]
    pub background: bool,
}

impl From<PlayFull> for Play {
    fn from(f: PlayFull) -> Self {
        Play {
            file: f.file,
            background: f.background,
        }
    }
}

/// `say`: text-to-speech into the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Say {
    pub text: String,
    pub voice: Option<String>,
    pub background: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SayFull {
    pub text: String,
    pub voice: Option<String>,
    #[serde(default)]
    pub background: bool,
}

impl From<SayFull> for Say {
    fn from(f: SayFull) -> Self {
        Say {
            text: f.text,
            voice: f.voice,
            background: f.background,
        }
    }
}

/// `expect_hangup`: the far end ends the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HangupExpectation {
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupExpectationFull {
    pub within: Option<Dur>,
}

impl From<HangupExpectationFull> for HangupExpectation {
    fn from(f: HangupExpectationFull) -> Self {
        HangupExpectation { within: f.within }
    }
}

short_form!(
    PromptExpectation,
    PromptExpectationFull,
    "a file name",
    |v| Ok(PromptExpectation {
        file: v.into(),
        ..Default::default()
    })
);
short_form!(
    DigitsExpectation,
    DigitsExpectationFull,
    "a string of digits",
    |v| Ok(DigitsExpectation {
        digits: v.into(),
        within: None
    })
);
short_form!(SendDigits, SendDigitsFull, "a string of digits", |v| Ok(
    SendDigits {
        digits: v.into(),
        ..Default::default()
    }
));
short_form!(Play, PlayFull, "a file name", |v| Ok(Play {
    file: v.into(),
    background: false
}));
short_form!(Say, SayFull, "the text to speak", |v| Ok(Say {
    text: v.into(),
    ..Default::default()
}));
short_form!(
    HangupExpectation,
    HangupExpectationFull,
    "a duration",
    |v| Ok(HangupExpectation {
        within: Some(v.parse()?)
    })
);

/// One thing the caller does or checks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Expect(CallExpectation),
    ExpectAudio(AudioExpectation),
    ExpectSilence(SilenceExpectation),
    ExpectPrompt(PromptExpectation),
    ExpectDigits(DigitsExpectation),
    SendDigits(SendDigits),
    Play(Play),
    Say(Say),
    Wait(Dur),
    Hangup,
    ExpectHangup(HangupExpectation),
    /// Callee role: wait for an INVITE and check it.
    ExpectIncoming(IncomingExpectation),
    /// Callee role: send 180 Ringing, then let the caller wait this long.
    Ring(Dur),
    /// Callee role: answer with 200 OK and our SDP.
    Answer,
    /// Callee role: refuse the call with this status.
    Reject(Reject),
}

impl Step {
    /// The steps only a callee takes.
    pub fn is_callee_only(&self) -> bool {
        matches!(
            self,
            Step::ExpectIncoming(_)
                | Step::Expect(CallExpectation::Incoming)
                | Step::Ring(_)
                | Step::Answer
                | Step::Reject(_)
        )
    }

    /// A short label for the timeline: the step's name and its main argument.
    pub fn label(&self) -> String {
        match self {
            Step::Expect(CallExpectation::Answered) => "expect answered".into(),
            Step::Expect(CallExpectation::Ringing) => "expect ringing".into(),
            Step::Expect(CallExpectation::SipStatus(s)) => format!("expect sip_status {s}"),
            Step::Expect(CallExpectation::Incoming) => "expect incoming".into(),
            Step::ExpectIncoming(i) => match (&i.from, &i.to) {
                (Some(from), Some(to)) => format!("expect_incoming from {from} to {to}"),
                (Some(from), None) => format!("expect_incoming from {from}"),
                (None, Some(to)) => format!("expect_incoming to {to}"),
                (None, None) => "expect_incoming".into(),
            },
            Step::Ring(d) => format!("ring {}", show(d.0)),
            Step::Answer => "answer".into(),
            Step::Reject(r) => format!("reject {}", r.0),
            Step::ExpectAudio(a) => match a.max_ms {
                Some(max) => format!("expect_audio {}-{max} ms", a.min_ms),
                None => format!("expect_audio >= {} ms", a.min_ms),
            },
            Step::ExpectSilence(s) => format!("expect_silence {} ms", s.min_ms),
            Step::ExpectPrompt(p) => format!("expect_prompt {}", p.file.display()),
            Step::ExpectDigits(d) => format!("expect_digits \"{}\"", d.digits),
            Step::SendDigits(d) => format!("send_digits \"{}\"", d.digits),
            Step::Play(p) => format!("play {}", p.file.display()),
            Step::Say(s) => format!("say \"{}\"", ellipsis(&s.text, 40)),
            Step::Wait(d) => format!("wait {}", show(d.0)),
            Step::Hangup => "hangup".into(),
            Step::ExpectHangup(_) => "expect_hangup".into(),
        }
    }

    /// The YAML key, for error messages.
    pub fn key(&self) -> &'static str {
        match self {
            Step::Expect(_) => "expect",
            Step::ExpectAudio(_) => "expect_audio",
            Step::ExpectSilence(_) => "expect_silence",
            Step::ExpectPrompt(_) => "expect_prompt",
            Step::ExpectDigits(_) => "expect_digits",
            Step::SendDigits(_) => "send_digits",
            Step::Play(_) => "play",
            Step::Say(_) => "say",
            Step::Wait(_) => "wait",
            Step::Hangup => "hangup",
            Step::ExpectHangup(_) => "expect_hangup",
            Step::ExpectIncoming(_) => "expect_incoming",
            Step::Ring(_) => "ring",
            Step::Answer => "answer",
            Step::Reject(_) => "reject",
        }
    }
}

fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A duration the way a timeline shows it.
pub fn show(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

fn default_transport() -> String {
    "udp".into()
}
fn default_answer_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

/// What to dial.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// A SIP URI (`sip:+12065550100@127.0.0.1:5060`) or a number (`+12065550100`, dialed at
    /// `server`).
    pub to: String,
    /// Where requests go (`host:port`); default: the URI's host and port.
    pub server: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: String,
    pub credentials: Option<Credentials>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long to wait for a final response to the INVITE.
    #[serde(default = "default_answer_timeout")]
    pub answer_timeout: Dur,
}

/// The media this caller offers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    /// Offered codecs, most preferred first: pcmu, pcma, g722, opus.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    #[serde(default = "default_ptime")]
    pub ptime: u32,
    /// Offer RFC 4733 telephone-events (without them digits go in-band both ways).
    #[serde(default = "default_true")]
    pub telephone_event: bool,
    /// Voice-activity threshold in dBov: frames louder than this count as audio.
    #[serde(default = "default_vad")]
    pub vad_threshold_dbov: f64,
    /// Between plays: `send` encoded silence (a phone without VAD), or `suppress` it and send
    /// nothing (a phone with silence suppression; far cheaper for load runs).
    #[serde(default)]
    pub silence: Silence,
    /// SRTP with SDES keys: `off` (the default), `optional` (a caller offers `RTP/AVP` with
    /// `a=crypto` lines and takes either answer; a callee answers SRTP when offered), or
    /// `required` (a caller offers `RTP/SAVP`; a callee refuses a plain offer with 488).
    #[serde(default)]
    pub srtp: SrtpMode,
    /// SRTP suites, most preferred first (default: all six, as `sma serve` accepts them).
    #[serde(default = "default_suites")]
    pub suites: Vec<String>,
}

/// Whether the call's media is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrtpMode {
    #[default]
    Off,
    Optional,
    Required,
}

fn default_suites() -> Vec<String> {
    sma_media::srtp::Suite::ALL
        .iter()
        .map(|s| s.name().to_owned())
        .collect()
}

/// What the caller sends when it has nothing to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Silence {
    #[default]
    Send,
    Suppress,
}

fn default_codecs() -> Vec<String> {
    vec!["pcmu".into(), "pcma".into()]
}
fn default_ptime() -> u32 {
    20
}
fn default_true() -> bool {
    true
}
fn default_vad() -> f64 {
    -45.0
}

impl Default for MediaSpec {
    fn default() -> MediaSpec {
        MediaSpec {
            codecs: default_codecs(),
            ptime: default_ptime(),
            telephone_event: true,
            vad_threshold_dbov: default_vad(),
            silence: Silence::Send,
            srtp: SrtpMode::Off,
            suites: default_suites(),
        }
    }
}

/// Which end of the call the scenario plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Dials `call.to` (the default).
    #[default]
    Caller,
    /// Listens on `listen` and takes the call that arrives: the far end of a bridge or of a
    /// call the runtime places.
    Callee,
}

/// Where a callee listens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListenSpec {
    /// `host:port`.
    pub address: String,
    pub transport: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSpecFull {
    pub address: String,
    pub transport: Option<String>,
}

impl From<ListenSpecFull> for ListenSpec {
    fn from(f: ListenSpecFull) -> Self {
        ListenSpec {
            address: f.address,
            transport: f.transport,
        }
    }
}

short_form!(ListenSpec, ListenSpecFull, "host:port", |v| Ok(
    ListenSpec {
        address: v.into(),
        transport: None
    }
));

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: Option<String>,
    #[serde(default)]
    role: Role,
    call: Option<CallSpec>,
    listen: Option<ListenSpec>,
    #[serde(default)]
    media: MediaSpec,
    /// Steps as one-key maps (`- expect: answered`), not YAML tags.
    #[serde(with = "serde_yaml_ng::with::singleton_map_recursive")]
    steps: Vec<Step>,
}

/// A decoded audio file a step plays or expects, resampled on demand per codec rate.
pub struct Audio {
    pub path: PathBuf,
    samples: Vec<f32>,
    rate: u32,
    /// Resampled PCM16 by sample rate, shared by every call of a load run.
    by_rate: Mutex<BTreeMap<u32, Arc<[i16]>>>,
}

impl fmt::Debug for Audio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Audio({})", self.path.display())
    }
}

impl Audio {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }

    /// The audio as PCM16 at `rate`.
    pub fn at_rate(&self, rate: u32) -> Result<Arc<[i16]>, String> {
        let mut cache = self.by_rate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = cache.get(&rate) {
            return Ok(a.clone());
        }
        let resampled = sma_media::prompt::resample(&self.samples, self.rate, rate)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let pcm: Arc<[i16]> = resampled
            .iter()
            .map(|s| (s * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
            .collect();
        cache.insert(rate, pcm.clone());
        Ok(pcm)
    }
}

/// A loaded, checked scenario.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub path: PathBuf,
    pub role: Role,
    /// What a caller dials. A callee's holds its listening address as `to` and the defaults.
    pub call: CallSpec,
    /// Where a callee listens.
    pub listen: Option<std::net::SocketAddr>,
    pub media: MediaSpec,
    pub transport: Transport,
    pub codecs: Vec<sma_sip::sdp::Codec>,
    /// `media.suites`, checked.
    pub srtp_suites: Vec<sma_media::srtp::Suite>,
    pub steps: Vec<Step>,
    /// The line each step starts on.
    pub lines: Vec<usize>,
    /// Audio for `play` and `expect_prompt` steps, by step index.
    pub audio: BTreeMap<usize, Audio>,
}

/// A YAML document that did not deserialize, as `file:line: field: message`.
pub fn yaml_error(
    e: serde_path_to_error::Error<serde_yaml_ng::Error>,
    file: &str,
) -> ScenarioError {
    let field = e.path().to_string();
    let inner = e.into_inner();
    let line = inner.location().map_or(0, |l| l.line());
    let mut message = inner.to_string();
    // serde_yaml_ng appends " at line L column C"; the prefix already says where.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    ScenarioError {
        file: file.to_owned(),
        line,
        field: if field == "." {
            "(document)".into()
        } else {
            field
        },
        message,
    }
}

/// The line of each item of the top-level `steps:` sequence (block style), so errors found
/// after parsing can still point at their step.
fn step_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut in_steps = false;
    let mut indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 && !trimmed.starts_with('-') {
            in_steps = trimmed.starts_with("steps:");
            continue;
        }
        if !in_steps || !trimmed.starts_with('-') {
            continue;
        }
        match indent {
            None => {
                indent = Some(depth);
                lines.push(n + 1);
            }
            Some(i) if i == depth => lines.push(n + 1),
            _ => {}
        }
    }
    lines
}

fn codec_named(name: &str) -> Option<sma_sip::sdp::Codec> {
    use sma_sip::sdp::Codec;
    match name.to_ascii_lowercase().as_str() {
        "pcmu" => Some(Codec::Pcmu),
        "pcma" => Some(Codec::Pcma),
        "g722" => Some(Codec::G722),
        "opus" => Some(Codec::Opus),
        _ => None,
    }
}

impl Scenario {
    /// Reads and checks a scenario file. Relative audio paths are taken from the file's
    /// folder.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: 0,
            field: "(file)".into(),
            message: format!("cannot read the scenario: {e}"),
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses scenario text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let document: Document =
            serde_path_to_error::deserialize(deserializer).map_err(|e| yaml_error(e, &file))?;
        let lines = step_lines(text);
        let line_of = |i: usize| lines.get(i).copied().unwrap_or(0);
        let line_of_key = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(&format!("{key}:")))
                .map_or(0, |n| n + 1)
        };
        let err = |line: usize, field: String, message: String| ScenarioError {
            file: file.clone(),
            line,
            field,
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));

        let (call, listen) = match (document.role, document.call.clone(), &document.listen) {
            (Role::Caller, Some(call), None) => (call, None),
            (Role::Caller, None, _) => {
                return Err(err(
                    0,
                    "call".into(),
                    "a caller scenario needs `call:` (or `role: callee` with `listen:`)".into(),
                ))
            }
            (Role::Caller, Some(_), Some(_)) => {
                return Err(err(
                    line_of_key("listen"),
                    "listen".into(),
                    "only a callee listens: add `role: callee`".into(),
                ))
            }
            (Role::Callee, Some(_), _) => {
                return Err(err(
                    line_of_key("call"),
                    "call".into(),
                    "a callee does not dial: use `listen:` instead of `call:`".into(),
                ))
            }
            (Role::Callee, None, None) => {
                return Err(err(
                    line_of_key("role"),
                    "listen".into(),
                    "a callee needs `listen: host:port`".into(),
                ))
            }
            (Role::Callee, None, Some(l)) => {
                let addr: std::net::SocketAddr = l.address.trim().parse().map_err(|_| {
                    err(
                        line_of_key("listen"),
                        "listen.address".into(),
                        format!("`{}` is not an IP address and port", l.address),
                    )
                })?;
                let call = CallSpec {
                    to: format!("sip:{addr}"),
                    server: None,
                    from: None,
                    transport: l.transport.clone().unwrap_or_else(default_transport),
                    credentials: None,
                    headers: BTreeMap::new(),
                    answer_timeout: default_answer_timeout(),
                };
                (call, Some(addr))
            }
        };
        let transport_key = if listen.is_some() {
            "listen.transport"
        } else {
            "call.transport"
        };
        let transport = Transport::from_token(&call.transport).ok_or_else(|| {
            err(
                line_of_key("transport"),
                transport_key.into(),
                format!("`{}` is not a transport (udp, tcp or tls)", call.transport),
            )
        })?;
        if listen.is_none() {
            check_target(&call).map_err(|why| err(line_of_key("to"), "call.to".into(), why))?;
        }
        match (document.role, document.steps.first()) {
            (Role::Callee, Some(first))
                if !matches!(
                    first,
                    Step::ExpectIncoming(_) | Step::Expect(CallExpectation::Incoming)
                ) =>
            {
                return Err(err(
                    line_of(0),
                    format!("steps[0].{}", first.key()),
                    "a callee's first step is `expect_incoming` (or `expect: incoming`)".into(),
                ));
            }
            _ => {}
        }
        let mut codecs = Vec::new();
        for (i, name) in document.media.codecs.iter().enumerate() {
            let codec = codec_named(name).ok_or_else(|| {
                err(
                    line_of_key("codecs"),
                    format!("media.codecs[{i}]"),
                    format!("unknown codec `{name}` (pcmu, pcma, g722 or opus)"),
                )
            })?;
            codecs.push(codec);
        }
        if codecs.is_empty() {
            return Err(err(
                line_of_key("codecs"),
                "media.codecs".into(),
                "offer at least one codec".into(),
            ));
        }
        let mut srtp_suites = Vec::new();
        for (i, name) in document.media.suites.iter().enumerate() {
            let suite = sma_media::srtp::Suite::from_name(name).ok_or_else(|| {
                err(
                    line_of_key("suites"),
                    format!("media.suites[{i}]"),
                    format!(
                        "unknown SRTP suite `{name}` (AEAD_AES_256_GCM, AEAD_AES_128_GCM, \
                         AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_80, \
                         AES_256_CM_HMAC_SHA1_32 or AES_CM_128_HMAC_SHA1_32)"
                    ),
                )
            })?;
            srtp_suites.push(suite);
        }
        if srtp_suites.is_empty() && document.media.srtp != SrtpMode::Off {
            return Err(err(
                line_of_key("suites"),
                "media.suites".into(),
                "SRTP needs at least one suite".into(),
            ));
        }
        if !(10..=60).contains(&document.media.ptime) || !document.media.ptime.is_multiple_of(10) {
            return Err(err(
                line_of_key("ptime"),
                "media.ptime".into(),
                "ptime must be 10, 20, 30, 40, 50 or 60".into(),
            ));
        }
        if document.steps.is_empty() {
            return Err(err(
                line_of_key("steps"),
                "steps".into(),
                "a scenario needs at least one step".into(),
            ));
        }

        let mut audio = BTreeMap::new();
        for (i, step) in document.steps.iter().enumerate() {
            let field = |f: &str| format!("steps[{i}].{}{f}", step.key());
            let fail = |f: &str, message: String| err(line_of(i), field(f), message);
            if document.role == Role::Caller && step.is_callee_only() {
                return Err(fail(
                    "",
                    "only a callee takes this step (add `role: callee` and `listen:`)".into(),
                ));
            }
            if document.role == Role::Callee
                && i > 0
                && step.is_callee_only()
                && matches!(
                    step,
                    Step::ExpectIncoming(_) | Step::Expect(CallExpectation::Incoming)
                )
            {
                return Err(fail(
                    "",
                    "a callee takes one call: one `expect_incoming`".into(),
                ));
            }
            match step {
                Step::Reject(Reject(code)) if !(300..=699).contains(code) => {
                    return Err(fail(
                        ".status",
                        format!("{code} is not a final error status (300-699)"),
                    ));
                }
                Step::Expect(CallExpectation::SipStatus(s)) if !(100..=699).contains(s) => {
                    return Err(fail(".sip_status", format!("{s} is not a SIP status")));
                }
                Step::ExpectAudio(a) if a.max_ms.is_some_and(|max| max < a.min_ms) => {
                    return Err(fail(".max_ms", "max_ms is below min_ms".into()));
                }
                Step::ExpectDigits(d) => {
                    check_digits(&d.digits, false).map_err(|why| fail(".digits", why))?
                }
                Step::SendDigits(d) => {
                    check_digits(&d.digits, true).map_err(|why| fail(".digits", why))?;
                    if d.duration_ms.is_some_and(|ms| !(40..=2000).contains(&ms)) {
                        return Err(fail(".duration_ms", "must be 40 to 2000 ms".into()));
                    }
                }
                Step::Say(s) if s.text.trim().is_empty() => {
                    return Err(fail(".text", "nothing to say".into()));
                }
                Step::Say(s) => {
                    if let Some(v) = &s.voice {
                        if sma_media::tts::voice(v).is_none() {
                            return Err(fail(".voice", format!("unknown voice `{v}`")));
                        }
                    }
                }
                Step::ExpectPrompt(PromptExpectation {
                    file, min_score, ..
                }) => {
                    if min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                        return Err(fail(".min_score", "must be between 0 and 1".into()));
                    }
                    let loaded = load_audio(&base.join(file)).map_err(|why| fail(".file", why))?;
                    audio.insert(i, loaded);
                }
                Step::Play(Play { file, .. }) => {
                    let loaded = load_audio(&base.join(file)).map_err(|why| fail(".file", why))?;
                    audio.insert(i, loaded);
                }
                _ => {}
            }
        }
        let name = document.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Scenario {
            name,
            path: path.to_owned(),
            role: document.role,
            call,
            listen,
            media: document.media,
            transport,
            codecs,
            srtp_suites,
            steps: document.steps,
            lines,
            audio,
        })
    }

    pub fn line(&self, step: usize) -> usize {
        self.lines.get(step).copied().unwrap_or(0)
    }
}

fn load_audio(path: &Path) -> Result<Audio, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (samples, rate) = sma_media::prompt::decode(bytes)
        .map_err(|e| format!("{}: not playable audio: {e}", path.display()))?;
    if samples.is_empty() {
        return Err(format!("{}: the file has no audio", path.display()));
    }
    Ok(Audio {
        path: path.to_owned(),
        samples,
        rate,
        by_rate: Mutex::new(BTreeMap::new()),
    })
}

fn check_digits(digits: &str, pauses: bool) -> Result<(), String> {
    if digits.is_empty() {
        return Err("no digits".into());
    }
    for c in digits.chars() {
        if Digit::new(c).is_none() && !(pauses && c == ',') {
            return Err(format!(
                "`{c}` is not a DTMF digit (0-9, *, #, A-D{})",
                if pauses { ", and , to pause" } else { "" }
            ));
        }
    }
    Ok(())
}

/// Checks the `to`/`server` pair: a URI parses, a bare number has a server.
fn check_target(call: &CallSpec) -> Result<(), String> {
    if call.to.contains(':') {
        let uri = Uri::parse(&call.to).map_err(|e| format!("`{}`: {e}", call.to))?;
        if call.server.is_none() && uri.host.to_string().is_empty() {
            return Err("the URI has no host and no `server` is given".into());
        }
    } else {
        let digits = call.to.trim_start_matches('+');
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "`{}` is neither a SIP URI nor a phone number",
                call.to
            ));
        }
        if call.server.is_none() {
            return Err("a number needs `call.server` (host:port) to dial".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("t.yaml"))
    }

    const CALL: &str = "call:\n  to: sip:+12065550100@127.0.0.1:5060\n";

    #[test]
    fn parses_every_step_in_short_and_long_form() {
        let text = format!(
            "name: all\n{CALL}steps:\n  - expect: ringing\n  - expect: answered\n  - expect: {{sip_status: 180}}\n  - expect_audio: {{min_ms: 300, max_ms: 4000, within: 5s}}\n  - expect_silence: {{min_ms: 500}}\n  - expect_digits: \"12\"\n  - expect_digits: {{digits: \"#\", within: 2s}}\n  - send_digits: \"1,2\"\n  - send_digits: {{digits: \"3\", mode: inband, duration_ms: 120}}\n  - say: hello there\n  - say: {{text: hi, voice: Joanna}}\n  - wait: 1.5s\n  - wait: 250\n  - hangup\n  - expect_hangup: 10s\n  - expect_hangup: {{within: 2m}}\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.name, "all");
        assert_eq!(s.steps.len(), 16);
        assert_eq!(s.steps[2], Step::Expect(CallExpectation::SipStatus(180)));
        assert_eq!(s.steps[11], Step::Wait(Dur(Duration::from_millis(1500))));
        assert_eq!(s.steps[12], Step::Wait(Dur(Duration::from_millis(250))));
        assert_eq!(s.steps[13], Step::Hangup);
        assert_eq!(
            s.steps[14],
            Step::ExpectHangup(HangupExpectation {
                within: Some(Dur(Duration::from_secs(10)))
            })
        );
        assert_eq!(s.lines[0], 5);
        assert_eq!(s.lines[15], 20);
        match &s.steps[8] {
            Step::SendDigits(d) => {
                assert_eq!(d.mode, Some(DtmfMode::Inband));
                assert_eq!(d.duration_ms, Some(120));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn media_options_parse_and_default() {
        let s = parse(&format!("{CALL}steps:\n  - hangup\n")).unwrap();
        assert_eq!(s.media, MediaSpec::default());
        let s = parse(&format!(
            "{CALL}media:\n  codecs: [opus, PCMU]\n  silence: suppress\n  telephone_event: false\nsteps:\n  - hangup\n"
        ))
        .unwrap();
        assert_eq!(s.media.silence, Silence::Suppress);
        assert_eq!(
            s.codecs,
            vec![sma_sip::sdp::Codec::Opus, sma_sip::sdp::Codec::Pcmu]
        );
        let e = parse(&format!(
            "{CALL}media:\n  silence: loud\nsteps:\n  - hangup\n"
        ))
        .unwrap_err();
        assert_eq!(e.field, "media.silence", "{e}");
    }

    #[test]
    fn an_unknown_step_names_line_and_field() {
        let text = format!("{CALL}steps:\n  - expect: answered\n  - press: 1\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.file, "t.yaml");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.field.starts_with("steps[1]"), "{e}");
        assert!(e.message.contains("unknown variant `press`"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let text = format!("{CALL}steps:\n  - expect_audio: {{min_ms: lots}}\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field, "steps[0].expect_audio.min_ms", "{e}");
        assert_eq!(e.line, 4, "{e}");
        let text = format!("{CALL}steps:\n  - expect_audio: {{min_ms: 1, colour: red}}\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let text = format!("{CALL}steps:\n  - wait: 3 fortnights\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("unknown unit"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_step_line() {
        let text = format!("{CALL}steps:\n  - expect: answered\n\n  - play: nowhere.wav\n");
        let e = parse(&text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "steps[1].play.file"), "{e}");
        assert!(e.message.contains("nowhere.wav"), "{e}");
        let text = format!("{CALL}steps:\n  - expect_prompt: {{file: gone.wav, within: 2s}}\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field, "steps[0].expect_prompt.file", "{e}");
    }

    #[test]
    fn bad_values_are_refused_before_dialing() {
        for (steps, field) in [
            ("  - send_digits: \"1x\"\n", "steps[0].send_digits.digits"),
            (
                "  - expect_digits: \"1,2\"\n",
                "steps[0].expect_digits.digits",
            ),
            (
                "  - expect_audio: {min_ms: 500, max_ms: 100}\n",
                "steps[0].expect_audio.max_ms",
            ),
            (
                "  - expect: {sip_status: 42}\n",
                "steps[0].expect.sip_status",
            ),
            ("  - say: {text: hi, voice: Nobody}\n", "steps[0].say.voice"),
        ] {
            let e = parse(&format!("{CALL}steps:\n{steps}")).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let e = parse("call:\n  to: \"+1206\"\nsteps:\n  - hangup\n").unwrap_err();
        assert_eq!(e.field, "call.to", "{e}");
        assert!(e.message.contains("call.server"), "{e}");
        let e = parse(&format!("{CALL}  transport: sctp\nsteps:\n  - hangup\n")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("call.transport", 3), "{e}");
        let e = parse(&format!("{CALL}steps: []\n")).unwrap_err();
        assert_eq!(e.field, "steps", "{e}");
        let e = parse("call: {to: sip:a@b}\nsteps:\n  - hangup\nextra: 1\n").unwrap_err();
        assert!(e.message.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn a_callee_listens_and_takes_callee_steps() {
        let s = parse(
            "role: callee\nlisten: 127.0.0.1:5090\nsteps:\n  - expect_incoming: {from: \"+1206\", headers: {X-Agent: \"7\"}}\n  - ring: 2s\n  - answer\n  - expect_audio: {min_ms: 100}\n  - hangup\n",
        )
        .unwrap();
        assert_eq!(s.role, Role::Callee);
        assert_eq!(s.listen, Some("127.0.0.1:5090".parse().unwrap()));
        assert_eq!(s.steps[1], Step::Ring(Dur(Duration::from_secs(2))));
        let s = parse(
            "role: callee\nlisten: {address: \"127.0.0.1:5091\", transport: tcp}\nsteps:\n  - expect: incoming\n  - reject: {status: 486}\n",
        )
        .unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.steps[1], Step::Reject(Reject(486)));
    }

    #[test]
    fn roles_refuse_what_does_not_fit_them() {
        for (text, field, says) in [
            (
                "role: callee\nsteps:\n  - expect: incoming\n".to_owned(),
                "listen",
                "needs `listen",
            ),
            (
                format!("role: callee\nlisten: 127.0.0.1:5090\n{CALL}steps:\n  - answer\n"),
                "call",
                "does not dial",
            ),
            (
                "role: callee\nlisten: localhost\nsteps:\n  - answer\n".to_owned(),
                "listen.address",
                "not an IP address",
            ),
            (
                "role: callee\nlisten: 127.0.0.1:5090\nsteps:\n  - answer\n".to_owned(),
                "steps[0].answer",
                "first step",
            ),
            (
                "role: callee\nlisten: 127.0.0.1:5090\nsteps:\n  - expect: incoming\n  - reject: 200\n".to_owned(),
                "steps[1].reject.status",
                "not a final error",
            ),
            (
                format!("{CALL}steps:\n  - answer\n"),
                "steps[0].answer",
                "only a callee",
            ),
            (
                format!("{CALL}listen: 127.0.0.1:5090\nsteps:\n  - hangup\n"),
                "listen",
                "role: callee",
            ),
            (
                "steps:\n  - hangup\n".to_owned(),
                "call",
                "needs `call:`",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn hostile_yaml_never_panics() {
        for text in [
            "",
            "\u{0}\u{1}",
            "[[[[[[[[",
            "call: *a",
            "steps: !!binary AAAA",
            "call:\n  to: 1\nsteps:\n  - wait: -5\n",
            "call:\n  to: sip:x@y\nsteps:\n  - wait: 1e308s\n",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
