//! Audio codecs. Internally the engine works on PCM16 at the codec's sample rate.

pub mod g711;

/// A payload format the engine can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
}

/// RFC 3389 comfort noise: accepted on receive and played as silence.
pub const COMFORT_NOISE_PAYLOAD_TYPE: u8 = 13;

impl AudioCodec {
    pub fn sample_rate(self) -> u32 {
        8_000
    }

    /// Samples per frame of `ptime_ms`.
    pub fn samples_per_frame(self, ptime_ms: u32) -> usize {
        (self.sample_rate() * ptime_ms / 1000) as usize
    }

    /// Decodes one payload, appending samples.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            AudioCodec::Pcmu => g711::ulaw_decode_into(payload, out),
            AudioCodec::Pcma => g711::alaw_decode_into(payload, out),
        }
    }

    /// Encodes samples, appending the payload bytes.
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            AudioCodec::Pcmu => g711::ulaw_encode_into(samples, out),
            AudioCodec::Pcma => g711::alaw_encode_into(samples, out),
        }
    }

    /// The encoding of silence (what a receiver hears for nothing).
    pub fn silence_byte(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0xFF,
            AudioCodec::Pcma => 0xD5,
        }
    }
}
