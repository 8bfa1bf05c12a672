//! Audio codecs. Internally the engine works on PCM16 at the codec's sample rate: 8 kHz for
//! G.711, 16 kHz for G.722, 48 kHz for Opus (mono on the wire is negotiated as opus/48000/2;
//! Opus decoders accept mono or stereo streams).
//!
//! G.711 is stateless and has its own tables ([`g711`]). G.722 (ADPCM) and Opus keep state, so
//! streams use an [`Encoder`] / [`Decoder`] each; [`AudioCodec::encode`] and
//! [`AudioCodec::decode`] process one complete signal from a fresh state.

pub mod g711;

use audio_codec::{Decoder as _, Encoder as _};

/// A payload format the engine can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

/// RFC 3389 comfort noise: accepted on receive and played as silence.
pub const COMFORT_NOISE_PAYLOAD_TYPE: u8 = 13;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("cannot create the {codec:?} codec: {why}")]
    Create { codec: AudioCodec, why: String },
    #[error("{codec:?} could not encode: {why}")]
    Encode { codec: AudioCodec, why: String },
    #[error("{codec:?} payload of {len} bytes does not decode: {why}")]
    Decode {
        codec: AudioCodec,
        len: usize,
        why: String,
    },
}

impl AudioCodec {
    /// The PCM sample rate the codec works at.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::G722 => 16_000,
            AudioCodec::Opus => 48_000,
        }
    }

    /// The RTP timestamp rate (G.722's is 8000 by RFC 3551's historical error).
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// PCM samples per frame of `ptime_ms`.
    pub fn samples_per_frame(self, ptime_ms: u32) -> usize {
        (self.sample_rate() * ptime_ms / 1000) as usize
    }

    /// RTP timestamp units per frame of `ptime_ms`.
    pub fn clock_per_frame(self, ptime_ms: u32) -> u32 {
        self.clock_rate() * ptime_ms / 1000
    }

    /// Whether every frame encodes to the same number of bytes (so prompts can be stored as
    /// fixed-size frames).
    pub fn constant_frame_size(self) -> bool {
        self != AudioCodec::Opus
    }

    /// The encoding of silence, for fixed-size codecs' padding.
    pub fn silence_byte(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0xFF,
            AudioCodec::Pcma => 0xD5,
            // A G.722 byte of zero codes are near-silence once the decoder settles.
            AudioCodec::G722 | AudioCodec::Opus => 0x00,
        }
    }

    pub fn encoder(self) -> Result<Encoder, CodecError> {
        Ok(Encoder {
            codec: self,
            state: match self {
                AudioCodec::Pcmu | AudioCodec::Pcma => EncoderState::Stateless,
                AudioCodec::G722 => {
                    EncoderState::G722(Box::new(audio_codec::g722::G722Encoder::new()))
                }
                AudioCodec::Opus => {
                    let mut e =
                        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                            .map_err(|e| CodecError::Create {
                            codec: self,
                            why: e.to_string(),
                        })?;
                    let _ = e.set_inband_fec(true);
                    EncoderState::Opus(Box::new(e))
                }
            },
        })
    }

    pub fn decoder(self) -> Result<Decoder, CodecError> {
        Ok(Decoder {
            codec: self,
            state: match self {
                AudioCodec::Pcmu | AudioCodec::Pcma => DecoderState::Stateless,
                AudioCodec::G722 => {
                    DecoderState::G722(Box::new(audio_codec::g722::G722Decoder::new()))
                }
                AudioCodec::Opus => DecoderState::Opus(Box::new(
                    opus::Decoder::new(48_000, opus::Channels::Mono).map_err(|e| {
                        CodecError::Create {
                            codec: self,
                            why: e.to_string(),
                        }
                    })?,
                )),
            },
        })
    }

    /// Encodes one complete signal from a fresh encoder state. For G.711 this is exact and
    /// cheap; for stateful codecs prefer a stream's [`Encoder`].
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            AudioCodec::Pcmu => g711::ulaw_encode_into(samples, out),
            AudioCodec::Pcma => g711::alaw_encode_into(samples, out),
            _ => {
                if let Ok(mut e) = self.encoder() {
                    for frame in samples.chunks(self.samples_per_frame(20)) {
                        let _ = e.encode(frame, out);
                    }
                }
            }
        }
    }

    /// Decodes one complete payload sequence from a fresh decoder state (G.711: exact).
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            AudioCodec::Pcmu => g711::ulaw_decode_into(payload, out),
            AudioCodec::Pcma => g711::alaw_decode_into(payload, out),
            _ => {
                if let Ok(mut d) = self.decoder() {
                    let _ = d.decode(payload, out);
                }
            }
        }
    }
}

enum EncoderState {
    Stateless,
    G722(Box<audio_codec::g722::G722Encoder>),
    Opus(Box<opus::Encoder>),
}

enum DecoderState {
    Stateless,
    G722(Box<audio_codec::g722::G722Decoder>),
    Opus(Box<opus::Decoder>),
}

/// A stream's encoder.
pub struct Encoder {
    codec: AudioCodec,
    state: EncoderState,
}

impl Encoder {
    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Encodes one frame, appending the payload.
    pub fn encode(&mut self, samples: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let codec = self.codec;
        match &mut self.state {
            EncoderState::Stateless => {
                codec.encode(samples, out);
                Ok(())
            }
            EncoderState::G722(e) => {
                let start = out.len();
                out.resize(start + e.max_encode_bytes(samples.len()), 0);
                let n = e.encode_into(samples, &mut out[start..]).map_err(|err| {
                    CodecError::Encode {
                        codec,
                        why: format!("{err:?}"),
                    }
                })?;
                out.truncate(start + n);
                Ok(())
            }
            EncoderState::Opus(e) => {
                let start = out.len();
                out.resize(start + 1275, 0);
                let n = e
                    .encode(samples, &mut out[start..])
                    .map_err(|err| CodecError::Encode {
                        codec,
                        why: err.to_string(),
                    })?;
                out.truncate(start + n);
                Ok(())
            }
        }
    }
}

/// A stream's decoder.
pub struct Decoder {
    codec: AudioCodec,
    state: DecoderState,
}

impl Decoder {
    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Decodes one payload, appending samples.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let codec = self.codec;
        let bad = |why: String| CodecError::Decode {
            codec,
            len: payload.len(),
            why,
        };
        match &mut self.state {
            DecoderState::Stateless => {
                codec.decode(payload, out);
                Ok(())
            }
            DecoderState::G722(d) => {
                let start = out.len();
                out.resize(start + d.max_decode_samples(payload.len()), 0);
                let n = d
                    .decode_into(payload, &mut out[start..])
                    .map_err(|e| bad(format!("{e:?}")))?;
                out.truncate(start + n);
                Ok(())
            }
            DecoderState::Opus(d) => {
                let start = out.len();
                // Up to 120 ms at 48 kHz.
                out.resize(start + 5_760, 0);
                let n = d
                    .decode(payload, &mut out[start..], false)
                    .map_err(|e| bad(e.to_string()))?;
                out.truncate(start + n);
                Ok(())
            }
        }
    }

    /// Fills a lost frame of `samples`: Opus's own concealment, silence for the others.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if let DecoderState::Opus(d) = &mut self.state {
            let start = out.len();
            out.resize(start + samples, 0);
            match d.decode(&[], &mut out[start..], false) {
                Ok(n) => out.truncate(start + n),
                Err(_) => out.truncate(start),
            }
            out.resize(start + samples, 0);
        } else {
            out.resize(out.len() + samples, 0);
        }
    }
}
