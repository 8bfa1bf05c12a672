//! Offer/answer (RFC 3264): choosing one audio codec, telephone-event (RFC 4733), ptime and
//! direction, and rejecting what cannot be used with port 0.

use super::{Connection, Direction, MediaDescription, Origin, SessionDescription};
use std::net::{IpAddr, SocketAddr};

/// The audio codecs the media engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl Codec {
    /// RFC 3551 static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate (G.722's is 8000 by RFC 3551's historical error).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 8_000,
        }
    }

    pub fn channels(self) -> Option<u8> {
        match self {
            Codec::Opus => Some(2),
            _ => None,
        }
    }

    /// The payload type this side offers for a dynamic codec.
    pub fn offered_payload_type(self) -> u8 {
        self.static_payload_type().unwrap_or(111)
    }

    fn matches(self, encoding: &str, clock_rate: u32, channels: Option<u8>) -> bool {
        encoding.eq_ignore_ascii_case(self.encoding())
            && clock_rate == self.clock_rate()
            && match self {
                Codec::Opus => channels == Some(2),
                _ => channels.is_none_or(|c| c == 1),
            }
    }

    pub fn parse(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus]
            .into_iter()
            .find(|c| c.encoding().eq_ignore_ascii_case(name))
    }
}

/// What this side can do: its media address, port and codec preference.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    /// Most preferred first.
    pub codecs: Vec<Codec>,
    pub telephone_event: bool,
    /// Packetization in ms.
    pub ptime: u32,
    pub direction: Direction,
    /// SRTP: our `a=crypto` lines (SDES, RFC 4568). In an offer, one per suite offered, and
    /// the stream is `RTP/SAVP`; in an answer, the one line answering the offer's chosen
    /// line (same tag, our own key), used only when the offer is `RTP/SAVP`. Empty: no SRTP.
    pub crypto: Vec<super::Crypto>,
    /// Refuse an offer in the clear (`RTP/AVP`): a voice connector with encryption on.
    pub require_srtp: bool,
}

/// The codec both sides agreed on, with the payload type the offerer chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedCodec {
    pub codec: Codec,
    pub payload_type: u8,
}

/// The outcome of offer/answer for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where to send RTP.
    pub remote: SocketAddr,
    pub codec: NegotiatedCodec,
    /// RFC 4733 payload type, at the codec's clock rate.
    pub telephone_event: Option<u8>,
    pub ptime: u32,
    /// This side's direction.
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// The stream is SRTP (`RTP/SAVP`): the keys are ours in [`LocalMedia::crypto`] and the
    /// peer's in `remote_crypto`.
    pub secure: bool,
    pub remote_crypto: Vec<super::Crypto>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no audio stream in the offer")]
    NoAudio,
    #[error("no common codec: offered {offered}")]
    NoCommonCodec { offered: String },
    #[error("the offer has no connection address for its audio stream")]
    NoConnection,
    #[error("the answer does not match the offer: {0}")]
    AnswerMismatch(String),
    #[error("the offer is not encrypted (RTP/AVP) and this call requires SRTP")]
    EncryptionRequired,
    #[error("the offer is SRTP (RTP/SAVP) with no crypto suite this side accepts")]
    NoCryptoSuite,
}

fn is_secure(protocol: &str) -> bool {
    protocol == "RTP/SAVP" || protocol == "RTP/SAVPF"
}

fn is_plain(protocol: &str) -> bool {
    protocol == "RTP/AVP" || protocol == "RTP/AVPF"
}

/// This side's session identity: the `o=` line, whose version grows with each new description
/// (RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct SdpSession {
    pub id: u64,
    pub version: u64,
    pub username: String,
}

impl SdpSession {
    pub fn new(id: u64) -> SdpSession {
        SdpSession {
            id,
            version: id,
            username: "sma".into(),
        }
    }

    fn origin(&mut self, address: IpAddr) -> Origin {
        self.version += 1;
        Origin {
            username: self.username.clone(),
            session_id: self.id.to_string(),
            session_version: self.version,
            address: address.to_string(),
        }
    }

    /// An offer with every configured codec, most preferred first.
    pub fn offer(&mut self, local: &LocalMedia) -> SessionDescription {
        let mut m = MediaDescription::audio(local.port);
        let mut te_rates = Vec::new();
        for codec in &local.codecs {
            let pt = codec.offered_payload_type();
            m.formats.push(pt.to_string());
            m.attributes
                .push(("rtpmap".into(), Some(rtpmap_value(*codec, pt))));
            if *codec == Codec::Opus {
                m.attributes
                    .push(("fmtp".into(), Some(format!("{pt} useinbandfec=1"))));
            }
            if !te_rates.contains(&codec.clock_rate()) {
                te_rates.push(codec.clock_rate());
            }
        }
        if local.telephone_event {
            for rate in te_rates {
                let pt = if rate == 8000 { 101 } else { 110 };
                m.formats.push(pt.to_string());
                m.attributes.push((
                    "rtpmap".into(),
                    Some(format!("{pt} telephone-event/{rate}")),
                ));
                m.attributes
                    .push(("fmtp".into(), Some(format!("{pt} 0-16"))));
            }
        }
        m.attributes
            .push(("ptime".into(), Some(local.ptime.to_string())));
        m.attributes.push((local.direction.as_str().into(), None));
        if !local.crypto.is_empty() {
            // Required: RTP/SAVP. Otherwise best-effort SRTP: RTP/AVP with the keys, which
            // an SDES-capable answerer takes and any other ignores.
            if local.require_srtp {
                m.protocol = "RTP/SAVP".into();
            }
            for crypto in &local.crypto {
                m.attributes.push(("crypto".into(), Some(crypto.value())));
            }
        }
        self.description(local.address, vec![m])
    }

    fn description(&mut self, address: IpAddr, media: Vec<MediaDescription>) -> SessionDescription {
        SessionDescription {
            origin: self.origin(address),
            session_name: "sma".into(),
            connection: Some(Connection { address }),
            timing: (0, 0),
            attributes: Vec::new(),
            other: Vec::new(),
            media,
        }
    }

    /// Answers an offer (RFC 3264 §6): one audio stream accepted with this side's most
    /// preferred common codec, every other stream rejected with port 0, in the offer's order.
    pub fn answer(
        &mut self,
        offer: &SessionDescription,
        local: &LocalMedia,
    ) -> Result<(SessionDescription, NegotiatedMedia), NegotiationError> {
        let mut chosen: Option<(usize, NegotiatedMedia)> = None;
        let mut offered_names = Vec::new();
        let mut saw_audio = false;
        let mut refused = None;
        for (index, m) in offer.media.iter().enumerate() {
            if chosen.is_some() || m.media != "audio" || m.port == 0 {
                continue;
            }
            saw_audio = true;
            // Best-effort SRTP: an RTP/AVP offer with a=crypto lines, answered with ours.
            let secure = is_secure(&m.protocol)
                || (!local.crypto.is_empty() && m.attributes_named("crypto").next().is_some());
            if !is_secure(&m.protocol) && !is_plain(&m.protocol) {
                offered_names.push(format!("{} ({})", m.formats.join(" "), m.protocol));
                continue;
            }
            if is_secure(&m.protocol) && local.crypto.is_empty() {
                refused = Some(NegotiationError::NoCryptoSuite);
                continue;
            }
            if !secure && local.require_srtp {
                refused = Some(NegotiationError::EncryptionRequired);
                continue;
            }
            let offered: Vec<(u8, super::RtpMap)> = m
                .payload_types()
                .filter_map(|pt| m.rtpmap(pt).map(|map| (pt, map)))
                .collect();
            offered_names.extend(
                offered
                    .iter()
                    .map(|(_, map)| format!("{}/{}", map.encoding, map.clock_rate)),
            );
            let Some(codec) = local.codecs.iter().find_map(|codec| {
                offered
                    .iter()
                    .find(|(_, map)| codec.matches(&map.encoding, map.clock_rate, map.channels))
                    .map(|(pt, _)| NegotiatedCodec {
                        codec: *codec,
                        payload_type: *pt,
                    })
            }) else {
                continue;
            };
            let telephone_event = local
                .telephone_event
                .then(|| {
                    offered.iter().find(|(_, map)| {
                        map.encoding.eq_ignore_ascii_case("telephone-event")
                            && map.clock_rate == codec.codec.clock_rate()
                    })
                })
                .flatten()
                .map(|(pt, _)| *pt);
            let address = offer
                .media_address(m)
                .ok_or(NegotiationError::NoConnection)?;
            let offered_direction = m
                .direction()
                .or_else(|| {
                    offer
                        .attributes
                        .iter()
                        .find_map(|(n, _)| super::Direction::from_attr(n))
                })
                .unwrap_or_default();
            let direction = combine(offered_direction.reverse(), local.direction);
            // A hold offer with connection address 0.0.0.0 (RFC 2543 style) means inactive.
            let direction = if address.is_unspecified() {
                Direction::Inactive
            } else {
                direction
            };
            chosen = Some((
                index,
                NegotiatedMedia {
                    remote: SocketAddr::new(address, m.port),
                    codec,
                    telephone_event,
                    ptime: m.ptime().unwrap_or(local.ptime),
                    direction,
                    rtcp_mux: m.rtcp_mux(),
                    secure,
                    remote_crypto: m.crypto(),
                },
            ));
        }
        let Some((chosen_index, negotiated)) = chosen else {
            if let Some(why) = refused {
                return Err(why);
            }
            return Err(if saw_audio {
                NegotiationError::NoCommonCodec {
                    offered: offered_names.join(", "),
                }
            } else {
                NegotiationError::NoAudio
            });
        };
        let media = offer
            .media
            .iter()
            .enumerate()
            .map(|(index, m)| {
                if index == chosen_index {
                    answer_media(local, &negotiated, m)
                } else {
                    MediaDescription {
                        media: m.media.clone(),
                        port: 0,
                        protocol: m.protocol.clone(),
                        formats: m.formats.clone(),
                        connection: None,
                        attributes: Vec::new(),
                        other: Vec::new(),
                    }
                }
            })
            .collect();
        Ok((self.description(local.address, media), negotiated))
    }

    /// A fresh description of an already negotiated stream (re-INVITE answers, hold/resume):
    /// same codec and payload types, a new direction.
    pub fn describe(
        &mut self,
        local: &LocalMedia,
        negotiated: &NegotiatedMedia,
    ) -> SessionDescription {
        let mut offered = MediaDescription::audio(local.port);
        if negotiated.secure {
            offered.protocol = "RTP/SAVP".into();
        }
        let m = answer_media(local, negotiated, &offered);
        self.description(local.address, vec![m])
    }
}

/// Reads the answer to an offer this side made.
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
    local: &LocalMedia,
) -> Result<NegotiatedMedia, NegotiationError> {
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::AnswerMismatch(format!(
            "{} media sections answered for {} offered",
            answer.media.len(),
            offer.media.len()
        )));
    }
    let (m, offered) = answer
        .media
        .iter()
        .zip(&offer.media)
        .find(|(m, _)| m.media == "audio" && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let codec = m
        .payload_types()
        .find_map(|pt| {
            let map = m.rtpmap(pt).or_else(|| offered.rtpmap(pt))?;
            local
                .codecs
                .iter()
                .find(|c| c.matches(&map.encoding, map.clock_rate, map.channels))
                .map(|c| NegotiatedCodec {
                    codec: *c,
                    payload_type: pt,
                })
        })
        .ok_or_else(|| NegotiationError::NoCommonCodec {
            offered: m.formats.join(" "),
        })?;
    let telephone_event = m.payload_types().find(|pt| {
        m.rtpmap(*pt).is_some_and(|map| {
            map.encoding.eq_ignore_ascii_case("telephone-event")
                && map.clock_rate == codec.codec.clock_rate()
        })
    });
    let address = answer
        .media_address(m)
        .ok_or(NegotiationError::NoConnection)?;
    let direction = combine(m.direction().unwrap_or_default().reverse(), local.direction);
    let secure = !local.crypto.is_empty()
        && (is_secure(&m.protocol) || m.attributes_named("crypto").next().is_some());
    if !secure && local.require_srtp {
        return Err(NegotiationError::EncryptionRequired);
    }
    Ok(NegotiatedMedia {
        remote: SocketAddr::new(address, m.port),
        codec,
        telephone_event,
        ptime: m.ptime().unwrap_or(local.ptime),
        direction,
        rtcp_mux: m.rtcp_mux(),
        secure,
        remote_crypto: m.crypto(),
    })
}

/// The most this side may do given what the peer allows and what it wants.
fn combine(allowed: Direction, wanted: Direction) -> Direction {
    let send = allowed.sends() && wanted.sends();
    let recv = allowed.receives() && wanted.receives();
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn rtpmap_value(codec: Codec, pt: u8) -> String {
    match codec.channels() {
        Some(ch) => format!("{pt} {}/{}/{ch}", codec.encoding(), codec.clock_rate()),
        None => format!("{pt} {}/{}", codec.encoding(), codec.clock_rate()),
    }
}

fn answer_media(
    local: &LocalMedia,
    negotiated: &NegotiatedMedia,
    offered: &MediaDescription,
) -> MediaDescription {
    let pt = negotiated.codec.payload_type;
    let protocol = if negotiated.secure {
        if is_secure(&offered.protocol) {
            offered.protocol.clone()
        } else {
            "RTP/SAVP".to_owned()
        }
    } else if is_plain(&offered.protocol) {
        offered.protocol.clone()
    } else {
        "RTP/AVP".to_owned()
    };
    let mut m = MediaDescription {
        media: "audio".into(),
        port: local.port,
        protocol,
        formats: vec![pt.to_string()],
        connection: None,
        attributes: vec![(
            "rtpmap".into(),
            Some(rtpmap_value(negotiated.codec.codec, pt)),
        )],
        other: Vec::new(),
    };
    if let Some(fmtp) = offered.fmtp(pt) {
        m.attributes
            .push(("fmtp".into(), Some(format!("{pt} {fmtp}"))));
    }
    if let Some(te) = negotiated.telephone_event {
        m.formats.push(te.to_string());
        m.attributes.push((
            "rtpmap".into(),
            Some(format!(
                "{te} telephone-event/{}",
                negotiated.codec.codec.clock_rate()
            )),
        ));
        let events = offered.fmtp(te).unwrap_or("0-16");
        m.attributes
            .push(("fmtp".into(), Some(format!("{te} {events}"))));
    }
    m.attributes
        .push(("ptime".into(), Some(negotiated.ptime.to_string())));
    if negotiated.rtcp_mux {
        m.attributes.push(("rtcp-mux".into(), None));
    }
    m.attributes
        .push((negotiated.direction.as_str().into(), None));
    if negotiated.secure {
        for crypto in local.crypto.iter().take(1) {
            m.attributes.push(("crypto".into(), Some(crypto.value())));
        }
    }
    m
}

impl SdpSession {
    /// Reads the answer to an offer this side made (see [`accept_answer`]).
    pub fn accept_answer(
        &self,
        offer: &SessionDescription,
        answer: &SessionDescription,
        local: &LocalMedia,
    ) -> Result<NegotiatedMedia, NegotiationError> {
        accept_answer(offer, answer, local)
    }
}
