//! An OpenAI-compatible speech server (`POST /v1/audio/speech`), for operators who run a
//! neural TTS engine. The server returns WAV; pauses and prosody from SSML are not sent (the
//! API takes plain text), the text of every segment is.

use super::ssml::Segment;
use super::{segments, Speech, SpeechRequest, Synthesizer, TtsError};
use std::time::Duration;

/// Where the server is and how to call it.
#[derive(Debug, Clone)]
pub struct HttpTtsConfig {
    /// Base URL, e.g. `http://127.0.0.1:8880`.
    pub base_url: String,
    pub model: String,
    /// Voice used when the request names none, or names one the map does not know.
    pub default_voice: String,
    /// Polly voice id → the server's voice name.
    pub voice_map: Vec<(String, String)>,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

pub struct HttpTts {
    config: HttpTtsConfig,
    client: reqwest::blocking::Client,
}

fn error(why: impl Into<String>) -> TtsError {
    TtsError::Engine {
        engine: "http",
        why: why.into(),
    }
}

impl HttpTts {
    pub fn new(config: HttpTtsConfig) -> Result<HttpTts, TtsError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| error(e.to_string()))?;
        Ok(HttpTts { config, client })
    }
}

impl Synthesizer for HttpTts {
    fn name(&self) -> String {
        format!("http:{}:{}", self.config.base_url, self.config.model)
    }

    fn synthesize(&self, request: &SpeechRequest) -> Result<Speech, TtsError> {
        let text: Vec<String> = segments(request)?
            .into_iter()
            .filter_map(|s| match s {
                Segment::Text { text, .. } => Some(text),
                Segment::Pause { .. } => None,
            })
            .collect();
        let voice = request
            .voice_id
            .as_ref()
            .and_then(|id| {
                self.config
                    .voice_map
                    .iter()
                    .find(|(polly, _)| polly.eq_ignore_ascii_case(id))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| self.config.default_voice.clone());
        let body = serde_json::json!({
            "model": self.config.model,
            "input": text.join(" "),
            "voice": voice,
            "response_format": "wav",
        });
        let url = format!(
            "{}/v1/audio/speech",
            self.config.base_url.trim_end_matches('/')
        );
        let mut call = self.client.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().map_err(|e| error(format!("{url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(error(format!("{url} answered {status}")));
        }
        let bytes = response
            .bytes()
            .map_err(|e| error(format!("{url}: {e}")))?
            .to_vec();
        let (mono, rate) = crate::prompt::decode(bytes)
            .map_err(|e| error(format!("{url} returned audio that {e}")))?;
        Ok(Speech {
            samples: mono
                .iter()
                .map(|s| (s * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
                .collect(),
            sample_rate: rate,
        })
    }
}
