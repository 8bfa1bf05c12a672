//! Identifiers for tags, branches and Call-IDs from a seeded generator.
//!
//! The core takes its seed from the IO shell (which reads the OS's randomness) so that tests
//! can fix it and replay a run exactly. SplitMix64: tiny, fast and well distributed; these
//! identifiers must be unique, not secret (nonces for digest authentication are keyed by a
//! separate secret, see [`crate::auth`]).

#[derive(Debug, Clone)]
pub struct IdGenerator {
    state: u64,
}

impl IdGenerator {
    pub fn new(seed: u64) -> IdGenerator {
        IdGenerator { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random token of 16 hex digits.
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&mut self) -> String {
        format!("{}{}", crate::message::MAGIC_COOKIE, self.token())
    }
}
