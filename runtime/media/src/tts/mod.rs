//! Text-to-speech behind one trait: eSpeak NG locally by default ([`espeak`]), an
//! OpenAI-compatible HTTP server for operators who run a neural engine ([`http`]).
//! Synthesized audio is cached like prompts, by (engine, voice, text).

pub mod espeak;
pub mod http;
pub mod ssml;

use crate::codec::AudioCodec;
use crate::prompt::{EncodedPrompt, PromptCache, PromptError};
use std::sync::Arc;

/// Longest text accepted (the contract allows 1,000 characters; SSML markup adds some).
pub const MAX_TEXT_BYTES: usize = ssml::MAX_SSML_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextType {
    Text,
    Ssml,
}

/// What the contract's Speak parameters ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechRequest {
    pub text: String,
    pub text_type: TextType,
    /// Polly voice id (default Joanna).
    pub voice_id: Option<String>,
    /// Polly language code, for bilingual voices or to pick a language without a voice.
    pub language_code: Option<String>,
}

/// Synthesized audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtsError {
    #[error("text is empty")]
    Empty,
    #[error("text is {0} bytes, more than {MAX_TEXT_BYTES}")]
    TooLong(usize),
    #[error(transparent)]
    Ssml(#[from] ssml::SsmlError),
    #[error("unknown voice `{0}`")]
    UnknownVoice(String),
    #[error("the {engine} engine cannot speak language `{language}`")]
    UnsupportedLanguage {
        engine: &'static str,
        language: String,
    },
    #[error("{engine} engine failed: {why}")]
    Engine { engine: &'static str, why: String },
}

/// A text-to-speech engine. Calls block; run them off the async runtime's threads.
pub trait Synthesizer: Send + Sync {
    /// A short name for caches and logs (`espeak`, `http:<url>`).
    fn name(&self) -> String;
    fn synthesize(&self, request: &SpeechRequest) -> Result<Speech, TtsError>;
}

/// A Polly voice: its language and whether it is a female voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceInfo {
    pub language: &'static str,
    pub female: bool,
}

/// Polly voice ids and their languages. eSpeak picks the language's voice and a male or
/// female variant; the HTTP engine passes the id through.
pub const VOICES: &[(&str, &str, bool)] = &[
    ("Joanna", "en-US", true),
    ("Matthew", "en-US", false),
    ("Ivy", "en-US", true),
    ("Justin", "en-US", false),
    ("Kendra", "en-US", true),
    ("Kimberly", "en-US", true),
    ("Salli", "en-US", true),
    ("Joey", "en-US", false),
    ("Kevin", "en-US", false),
    ("Ruth", "en-US", true),
    ("Stephen", "en-US", false),
    ("Danielle", "en-US", true),
    ("Gregory", "en-US", false),
    ("Amy", "en-GB", true),
    ("Emma", "en-GB", true),
    ("Brian", "en-GB", false),
    ("Arthur", "en-GB", false),
    ("Olivia", "en-AU", true),
    ("Nicole", "en-AU", true),
    ("Russell", "en-AU", false),
    ("Aditi", "en-IN", true),
    ("Raveena", "en-IN", true),
    ("Geraint", "en-GB-WLS", false),
    ("Lupe", "es-US", true),
    ("Penelope", "es-US", true),
    ("Miguel", "es-US", false),
    ("Pedro", "es-US", false),
    ("Mia", "es-MX", true),
    ("Lucia", "es-ES", true),
    ("Conchita", "es-ES", true),
    ("Enrique", "es-ES", false),
    ("Sergio", "es-ES", false),
    ("Lea", "fr-FR", true),
    ("Celine", "fr-FR", true),
    ("Mathieu", "fr-FR", false),
    ("Remi", "fr-FR", false),
    ("Chantal", "fr-CA", true),
    ("Gabrielle", "fr-CA", true),
    ("Liam", "fr-CA", false),
    ("Vicki", "de-DE", true),
    ("Marlene", "de-DE", true),
    ("Hans", "de-DE", false),
    ("Daniel", "de-DE", false),
    ("Bianca", "it-IT", true),
    ("Carla", "it-IT", true),
    ("Giorgio", "it-IT", false),
    ("Adriano", "it-IT", false),
    ("Camila", "pt-BR", true),
    ("Vitoria", "pt-BR", true),
    ("Ricardo", "pt-BR", false),
    ("Thiago", "pt-BR", false),
    ("Ines", "pt-PT", true),
    ("Cristiano", "pt-PT", false),
    ("Lotte", "nl-NL", true),
    ("Ruben", "nl-NL", false),
    ("Mizuki", "ja-JP", true),
    ("Takumi", "ja-JP", false),
    ("Seoyeon", "ko-KR", true),
    ("Zhiyu", "cmn-CN", true),
    ("Astrid", "sv-SE", true),
    ("Liv", "nb-NO", true),
    ("Naja", "da-DK", true),
    ("Mads", "da-DK", false),
    ("Ewa", "pl-PL", true),
    ("Jacek", "pl-PL", false),
    ("Tatyana", "ru-RU", true),
    ("Maxim", "ru-RU", false),
    ("Filiz", "tr-TR", true),
    ("Carmen", "ro-RO", true),
    ("Dora", "is-IS", true),
    ("Karl", "is-IS", false),
    ("Gwyneth", "cy-GB", true),
    ("Zeina", "arb", true),
    ("Hala", "ar-AE", true),
];

/// Looks up a voice id (case-insensitive).
pub fn voice(id: &str) -> Option<VoiceInfo> {
    VOICES
        .iter()
        .find(|(v, _, _)| v.eq_ignore_ascii_case(id))
        .map(|(_, language, female)| VoiceInfo {
            language,
            female: *female,
        })
}

/// The segments a request speaks.
pub fn segments(request: &SpeechRequest) -> Result<Vec<ssml::Segment>, TtsError> {
    if request.text.len() > MAX_TEXT_BYTES {
        return Err(TtsError::TooLong(request.text.len()));
    }
    let segments = match request.text_type {
        TextType::Text => ssml::plain(&request.text),
        TextType::Ssml => ssml::parse(&request.text)?,
    };
    if !segments
        .iter()
        .any(|s| matches!(s, ssml::Segment::Text { .. }))
    {
        return Err(TtsError::Empty);
    }
    Ok(segments)
}

/// Synthesizes through a cache of encoded speech keyed by (engine, voice, language, text).
pub fn cached(
    cache: &PromptCache,
    engine: &dyn Synthesizer,
    request: &SpeechRequest,
    codec: AudioCodec,
) -> Result<Arc<EncodedPrompt>, TtsError> {
    let key = format!(
        "tts\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{}",
        engine.name(),
        request.voice_id,
        request.language_code,
        request.text_type,
        request.text
    );
    let produced = cache.get_with(key.as_bytes(), codec, || {
        let speech = engine
            .synthesize(request)
            .map_err(|e| PromptError::Synthesis(e.to_string()))?;
        let samples: Vec<f32> = speech
            .samples
            .iter()
            .map(|s| f32::from(*s) / 32_768.0)
            .collect();
        Ok((samples, speech.sample_rate))
    });
    produced.map_err(|e| match e {
        PromptError::Synthesis(why) => TtsError::Engine { engine: "tts", why },
        other => TtsError::Engine {
            engine: "tts",
            why: other.to_string(),
        },
    })
}
