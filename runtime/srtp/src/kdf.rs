//! The AES-CM pseudo-random function that turns a master key into session keys
//! (RFC 3711 §4.3.1 and §4.3.3; RFC 6188 §4 for AES-256; RFC 7714 §11 for GCM's 96-bit salt,
//! which takes part zero-padded to 112 bits, as libsrtp does).

use aes::cipher::{KeyIvInit, StreamCipher};
use aes::{Aes128, Aes256};

/// Session key labels (RFC 3711 §4.3.1 and §4.3.2).
pub(super) const RTP_ENCRYPTION: u8 = 0;
pub(super) const RTP_AUTHENTICATION: u8 = 1;
pub(super) const RTP_SALT: u8 = 2;
pub(super) const RTCP_ENCRYPTION: u8 = 3;
pub(super) const RTCP_AUTHENTICATION: u8 = 4;
pub(super) const RTCP_SALT: u8 = 5;

/// Fills `out` with the session key `label` derives from the master key and salt. The key
/// derivation rate is 0 (keys derived once per session; SDES lines asking for another rate
/// are refused), so the packet index takes no part.
pub(super) fn derive(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
    // x = (label || r) XOR master salt, with r = 0; the counter block is x · 2^16.
    let mut iv = [0u8; 16];
    let salt = &master_salt[..master_salt.len().min(14)];
    iv[..salt.len()].copy_from_slice(salt);
    iv[7] ^= label;
    out.fill(0);
    match master_key.len() {
        16 => ctr::Ctr128BE::<Aes128>::new(master_key.into(), &iv.into()).apply_keystream(out),
        32 => ctr::Ctr128BE::<Aes256>::new(master_key.into(), &iv.into()).apply_keystream(out),
        // Key lengths are checked when a MasterKey is made.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn derived(key: &str, salt: &str, label: u8, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        derive(&hex(key), &hex(salt), label, &mut out);
        out
    }

    #[test]
    fn aes_cm_keystream_matches_rfc_3711_appendix_b2() {
        // With label 0 the counter block is the salt itself: B.2's keystream.
        let ks = derived(
            "2B7E151628AED2A6ABF7158809CF4F3C",
            "F0F1F2F3F4F5F6F7F8F9FAFBFCFD",
            0,
            48,
        );
        assert_eq!(
            ks,
            hex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0")
        );
    }

    #[test]
    fn session_keys_match_rfc_3711_appendix_b3() {
        let (key, salt) = (
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        assert_eq!(
            derived(key, salt, RTP_ENCRYPTION, 16),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            derived(key, salt, RTP_SALT, 14),
            hex("30CBBC08863D8C85D49DB34A9AE1")
        );
        assert_eq!(
            derived(key, salt, RTP_AUTHENTICATION, 20),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    #[test]
    fn aes_256_session_keys_match_rfc_6188() {
        let (key, salt) = (
            "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
            "3b04803de51ee7c96423ab5b78d2",
        );
        assert_eq!(
            derived(key, salt, RTP_ENCRYPTION, 32),
            hex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
        );
        assert_eq!(
            derived(key, salt, RTP_SALT, 14),
            hex("fa31791685ca444a9e07c6c64e93")
        );
        assert_eq!(
            derived(key, salt, RTP_AUTHENTICATION, 20),
            hex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
        );
    }
}
