//! The IO shells of sma around its sans-IO cores: SIP transports over tokio (UDP, TCP, TLS)
//! for the server and the QA tool alike, TLS set-up, and the timer helper of every shell's
//! `select!`.

pub mod sdes;
pub mod time;
pub mod tls;
pub mod transport;

use sma_media::codec::AudioCodec;
use sma_sip::sdp::Codec;

/// The media engine's codec for a negotiated SDP codec.
pub fn audio_codec(codec: Codec) -> AudioCodec {
    match codec {
        Codec::Pcmu => AudioCodec::Pcmu,
        Codec::Pcma => AudioCodec::Pcma,
        Codec::G722 => AudioCodec::G722,
        Codec::Opus => AudioCodec::Opus,
    }
}
