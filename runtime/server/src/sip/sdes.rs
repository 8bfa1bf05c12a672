//! SDES (RFC 4568): which of an offer's `a=crypto` lines sma answers, with what key.
//!
//! The best suite both sides support wins ([`Suite::ALL`] order); the answer carries the
//! chosen line's tag with a fresh key of our own (never the offerer's, RFC 4568 §6.1). A new
//! offer in the same dialog (re-INVITE) that keeps the far end's key keeps ours too, so media
//! does not restart for a hold.

use crate::call::actor::SrtpKeys;
use sma_media::srtp::{CryptoAttribute, MasterKey, Suite};
use sma_sip::sdp::{Crypto, SessionDescription};

/// Our answer's crypto line and the leg's keys.
pub struct Answered {
    pub line: Crypto,
    pub keys: SrtpKeys,
}

/// Picks the crypto line to answer in `offer`'s first SRTP audio stream. `Ok(None)`: the
/// offer is not SRTP. `Err`: it is, and no line can be used (each line's reason given).
pub fn answer(
    offer: &SessionDescription,
    previous: Option<&SrtpKeys>,
) -> Result<Option<Answered>, String> {
    let Some(m) = offer.media.iter().find(|m| {
        m.media == "audio" && m.port != 0 && (m.protocol == "RTP/SAVP" || m.protocol == "RTP/SAVPF")
    }) else {
        return Ok(None);
    };
    let mut reasons = Vec::new();
    let mut best: Option<CryptoAttribute> = None;
    for value in m.attributes_named("crypto") {
        match CryptoAttribute::parse(value) {
            Ok(line) => {
                let rank = |s: Suite| Suite::ALL.iter().position(|x| *x == s);
                if best
                    .as_ref()
                    .is_none_or(|b| rank(line.key.suite()) < rank(b.key.suite()))
                {
                    best = Some(line);
                }
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    let Some(chosen) = best else {
        return Err(if reasons.is_empty() {
            "the SRTP offer has no a=crypto line (SDES is the only keying supported)".to_owned()
        } else {
            format!("no usable a=crypto line: {}", reasons.join("; "))
        });
    };
    let suite = chosen.key.suite();
    let ours = match previous {
        Some(keys) if keys.theirs == chosen.key => keys.ours.clone(),
        _ => MasterKey::generate(suite).map_err(|e| format!("no key for {suite}: {e}"))?,
    };
    Ok(Some(Answered {
        line: Crypto::inline(chosen.tag, suite.name(), &ours.inline()),
        keys: SrtpKeys {
            ours,
            theirs: chosen.key,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(lines: &[String], protocol: &str) -> SessionDescription {
        let mut sdp = format!(
            "v=0\r\no=pbx 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 {protocol} 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        for l in lines {
            sdp.push_str(&format!("a=crypto:{l}\r\n"));
        }
        SessionDescription::parse(sdp.as_bytes()).unwrap()
    }

    fn line(tag: u32, suite: Suite) -> String {
        CryptoAttribute {
            tag,
            key: MasterKey::generate(suite).unwrap(),
        }
        .to_value()
    }

    #[test]
    fn the_best_suite_is_answered_with_a_key_of_our_own() {
        // The seed's order: GCM first, the 128-bit counter mode suites last.
        let lines = vec![
            line(1, Suite::AesCm128HmacSha1_80),
            "2 AEAD_AES_256_GCM_8 inline:AAAA".to_owned(),
            line(3, Suite::AeadAes256Gcm),
            line(4, Suite::AesCm256HmacSha1_32),
        ];
        let chosen = answer(&offer(&lines, "RTP/SAVP"), None).unwrap().unwrap();
        assert_eq!(chosen.line.tag, 3);
        assert_eq!(chosen.line.suite, "AEAD_AES_256_GCM");
        assert_eq!(chosen.keys.ours.suite(), Suite::AeadAes256Gcm);
        assert_ne!(
            chosen.keys.ours, chosen.keys.theirs,
            "never the offerer's key"
        );
        assert!(!lines[2].contains(&chosen.keys.ours.inline()));
        // The same offer again (a re-INVITE) keeps our key; a new far-end key gets a new one.
        let again = answer(&offer(&lines, "RTP/SAVP"), Some(&chosen.keys))
            .unwrap()
            .unwrap();
        assert_eq!(again.keys.ours, chosen.keys.ours);
        let rekeyed = answer(
            &offer(&[line(3, Suite::AeadAes256Gcm)], "RTP/SAVP"),
            Some(&chosen.keys),
        )
        .unwrap()
        .unwrap();
        assert_ne!(rekeyed.keys.ours, chosen.keys.ours);
    }

    #[test]
    fn an_srtp_offer_with_nothing_usable_is_refused_with_each_reason() {
        let why = answer(
            &offer(
                &[
                    "1 F8_128_HMAC_SHA1_80 inline:AAAA".to_owned(),
                    format!("{}|2^20|1:4", line(2, Suite::AesCm128HmacSha1_80)),
                ],
                "RTP/SAVP",
            ),
            None,
        )
        .err()
        .unwrap();
        assert!(
            why.contains("F8_128_HMAC_SHA1_80") && why.contains("MKI"),
            "{why}"
        );
        assert!(answer(&offer(&[], "RTP/SAVP"), None).is_err());
        assert!(answer(
            &offer(&[line(1, Suite::AesCm128HmacSha1_80)], "RTP/AVP"),
            None
        )
        .unwrap()
        .is_none());
    }
}
