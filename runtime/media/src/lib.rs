//! The sma media engine.
//!
//! Protocol and signal-processing cores here are sans-IO like the SIP core: they take packets,
//! samples and `now`, and yield packets, samples and reports. Sockets live in a thin shell.
//!
//! - [`codec`]: G.711 µ-law and A-law (own tables, checked against ITU-T G.711).
//! - [`dtmf`]: RFC 4733 telephone-events, the in-band Q.24 detector, the tone generator.
//! - [`rtp`]: RTP reception statistics (RFC 3550 A.1, A.3, A.8) and sending state.
//! - [`rtcp`]: sender and receiver reports, round-trip time and an E-model MOS estimate.
//! - [`jitter`]: the adaptive jitter buffer.
//! - [`pacer`]: one clock for every outgoing stream; [`source`]: what streams play;
//!   [`prompt`]: audio files decoded once per content and codec, shared by every call.
//! - [`record`]: recordings to WAV, durable before they are reported.
//! - [`resample`]: streaming resampling between 8, 16 and 48 kHz.
//! - [`denoise`]: noise suppression of received audio (VoiceFocus), RNNoise's model.
//! - [`tts`]: text-to-speech (eSpeak NG locally, or an OpenAI-compatible server) with the
//!   SSML subset, cached like prompts.
//! - [`output`]: a leg's one outgoing stream, whose source the call engine switches.
//! - [`leg`]: a call leg's sockets and receive task (the IO shell).
//! - [`bridge`]: media between two legs: a relay without decoding, or PCM through the
//!   other leg's output.
//! - [`conference`]: meetings mixed at 16 kHz on one clock (mix-minus, loudest talkers).
//! - [`storage`]: where buckets (prompts read, recordings written) live on disk.

pub mod bridge;
pub mod codec;
pub mod conference;
pub mod denoise;
pub mod dtmf;
pub mod jitter;
pub mod leg;
pub mod output;
pub mod pacer;
pub mod prompt;
pub mod record;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod source;
/// SRTP lives in its own crate (the fuzzer builds it alone); it is part of the media engine.
pub use sma_srtp as srtp;
pub mod storage;
pub mod tts;
