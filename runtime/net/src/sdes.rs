//! SDES (RFC 4568) between SDP and SRTP, for the server and the QA tool alike: the crypto
//! lines an offer carries, which line of an offer is answered with what key, and the keys an
//! answer to our offer settles.
//!
//! The best suite both sides support wins ([`Suite::ALL`] order, among the suites this side
//! allows); the answer carries the chosen line's tag with a fresh key of our own (never the
//! offerer's, RFC 4568 §6.1). A new offer in the same dialog (re-INVITE) that keeps the far
//! end's key keeps ours too, so media does not restart for a hold.

use sma_media::srtp::{CryptoAttribute, MasterKey, Suite};
use sma_sip::sdp::{Crypto, SessionDescription};

/// A leg's SRTP keys: ours protects what we send, the far end's unprotects what it sends.
/// Never logged (`MasterKey`'s `Debug` hides the key) and zeroised when dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct SrtpKeys {
    pub ours: MasterKey,
    pub theirs: MasterKey,
}

/// Our offer's crypto lines (one per suite, tags from 1) and the key behind each.
#[derive(Debug, Clone)]
pub struct Offered {
    pub lines: Vec<Crypto>,
    keys: Vec<(u32, MasterKey)>,
}

/// Crypto lines offering `suites`, most preferred first, each with a fresh key.
pub fn offer(suites: &[Suite]) -> Result<Offered, String> {
    let mut lines = Vec::new();
    let mut keys = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        let tag = i as u32 + 1;
        let key = MasterKey::generate(*suite).map_err(|e| format!("no key for {suite}: {e}"))?;
        lines.push(Crypto::inline(tag, suite.name(), &key.inline()));
        keys.push((tag, key));
    }
    Ok(Offered { lines, keys })
}

/// The keys the answer to our offer settles: its one crypto line names the tag of ours it
/// took, with the answerer's key in the same suite.
pub fn accept(offered: &Offered, answer: &[Crypto]) -> Result<SrtpKeys, String> {
    let line = answer
        .first()
        .ok_or("the SRTP answer has no a=crypto line")?;
    let theirs =
        CryptoAttribute::parse(&line.value()).map_err(|e| format!("the answer's a=crypto: {e}"))?;
    let (_, ours) = offered
        .keys
        .iter()
        .find(|(tag, _)| *tag == theirs.tag)
        .ok_or_else(|| format!("the answer's a=crypto tag {} was not offered", theirs.tag))?;
    if ours.suite() != theirs.key.suite() {
        return Err(format!(
            "the answer changed tag {}'s suite from {} to {}",
            theirs.tag,
            ours.suite(),
            theirs.key.suite()
        ));
    }
    Ok(SrtpKeys {
        ours: ours.clone(),
        theirs: theirs.key,
    })
}

/// Our answer's crypto line and the leg's keys.
pub struct Answered {
    pub line: Crypto,
    pub keys: SrtpKeys,
}

/// Picks the crypto line to answer in `offer`'s first SRTP audio stream. `Ok(None)`: the
/// offer is not SRTP (or offers it best-effort, `RTP/AVP` with `a=crypto`, and no line is
/// usable: answered in the clear). `Err`: it is `RTP/SAVP` and no line can be used (each
/// line's reason given).
pub fn answer(
    offer: &SessionDescription,
    previous: Option<&SrtpKeys>,
    allowed: &[Suite],
) -> Result<Option<Answered>, String> {
    let Some(m) = offer
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)
    else {
        return Ok(None);
    };
    let required = m.protocol == "RTP/SAVP" || m.protocol == "RTP/SAVPF";
    if !required && m.attributes_named("crypto").next().is_none() {
        return Ok(None);
    }
    let mut reasons = Vec::new();
    let mut best: Option<CryptoAttribute> = None;
    for value in m.attributes_named("crypto") {
        match CryptoAttribute::parse(value) {
            Ok(line) if !allowed.contains(&line.key.suite()) => {
                reasons.push(format!("{} is not allowed here", line.key.suite()));
            }
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
        if !required {
            return Ok(None);
        }
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

    fn sdp_offer(lines: &[String], protocol: &str) -> SessionDescription {
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
        let chosen = answer(&sdp_offer(&lines, "RTP/SAVP"), None, &Suite::ALL)
            .unwrap()
            .unwrap();
        assert_eq!(chosen.line.tag, 3);
        assert_eq!(chosen.line.suite, "AEAD_AES_256_GCM");
        assert_eq!(chosen.keys.ours.suite(), Suite::AeadAes256Gcm);
        assert_ne!(
            chosen.keys.ours, chosen.keys.theirs,
            "never the offerer's key"
        );
        assert!(!lines[2].contains(&chosen.keys.ours.inline()));
        // The same offer again (a re-INVITE) keeps our key; a new far-end key gets a new one.
        let again = answer(
            &sdp_offer(&lines, "RTP/SAVP"),
            Some(&chosen.keys),
            &Suite::ALL,
        )
        .unwrap()
        .unwrap();
        assert_eq!(again.keys.ours, chosen.keys.ours);
        let rekeyed = answer(
            &sdp_offer(&[line(3, Suite::AeadAes256Gcm)], "RTP/SAVP"),
            Some(&chosen.keys),
            &Suite::ALL,
        )
        .unwrap()
        .unwrap();
        assert_ne!(rekeyed.keys.ours, chosen.keys.ours);
    }

    #[test]
    fn an_srtp_offer_with_nothing_usable_is_refused_with_each_reason() {
        let why = answer(
            &sdp_offer(
                &[
                    "1 F8_128_HMAC_SHA1_80 inline:AAAA".to_owned(),
                    format!("{}|2^20|1:4", line(2, Suite::AesCm128HmacSha1_80)),
                ],
                "RTP/SAVP",
            ),
            None,
            &Suite::ALL,
        )
        .err()
        .unwrap();
        assert!(
            why.contains("F8_128_HMAC_SHA1_80") && why.contains("MKI"),
            "{why}"
        );
        assert!(answer(&sdp_offer(&[], "RTP/SAVP"), None, &Suite::ALL).is_err());
        // Best-effort SRTP (RTP/AVP with a=crypto) is taken when a line is usable, else
        // answered in the clear; RTP/AVP without a=crypto is plain.
        let avp = |lines: &[String]| answer(&sdp_offer(lines, "RTP/AVP"), None, &Suite::ALL);
        assert!(avp(&[line(1, Suite::AesCm128HmacSha1_80)])
            .unwrap()
            .is_some());
        assert!(avp(&["1 F8_128_HMAC_SHA1_80 inline:AAAA".to_owned()])
            .unwrap()
            .is_none());
        assert!(avp(&[]).unwrap().is_none());
        // A suite the operator turned off is refused like an unknown one.
        let why = answer(
            &sdp_offer(&[line(1, Suite::AesCm128HmacSha1_32)], "RTP/SAVP"),
            None,
            &[Suite::AesCm128HmacSha1_80],
        )
        .err()
        .unwrap();
        assert!(
            why.contains("AES_CM_128_HMAC_SHA1_32 is not allowed"),
            "{why}"
        );
    }

    #[test]
    fn an_answer_to_our_offer_settles_the_keys_of_the_tag_it_took() {
        let offered = super::offer(&[Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80]).unwrap();
        assert_eq!(offered.lines.len(), 2);
        assert_eq!(offered.lines[1].tag, 2);
        let theirs = MasterKey::generate(Suite::AesCm128HmacSha1_80).unwrap();
        let answer = Crypto::inline(2, "AES_CM_128_HMAC_SHA1_80", &theirs.inline());
        let keys = accept(&offered, &[answer]).unwrap();
        assert_eq!(keys.theirs, theirs);
        assert_eq!(keys.ours.suite(), Suite::AesCm128HmacSha1_80);
        let gcm = MasterKey::generate(Suite::AeadAes128Gcm).unwrap();
        let wrong_suite = Crypto::inline(2, "AEAD_AES_128_GCM", &gcm.inline());
        assert!(accept(&offered, &[wrong_suite]).is_err());
        let unknown_tag = Crypto::inline(7, "AES_CM_128_HMAC_SHA1_80", &theirs.inline());
        assert!(accept(&offered, &[unknown_tag]).is_err());
        assert!(accept(&offered, &[]).is_err());
    }
}
