//! Any bytes into SRTP and SRTCP unprotect, for every suite: refused or accepted, never a
//! panic. The first byte picks the suite; a context that protected a few packets first has
//! state (rollover counter, replay window) for the input to run into.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sma_srtp::{Context, Direction, MasterKey, Suite};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(pick) % Suite::ALL.len()];
    let material: Vec<u8> = (0..suite.key_len() + suite.salt_len())
        .map(|i| i as u8)
        .collect();
    let Ok(key) = MasterKey::new(suite, &material) else {
        return;
    };
    let mut tx = Context::new(&key, Direction::Outbound);
    let mut rx = Context::new(&key, Direction::Inbound);
    for seq in [65_534u16, 65_535, 0] {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        if tx.protect_rtp(&mut p).is_ok() {
            let _ = rx.unprotect_rtp(&mut p);
        }
    }
    let mut rtp = packet.to_vec();
    if let Ok(n) = rx.unprotect_rtp(&mut rtp) {
        assert!(n <= packet.len());
    }
    let mut rtcp = packet.to_vec();
    if let Ok(n) = rx.unprotect_rtcp(&mut rtcp) {
        assert!(n <= packet.len());
    }
    // Protect takes whatever the engine hands it, too.
    let mut out = packet.to_vec();
    if tx.protect_rtp(&mut out).is_ok() {
        assert_eq!(out.len(), packet.len() + suite.rtp_overhead());
    }
    let mut out = packet.to_vec();
    let _ = tx.protect_rtcp(&mut out);
});
