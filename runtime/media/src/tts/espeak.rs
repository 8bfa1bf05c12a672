//! eSpeak NG through `libespeak-ng`.
//!
//! eSpeak's API is process-global and not re-entrant, so every synthesis runs on one
//! dedicated thread that owns the library; callers send requests over a channel and wait for
//! their audio. Each segment's prosody maps onto eSpeak's rate (words per minute), pitch
//! (0-100) and volume (0-200) parameters; pauses are silence appended between segments.

use super::ssml::Segment;
use super::{segments, Speech, SpeechRequest, Synthesizer, TtsError};
use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_int, c_short};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Language codes (Polly's) and the eSpeak NG voice that speaks them.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en-US", "en-us"),
    ("en-GB", "en-gb"),
    ("en-AU", "en-gb"),
    ("en-IN", "en-gb"),
    ("en-NZ", "en-gb"),
    ("en-ZA", "en-gb"),
    ("en-IE", "en-gb"),
    ("en-GB-WLS", "en-gb"),
    ("es-US", "es-419"),
    ("es-MX", "es-419"),
    ("es-ES", "es"),
    ("fr-FR", "fr-fr"),
    ("fr-CA", "fr-fr"),
    ("fr-BE", "fr-be"),
    ("de-DE", "de"),
    ("de-AT", "de"),
    ("it-IT", "it"),
    ("pt-BR", "pt-br"),
    ("pt-PT", "pt"),
    ("nl-NL", "nl"),
    ("nl-BE", "nl"),
    ("ja-JP", "ja"),
    ("ko-KR", "ko"),
    ("cmn-CN", "cmn"),
    ("sv-SE", "sv"),
    ("nb-NO", "nb"),
    ("da-DK", "da"),
    ("pl-PL", "pl"),
    ("ru-RU", "ru"),
    ("tr-TR", "tr"),
    ("ro-RO", "ro"),
    ("is-IS", "is"),
    ("cy-GB", "cy"),
    ("arb", "ar"),
    ("ar-AE", "ar"),
    ("fi-FI", "fi"),
    ("hi-IN", "hi"),
    ("ca-ES", "ca"),
    ("cs-CZ", "cs"),
];

/// The eSpeak voice for a language code.
pub fn espeak_voice(language: &str) -> Option<&'static str> {
    LANGUAGES
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(language))
        .map(|(_, voice)| *voice)
}

struct Job {
    voice: String,
    segments: Vec<Segment>,
    reply: mpsc::Sender<Result<Speech, TtsError>>,
}

thread_local! {
    static SAMPLES: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn collect(
    wav: *mut c_short,
    count: c_int,
    _events: *mut espeakng_sys::espeak_EVENT,
) -> c_int {
    if !wav.is_null() && count > 0 {
        // SAFETY: eSpeak passes `count` valid samples at `wav` for the duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, count as usize) };
        SAMPLES.with(|s| s.borrow_mut().extend_from_slice(samples));
    }
    0
}

fn engine_error(why: impl Into<String>) -> TtsError {
    TtsError::Engine {
        engine: "espeak",
        why: why.into(),
    }
}

fn run(jobs: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<u32, TtsError>>) {
    // SAFETY: called once, on this thread, which owns the library from here on.
    let rate = unsafe {
        espeakng_sys::espeak_Initialize(
            espeakng_sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
            200,
            std::ptr::null(),
            0,
        )
    };
    if rate <= 0 {
        let _ = ready.send(Err(engine_error(
            "libespeak-ng failed to initialise (is espeak-ng-data installed?)",
        )));
        return;
    }
    // SAFETY: the callback only touches this thread's buffer.
    unsafe { espeakng_sys::espeak_SetSynthCallback(Some(collect)) };
    let rate = rate as u32;
    let _ = ready.send(Ok(rate));
    for job in jobs {
        let result = synthesize_job(&job, rate);
        let _ = job.reply.send(result);
    }
}

fn synthesize_job(job: &Job, rate: u32) -> Result<Speech, TtsError> {
    let voice =
        CString::new(job.voice.as_str()).map_err(|_| engine_error("voice name has a NUL"))?;
    // SAFETY: a valid C string; eSpeak copies what it needs.
    let err = unsafe { espeakng_sys::espeak_SetVoiceByName(voice.as_ptr()) };
    if err != espeakng_sys::espeak_ERROR_EE_OK {
        return Err(engine_error(format!(
            "voice `{}` is not installed",
            job.voice
        )));
    }
    let mut out = Vec::new();
    for segment in &job.segments {
        match segment {
            Segment::Pause { ms } => out.resize(out.len() + (rate * ms / 1000) as usize, 0),
            Segment::Text { text, prosody } => {
                let wpm = (175.0 * prosody.rate).clamp(80.0, 450.0) as c_int;
                let pitch =
                    (50.0 * (1.0 + prosody.pitch_percent / 100.0)).clamp(0.0, 100.0) as c_int;
                let volume =
                    (100.0 * 10f32.powf(prosody.volume_db / 20.0)).clamp(0.0, 200.0) as c_int;
                let text = CString::new(text.replace('\0', " "))
                    .map_err(|_| engine_error("text has a NUL"))?;
                SAMPLES.with(|s| s.borrow_mut().clear());
                // SAFETY: parameters are plain integers; the text is a valid NUL-terminated
                // UTF-8 string whose length (with the NUL) is passed; synchronous output means
                // the callback has run before espeak_Synth returns.
                unsafe {
                    espeakng_sys::espeak_SetParameter(
                        espeakng_sys::espeak_PARAMETER_espeakRATE,
                        wpm,
                        0,
                    );
                    espeakng_sys::espeak_SetParameter(
                        espeakng_sys::espeak_PARAMETER_espeakPITCH,
                        pitch,
                        0,
                    );
                    espeakng_sys::espeak_SetParameter(
                        espeakng_sys::espeak_PARAMETER_espeakVOLUME,
                        volume,
                        0,
                    );
                    let err = espeakng_sys::espeak_Synth(
                        text.as_ptr().cast(),
                        text.as_bytes_with_nul().len(),
                        0,
                        espeakng_sys::espeak_POSITION_TYPE_POS_CHARACTER,
                        0,
                        espeakng_sys::espeakCHARS_UTF8,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                    if err != espeakng_sys::espeak_ERROR_EE_OK {
                        return Err(engine_error(format!("synthesis failed (error {err})")));
                    }
                    espeakng_sys::espeak_Synchronize();
                }
                SAMPLES.with(|s| out.extend_from_slice(&s.borrow()));
            }
        }
    }
    Ok(Speech {
        samples: out,
        sample_rate: rate,
    })
}

/// The eSpeak NG engine. All instances share the one synthesis thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Espeak;

struct Worker {
    jobs: Mutex<mpsc::Sender<Job>>,
}

static WORKER: OnceLock<Result<Worker, TtsError>> = OnceLock::new();

fn worker() -> Result<&'static Worker, TtsError> {
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let (ready_tx, ready_rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("sma-espeak".into())
                .spawn(move || run(rx, ready_tx))
                .map_err(|e| engine_error(format!("cannot start the synthesis thread: {e}")))?;
            ready_rx
                .recv()
                .map_err(|_| engine_error("the synthesis thread stopped"))??;
            Ok(Worker {
                jobs: Mutex::new(tx),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl Synthesizer for Espeak {
    fn name(&self) -> String {
        "espeak".into()
    }

    fn synthesize(&self, request: &SpeechRequest) -> Result<Speech, TtsError> {
        let segments = segments(request)?;
        // The voice picks the language unless a language code is given (bilingual voices).
        let info = match &request.voice_id {
            Some(id) => Some(super::voice(id).ok_or_else(|| TtsError::UnknownVoice(id.clone()))?),
            None => None,
        };
        let language = request
            .language_code
            .clone()
            .or(info.map(|i| i.language.to_owned()))
            .unwrap_or_else(|| "en-US".to_owned());
        let base = espeak_voice(&language).ok_or_else(|| TtsError::UnsupportedLanguage {
            engine: "espeak",
            language: language.clone(),
        })?;
        let female = info.map(|i| i.female).unwrap_or(true);
        let voice = format!("{base}+{}", if female { "f3" } else { "m3" });
        let (reply, result) = mpsc::channel();
        let job = Job {
            voice,
            segments,
            reply,
        };
        worker()?
            .jobs
            .lock()
            .map_err(|_| engine_error("the synthesis queue is poisoned"))?
            .send(job)
            .map_err(|_| engine_error("the synthesis thread stopped"))?;
        result
            .recv()
            .map_err(|_| engine_error("the synthesis thread stopped"))?
    }
}
