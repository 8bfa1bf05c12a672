//! Throttling of failed digest authentication on voice connectors, per source address and
//! per user name, the way operators set up Kamailio's `pike`/`htable` or fail2ban in front
//! of a PBX: a few free failures, then exponential back-off (requests are refused without
//! checking their credentials, so guessing gets slower and slower), then a temporary block
//! (refused with 403, or for a source, dropped without an answer). A success clears the
//! record. Sans-IO: time comes in as `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a blocked source gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockedAction {
    /// 403, like any other refusal.
    #[default]
    Reject,
    /// Nothing: its requests are dropped before the SIP core sees them.
    Drop,
}

/// The policy (`[sip.auth_guard]` in `sma.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthGuardConfig {
    /// Failures allowed before back-off starts.
    pub free_failures: u32,
    /// The first back-off; each further failure doubles it.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Failures after which the source or user is blocked.
    pub block_after: u32,
    pub block_for: Duration,
    /// A record with no failure for this long is forgotten.
    pub forget_after: Duration,
    pub blocked: BlockedAction,
}

impl Default for AuthGuardConfig {
    fn default() -> AuthGuardConfig {
        AuthGuardConfig {
            free_failures: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            block_after: 10,
            block_for: Duration::from_secs(300),
            forget_after: Duration::from_secs(600),
            blocked: BlockedAction::Reject,
        }
    }
}

/// Whether a request may try its credentials now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// In back-off after repeated failures, until then.
    Throttled {
        until: Instant,
    },
    /// Blocked after too many failures, until then.
    Blocked {
        until: Instant,
    },
}

/// Counters for operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthGuardStats {
    pub failures: u64,
    pub throttled: u64,
    pub blocked: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
    blocked: bool,
    /// Order of the last failure, to forget the oldest first under a flood.
    seq: u64,
}

/// Most records kept per kind: a flood from many addresses cannot grow memory without bound
/// (the oldest records are forgotten first).
const MAX_RECORDS: usize = 65_536;

/// Failed-authentication records by source and by (connector, user name).
#[derive(Debug, Default)]
pub struct AuthGuard {
    config: AuthGuardConfig,
    sources: HashMap<IpAddr, Record>,
    users: HashMap<(String, String), Record>,
    seq: u64,
    pub stats: AuthGuardStats,
}

impl AuthGuard {
    pub fn new(config: AuthGuardConfig) -> AuthGuard {
        AuthGuard {
            config,
            ..AuthGuard::default()
        }
    }

    fn verdict(record: Option<&Record>, now: Instant) -> Verdict {
        match record.and_then(|r| r.locked_until.map(|u| (u, r.blocked))) {
            Some((until, true)) if now < until => Verdict::Blocked { until },
            Some((until, false)) if now < until => Verdict::Throttled { until },
            _ => Verdict::Allow,
        }
    }

    /// Whether `source` may try credentials (and `user` on `connector`, when it names one).
    /// The stricter of the two verdicts wins.
    pub fn check(&mut self, source: IpAddr, user: Option<(&str, &str)>, now: Instant) -> Verdict {
        let by_source = Self::verdict(self.sources.get(&source), now);
        let by_user = user
            .map(|(c, u)| Self::verdict(self.users.get(&(c.to_owned(), u.to_owned())), now))
            .unwrap_or(Verdict::Allow);
        let verdict = match (by_source, by_user) {
            (b @ Verdict::Blocked { .. }, _) | (_, b @ Verdict::Blocked { .. }) => b,
            (t @ Verdict::Throttled { .. }, _) | (_, t @ Verdict::Throttled { .. }) => t,
            _ => Verdict::Allow,
        };
        match verdict {
            Verdict::Blocked { .. } => self.stats.blocked += 1,
            Verdict::Throttled { .. } => self.stats.throttled += 1,
            Verdict::Allow => {}
        }
        verdict
    }

    /// Whether requests from `source` are dropped unanswered (blocked, and the policy says
    /// drop). Checked before a request is parsed.
    pub fn drops(&mut self, source: IpAddr, now: Instant) -> bool {
        let drop = self.config.blocked == BlockedAction::Drop
            && matches!(
                Self::verdict(self.sources.get(&source), now),
                Verdict::Blocked { .. }
            );
        if drop {
            self.stats.dropped += 1;
        }
        drop
    }

    /// A failed attempt: counts for the source and the user; returns the source's failures.
    pub fn failed(&mut self, source: IpAddr, user: Option<(&str, &str)>, now: Instant) -> u32 {
        self.stats.failures += 1;
        let config = self.config.clone();
        self.seq += 1;
        let failures = fail(&mut self.sources, source, &config, now, self.seq);
        if let Some((c, u)) = user {
            fail(
                &mut self.users,
                (c.to_owned(), u.to_owned()),
                &config,
                now,
                self.seq,
            );
        }
        forget(&mut self.sources, &config, now);
        forget(&mut self.users, &config, now);
        failures
    }

    /// A success clears the source's and the user's records.
    pub fn succeeded(&mut self, source: IpAddr, user: (&str, &str)) {
        self.sources.remove(&source);
        self.users.remove(&(user.0.to_owned(), user.1.to_owned()));
    }

    /// Records held (for the bounded-memory test).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sources.len() + self.users.len()
    }
}

fn fail<K: std::hash::Hash + Eq>(
    records: &mut HashMap<K, Record>,
    key: K,
    config: &AuthGuardConfig,
    now: Instant,
    seq: u64,
) -> u32 {
    let fresh = Record {
        failures: 0,
        last: now,
        locked_until: None,
        blocked: false,
        seq,
    };
    let record = records.entry(key).or_insert(fresh);
    if now.saturating_duration_since(record.last) > config.forget_after {
        *record = fresh;
    }
    record.failures += 1;
    record.last = now;
    record.seq = seq;
    if record.failures >= config.block_after {
        record.blocked = true;
        record.locked_until = Some(now + config.block_for);
    } else if record.failures > config.free_failures {
        let doublings = (record.failures - config.free_failures - 1).min(16);
        let backoff = config
            .backoff
            .saturating_mul(1 << doublings)
            .min(config.max_backoff);
        record.locked_until = Some(now + backoff);
    }
    record.failures
}

fn forget<K: std::hash::Hash + Eq>(
    records: &mut HashMap<K, Record>,
    config: &AuthGuardConfig,
    now: Instant,
) {
    if records.len() <= MAX_RECORDS {
        return;
    }
    records.retain(|_, r| {
        now.saturating_duration_since(r.last) <= config.forget_after
            || r.locked_until.is_some_and(|u| u > now)
    });
    if records.len() > MAX_RECORDS {
        // Down to nine tenths in one pass, the oldest failures first.
        let mut order: Vec<u64> = records.values().map(|r| r.seq).collect();
        let cut = records.len() - MAX_RECORDS * 9 / 10;
        let (_, threshold, _) = order.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        records.retain(|_, r| r.seq > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn free_failures_then_doubling_back_off_then_a_block() {
        let t0 = Instant::now();
        let mut g = AuthGuard::new(AuthGuardConfig::default());
        let user = Some(("vc", "pbx"));
        for i in 1..=3 {
            assert_eq!(g.check(ip(1), user, t0), Verdict::Allow, "attempt {i}");
            g.failed(ip(1), user, t0);
        }
        assert_eq!(g.check(ip(1), user, t0), Verdict::Allow);
        g.failed(ip(1), user, t0); // 4th: 1 s
        assert_eq!(
            g.check(ip(1), None, t0),
            Verdict::Throttled {
                until: t0 + Duration::from_secs(1)
            }
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(g.check(ip(1), None, t1), Verdict::Allow);
        g.failed(ip(1), user, t1); // 5th: 2 s
        assert_eq!(
            g.check(ip(1), None, t1),
            Verdict::Throttled {
                until: t1 + Duration::from_secs(2)
            }
        );
        // Another address guessing the same user is throttled by the user's record.
        assert!(matches!(
            g.check(ip(2), user, t1),
            Verdict::Throttled { .. }
        ));
        let mut t = t1;
        for _ in 6..=10 {
            t += Duration::from_secs(120);
            g.failed(ip(1), user, t);
        }
        assert_eq!(
            g.check(ip(1), None, t),
            Verdict::Blocked {
                until: t + Duration::from_secs(300)
            }
        );
        assert!(!g.drops(ip(1), t), "the default policy answers 403");
        assert_eq!(
            g.check(ip(1), None, t + Duration::from_secs(300)),
            Verdict::Allow
        );
        assert!(g.stats.failures >= 10 && g.stats.blocked >= 1 && g.stats.throttled >= 2);
    }

    #[test]
    fn a_success_clears_and_old_failures_are_forgotten() {
        let t0 = Instant::now();
        let mut g = AuthGuard::new(AuthGuardConfig::default());
        for _ in 0..4 {
            g.failed(ip(1), Some(("vc", "pbx")), t0);
        }
        g.succeeded(ip(1), ("vc", "pbx"));
        assert_eq!(g.check(ip(1), Some(("vc", "pbx")), t0), Verdict::Allow);
        for _ in 0..3 {
            g.failed(ip(3), None, t0);
        }
        // Eleven minutes later the count starts again: one failure is free.
        g.failed(ip(3), None, t0 + Duration::from_secs(660));
        assert_eq!(
            g.check(ip(3), None, t0 + Duration::from_secs(660)),
            Verdict::Allow
        );
    }

    #[test]
    fn a_blocked_source_is_dropped_when_the_policy_says_drop() {
        let t0 = Instant::now();
        let mut g = AuthGuard::new(AuthGuardConfig {
            blocked: BlockedAction::Drop,
            block_after: 2,
            ..AuthGuardConfig::default()
        });
        g.failed(ip(9), None, t0);
        assert!(!g.drops(ip(9), t0));
        g.failed(ip(9), None, t0);
        assert!(g.drops(ip(9), t0));
        assert_eq!(g.stats.dropped, 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_sources() {
        let t0 = Instant::now();
        let mut g = AuthGuard::new(AuthGuardConfig::default());
        for i in 0..(MAX_RECORDS as u32 + 5_000) {
            g.failed(IpAddr::from(i.to_be_bytes()), None, t0);
        }
        assert!(g.len() <= MAX_RECORDS + 1, "{}", g.len());
    }
}
