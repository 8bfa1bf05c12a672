//! Failover between a SIP rule's target applications (contract §5.4).
//!
//! Targets are tried in priority order (lowest number first, ties by list order). Each attempt
//! gets the event rewritten for that target (its `SipMediaApplicationId` and `AwsRegion`). A
//! target that failed `failures_before_cool_down` times in a row is skipped for `cool_down`,
//! so calls do not each wait out a dead handler's deadline; after the cool-down one call tries
//! it again, and one success clears its record. When every target is cooling down they are all
//! tried anyway: trying costs less than failing a call untried.

use crate::error::InvokeError;
use crate::HandlerEndpoint;
use sma_actions::InvocationEvent;
use sma_actions::ParsedResponse;
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

/// One target application of a rule.
pub struct Target {
    /// A label for logs and reports (the handler's path or URL).
    pub name: String,
    /// The application's id (goes into `CallDetails.SipMediaApplicationId`).
    pub application_id: String,
    /// The application's region (goes into `CallDetails.AwsRegion`).
    pub region: String,
    /// Lower is tried first.
    pub priority: u32,
    /// How to reach the handler.
    pub endpoint: HandlerEndpoint,
}

/// When a failing target is set aside.
#[derive(Debug, Clone, Copy)]
pub struct CoolDownPolicy {
    /// Consecutive failures that start a cool-down.
    pub failures_before_cool_down: u32,
    /// How long the target is skipped.
    pub cool_down: Duration,
}

impl Default for CoolDownPolicy {
    fn default() -> Self {
        Self {
            failures_before_cool_down: 3,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// A failed (or skipped) attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Target label.
    pub name: String,
    /// Target application.
    pub application_id: String,
    /// Its region.
    pub region: String,
    /// What went wrong.
    pub error: InvokeError,
}

/// The target that answered, and why the ones before it did not.
#[derive(Debug, Clone)]
pub struct Answered {
    /// Label of the answering target.
    pub name: String,
    /// Index of the answering target in priority order.
    pub target_index: usize,
    /// Its application id.
    pub application_id: String,
    /// Its region.
    pub region: String,
    /// The response, read as JSON (not yet validated against the contract).
    pub response: ParsedResponse,
    /// Earlier targets that failed or were skipped, in order.
    pub failures: Vec<Attempt>,
}

/// Every target failed.
#[derive(Debug, Clone, Error)]
#[error("every target application failed: {}", describe(.failures))]
pub struct AllFailed {
    /// Each target's failure, in order.
    pub failures: Vec<Attempt>,
}

fn describe(failures: &[Attempt]) -> String {
    failures
        .iter()
        .map(|a| format!("{}: {} [{}]", a.name, a.error, a.error.kind()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

struct Slot {
    target: Target,
    health: Mutex<Health>,
}

/// Targets in priority order with their health.
pub struct FailoverChain {
    slots: Vec<Slot>,
    policy: CoolDownPolicy,
}

impl FailoverChain {
    /// A chain over `targets`, sorted by priority (stable, so ties keep list order).
    pub fn new(mut targets: Vec<Target>, policy: CoolDownPolicy) -> Self {
        targets.sort_by_key(|t| t.priority);
        let slots = targets
            .into_iter()
            .map(|target| Slot {
                target,
                health: Mutex::new(Health::default()),
            })
            .collect();
        Self { slots, policy }
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The endpoint of the target at `index` in priority order (the one an [`Answered`]
    /// names), for the rest of a call pinned to it.
    pub fn endpoint(&self, index: usize) -> Option<&HandlerEndpoint> {
        self.slots.get(index).map(|s| &s.target.endpoint)
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Invokes targets in order until one answers.
    pub async fn invoke(&self, event: &InvocationEvent) -> Result<Answered, AllFailed> {
        let now = Instant::now();
        let cooling: Vec<Option<u32>> = self.slots.iter().map(|s| self.cooling(s, now)).collect();
        let all_cooling = cooling.iter().all(Option::is_some);
        let mut failures = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let target = &slot.target;
            if let (Some(failures_so_far), false) = (cooling[index], all_cooling) {
                failures.push(Attempt {
                    name: target.name.clone(),
                    application_id: target.application_id.clone(),
                    region: target.region.clone(),
                    error: InvokeError::CoolingDown {
                        failures: failures_so_far,
                    },
                });
                continue;
            }
            let mut attempt = event.clone();
            attempt.call_details.sip_media_application_id = target.application_id.clone();
            attempt.call_details.aws_region = target.region.clone();
            let json = match serde_json::to_string(&attempt) {
                Ok(json) => json,
                Err(e) => {
                    return Err(AllFailed {
                        failures: vec![Attempt {
                            name: target.name.clone(),
                            application_id: target.application_id.clone(),
                            region: target.region.clone(),
                            error: InvokeError::Load(format!("event not serializable: {e}")),
                        }],
                    })
                }
            };
            let transaction_id = &event.call_details.transaction_id;
            match target.endpoint.invoke(&json, transaction_id).await {
                Ok(response) => {
                    self.record(slot, true);
                    return Ok(Answered {
                        name: target.name.clone(),
                        target_index: index,
                        application_id: target.application_id.clone(),
                        region: target.region.clone(),
                        response,
                        failures,
                    });
                }
                Err(error) => {
                    tracing::warn!(
                        transaction_id = %transaction_id,
                        application = %target.application_id,
                        region = %target.region,
                        kind = error.kind(),
                        %error,
                        "handler invocation failed; trying the next target"
                    );
                    self.record(slot, false);
                    failures.push(Attempt {
                        name: target.name.clone(),
                        application_id: target.application_id.clone(),
                        region: target.region.clone(),
                        error,
                    });
                }
            }
        }
        Err(AllFailed { failures })
    }

    /// `Some(consecutive failures)` while `slot` is cooling down.
    fn cooling(&self, slot: &Slot, now: Instant) -> Option<u32> {
        let health = slot.health.lock().ok()?;
        match health.cooling_until {
            Some(until) if now < until => Some(health.consecutive_failures),
            _ => None,
        }
    }

    fn record(&self, slot: &Slot, success: bool) {
        let Ok(mut health) = slot.health.lock() else {
            return;
        };
        if success {
            *health = Health::default();
            return;
        }
        health.consecutive_failures = health.consecutive_failures.saturating_add(1);
        if health.consecutive_failures >= self.policy.failures_before_cool_down {
            health.cooling_until = Some(Instant::now() + self.policy.cool_down);
        }
    }
}
