//! Load mode: many scripted callers at a fixed rate with a ceiling on calls in progress, a
//! live progress line, and a summary: outcomes by reason, call setup latency percentiles,
//! step failures, and RTP quality.

use super::caller::{place_call, CallOutcome, Shared};
use super::dialer::Dialer;
use super::run::Verdict;
use super::scenario::Scenario;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use sma_sip::message::Uri;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    pub calls: u64,
    pub rate: f64,
    pub concurrency: usize,
}

/// What a load run measured.
pub struct LoadSummary {
    pub scenario: String,
    pub plan: LoadPlan,
    pub elapsed: Duration,
    /// Time from the first to the last INVITE.
    pub offered_for: Duration,
    pub attempted: u64,
    pub answered: u64,
    pub passed: u64,
    pub failed_by_reason: BTreeMap<String, u64>,
    pub step_failures: BTreeMap<String, u64>,
    /// Microseconds, INVITE to 2xx.
    pub setup: Histogram<u64>,
    pub jitter_ms: Vec<f64>,
    pub lost: i64,
    pub frames_received: u64,
    pub peak_in_progress: usize,
}

fn reason(outcome: &CallOutcome) -> Option<String> {
    if outcome.passed {
        return None;
    }
    if let Some(e) = &outcome.error {
        return Some(format!("not placed: {e}"));
    }
    match outcome.final_response.as_ref() {
        Some((status, text)) if *status >= 300 => return Some(format!("rejected {status} {text}")),
        None => return Some("no response".into()),
        _ => {}
    }
    match outcome
        .reports
        .iter()
        .find(|r| matches!(r.verdict, Verdict::Failed(_)))
    {
        Some(r) => Some(format!("step {} ({}) failed", r.index + 1, r.label)),
        None => Some("did not finish".into()),
    }
}

pub async fn run(
    scenario: Arc<Scenario>,
    uri: Uri,
    dialer: Dialer,
    shared: Arc<Shared>,
    plan: LoadPlan,
) -> LoadSummary {
    let bar = ProgressBar::new(plan.calls);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} calls done  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let concurrency = plan.concurrency.min(Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(concurrency));
    let (done_tx, mut done) = mpsc::unbounded_channel::<CallOutcome>();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let mut summary = LoadSummary {
        scenario: scenario.name.clone(),
        plan,
        elapsed: Duration::ZERO,
        offered_for: Duration::ZERO,
        attempted: 0,
        answered: 0,
        passed: 0,
        failed_by_reason: BTreeMap::new(),
        step_failures: BTreeMap::new(),
        setup: Histogram::new_with_bounds(1, 120_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant figures is valid")),
        jitter_ms: Vec::new(),
        lost: 0,
        frames_received: 0,
        peak_in_progress: 0,
    };
    let mut finished = 0u64;
    let mut next = 0u64;
    let mut last_offer = started;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now(), interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let fold = |summary: &mut LoadSummary, outcome: CallOutcome| {
        if let Some(setup) = outcome.setup {
            summary.answered += 1;
            let _ = summary.setup.record((setup.as_micros() as u64).max(1));
        }
        if let Some(q) = outcome.quality {
            summary.jitter_ms.push(q.jitter_ms);
            summary.lost += i64::from(q.cumulative_lost);
        }
        summary.frames_received += outcome.packets_received;
        match reason(&outcome) {
            None => summary.passed += 1,
            Some(r) => *summary.failed_by_reason.entry(r).or_default() += 1,
        }
        for r in &outcome.reports {
            if matches!(r.verdict, Verdict::Failed(_)) {
                *summary
                    .step_failures
                    .entry(format!("step {} ({})", r.index + 1, r.label))
                    .or_default() += 1;
            }
        }
    };
    while finished < plan.calls {
        tokio::select! {
            _ = tick.tick(), if next < plan.calls => {
                let permit = match slots.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    // At the concurrency ceiling: this tick's call waits for a free slot.
                    Err(_) => tokio::select! {
                        p = slots.clone().acquire_owned() => match p {
                            Ok(permit) => permit,
                            Err(_) => break,
                        },
                        Some(outcome) = done.recv() => {
                            finished += 1;
                            fold(&mut summary, outcome);
                            bar.inc(1);
                            continue;
                        }
                    },
                };
                next += 1;
                last_offer = Instant::now();
                spawn_call(&scenario, &uri, &dialer, &shared, &done_tx, next, permit);
                let in_progress = concurrency - slots.available_permits();
                summary.peak_in_progress = summary.peak_in_progress.max(in_progress);
            }
            Some(outcome) = done.recv() => {
                finished += 1;
                fold(&mut summary, outcome);
                bar.inc(1);
                let failed: u64 = summary.failed_by_reason.values().sum();
                bar.set_message(format!(
                    "{} started, {} in progress, {} passed, {failed} failed",
                    next,
                    concurrency - slots.available_permits(),
                    summary.passed
                ));
            }
        }
    }
    bar.finish_and_clear();
    summary.attempted = next;
    summary.elapsed = started.elapsed();
    summary.offered_for = last_offer.saturating_duration_since(started);
    summary
}

fn spawn_call(
    scenario: &Arc<Scenario>,
    uri: &Uri,
    dialer: &Dialer,
    shared: &Arc<Shared>,
    done: &mpsc::UnboundedSender<CallOutcome>,
    index: u64,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let (scenario, uri, dialer, shared, done) = (
        scenario.clone(),
        uri.clone(),
        dialer.clone(),
        shared.clone(),
        done.clone(),
    );
    tokio::spawn(async move {
        let outcome = place_call(scenario, uri, dialer, shared, index).await;
        drop(permit);
        let _ = done.send(outcome);
    });
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl LoadSummary {
    pub fn all_passed(&self) -> bool {
        self.passed == self.attempted
    }

    /// Calls per second actually offered.
    pub fn offered_rate(&self) -> f64 {
        if self.attempted <= 1 || self.offered_for.is_zero() {
            return self.attempted as f64;
        }
        (self.attempted - 1) as f64 / self.offered_for.as_secs_f64()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "sma call load: {} — {} calls at {:.1}/s asked ({:.1}/s offered), concurrency ceiling {}, {:.1} s",
            self.scenario,
            self.attempted,
            self.plan.rate,
            self.offered_rate(),
            if self.plan.concurrency == usize::MAX {
                "none".to_owned()
            } else {
                self.plan.concurrency.to_string()
            },
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  attempted {}  answered {}  passed {}  failed {}  peak in progress {}",
            self.attempted,
            self.answered,
            self.passed,
            self.attempted - self.passed,
            self.peak_in_progress
        );
        for (reason, n) in &self.failed_by_reason {
            let _ = writeln!(out, "  failed: {n:>6}  {reason}");
        }
        if !self.setup.is_empty() {
            let h = &self.setup;
            let _ = writeln!(
                out,
                "  call setup (INVITE to 2xx) ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.9)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
        for (step, n) in &self.step_failures {
            let _ = writeln!(out, "  step failures: {n:>6}  {step}");
        }
        if !self.jitter_ms.is_empty() {
            let mean = self.jitter_ms.iter().sum::<f64>() / self.jitter_ms.len() as f64;
            let max = self.jitter_ms.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "  RTP: {} frames heard, jitter mean {mean:.2} ms max {max:.2} ms, {} packets lost",
                self.frames_received, self.lost
            );
        } else {
            let _ = writeln!(
                out,
                "  RTP: {} frames heard (no RTCP report arrived)",
                self.frames_received
            );
        }
        out
    }

    pub fn json(&self) -> Value {
        let h = &self.setup;
        let q = |p: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(p)));
        json!({
            "scenario": self.scenario,
            "plan": {
                "calls": self.plan.calls,
                "rate": self.plan.rate,
                "concurrency": (self.plan.concurrency != usize::MAX).then_some(self.plan.concurrency),
            },
            "elapsed_s": self.elapsed.as_secs_f64(),
            "offered_rate": self.offered_rate(),
            "attempted": self.attempted,
            "answered": self.answered,
            "passed": self.passed,
            "failed": self.attempted - self.passed,
            "failed_by_reason": self.failed_by_reason,
            "step_failures": self.step_failures,
            "peak_in_progress": self.peak_in_progress,
            "setup_ms": {
                "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                "max": (!h.is_empty()).then(|| ms(h.max())),
                "count": h.len(),
            },
            "rtp": {
                "frames_received": self.frames_received,
                "jitter_ms_mean": (!self.jitter_ms.is_empty())
                    .then(|| self.jitter_ms.iter().sum::<f64>() / self.jitter_ms.len() as f64),
                "lost": self.lost,
            },
        })
    }
}
