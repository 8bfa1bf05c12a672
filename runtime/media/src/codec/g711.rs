//! G.711 (ITU-T, 1988): µ-law (PCMU) and A-law (PCMA), 8 kHz, one byte per sample.
//!
//! Decoding is a 256-entry table per law, computed at compile time from the standard's
//! segment/step structure; encoding follows the same structure directly (a handful of integer
//! operations, no 64 K table to pollute the cache). The tests check the tables against values
//! from G.711's Tables 1 and 2 and prove encode∘decode is the identity on every code.

/// Decoded PCM16 value of every µ-law code.
pub static ULAW_TO_PCM: [i16; 256] = ulaw_table();
/// Decoded PCM16 value of every A-law code.
pub static ALAW_TO_PCM: [i16; 256] = alaw_table();

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // A-law's sign bit is 1 for positive values.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn ulaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
}

const fn alaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
}

/// The segment (exponent) of a biased magnitude in 132..=32767: the position of its highest
/// set bit, minus 7.
#[inline]
fn segment(biased: i32) -> u8 {
    let highest = 31 - biased.max(1).leading_zeros() as i32;
    (highest - 7).clamp(0, 7) as u8
}

/// Encodes one PCM16 sample as µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign: u8 = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(ULAW_CLIP) + ULAW_BIAS;
    let exponent = segment(s);
    let mantissa = ((s >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// Encodes one PCM16 sample as A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, magnitude): (u8, i32) = if s >= 0 { (0x80, s) } else { (0, -s - 1) };
    let magnitude = magnitude.min(0x7FFF);
    let code = if magnitude < 256 {
        (magnitude >> 4) as u8
    } else {
        let exponent = (32 - (magnitude >> 8).leading_zeros()) as u8; // 1..=7
        let mantissa = ((magnitude >> (exponent + 3)) & 0x0F) as u8;
        (exponent << 4) | mantissa
    };
    (sign | code) ^ 0x55
}

/// Decodes µ-law bytes, appending PCM16 samples.
pub fn ulaw_decode_into(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|c| ULAW_TO_PCM[usize::from(*c)]));
}

/// Decodes A-law bytes, appending PCM16 samples.
pub fn alaw_decode_into(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|c| ALAW_TO_PCM[usize::from(*c)]));
}

/// Encodes PCM16 samples as µ-law, appending bytes.
pub fn ulaw_encode_into(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|s| ulaw_encode(*s)));
}

/// Encodes PCM16 samples as A-law, appending bytes.
pub fn alaw_encode_into(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|s| alaw_encode(*s)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference points from G.711 Table 2a (µ-law) and Table 1a (A-law), in the 16-bit
    /// scaling used by RTP payloads (the standard's 14-bit and 13-bit values shifted left by
    /// 2 and 3 bits). Character signals (codes as transmitted, even bits inverted for A-law).
    #[test]
    fn decode_tables_match_g711_reference_values() {
        // µ-law: code -> decoded value.
        for (code, value) in [
            (0xFFu8, 0i16), // +0
            (0x7F, 0),      // -0
            (0xFE, 8),      // first step of segment 0
            (0xF0, 120),    // end of segment 0
            (0xEF, 132),    // start of segment 1
            (0x80, 32_124), // largest positive
            (0x00, -32_124),
            (0xDF, 396),
            (0xBF, 1_980), // segment 4 start (14-bit 495)
            (0x9F, 8_316), // segment 6 start (14-bit 2079)
        ] {
            assert_eq!(ULAW_TO_PCM[code as usize], value, "µ-law {code:#04x}");
        }
        // A-law.
        for (code, value) in [
            (0xD5u8, 8i16),
            (0x55, -8),
            (0xD4, 24),
            (0xDA, 248),    // end of segment 0/1 (linear part)
            (0xC5, 264),    // second segment start (13-bit 33)
            (0xAA, 32_256), // largest positive
            (0x2A, -32_256),
            (0xF5, 528),
            (0xE5, 1_056),
        ] {
            assert_eq!(ALAW_TO_PCM[code as usize], value, "A-law {code:#04x}");
        }
    }

    #[test]
    fn encoding_a_decoded_value_gives_its_code_back() {
        for code in 0..=255u8 {
            let v = ULAW_TO_PCM[code as usize];
            let back = ulaw_encode(v);
            // µ-law has two codes for zero (+0 0xFF, -0 0x7F); both decode to 0.
            if v == 0 {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "µ-law {code:#04x} -> {v}");
            }
            let v = ALAW_TO_PCM[code as usize];
            assert_eq!(alaw_encode(v), code, "A-law {code:#04x} -> {v}");
        }
    }

    #[test]
    fn quantization_error_stays_within_half_a_step() {
        for s in i16::MIN..=i16::MAX {
            let u = i32::from(ULAW_TO_PCM[ulaw_encode(s) as usize]);
            let clipped = i32::from(s).clamp(-ULAW_CLIP, ULAW_CLIP);
            let seg = i32::from(segment(clipped.abs() + ULAW_BIAS));
            let half_step = 4 << seg; // step 8 << seg in the 16-bit scale
            assert!((u - clipped).abs() <= half_step + 4, "µ-law {s} -> {u}");
            let a = i32::from(ALAW_TO_PCM[alaw_encode(s) as usize]);
            let mag = i32::from(s).abs().min(32_767);
            let step = if mag < 512 {
                16
            } else {
                16 << (31 - mag.leading_zeros() as i32 - 8)
            };
            assert!((a - i32::from(s)).abs() <= step, "A-law {s} -> {a}");
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut last_u = i16::MIN;
        let mut last_a = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let u = ULAW_TO_PCM[ulaw_encode(s) as usize];
            let a = ALAW_TO_PCM[alaw_encode(s) as usize];
            assert!(u >= last_u && a >= last_a, "at {s}");
            last_u = u;
            last_a = a;
        }
    }
}
