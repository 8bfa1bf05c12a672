//! How a scenario run is told: a readable timeline for people, JUnit XML for CI servers, and
//! a JSON summary for scripts.

use super::caller::CallOutcome;
use super::run::Verdict;
use super::scenario::{show, Scenario};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One scenario's result, with what it dialed.
pub struct ScenarioResult<'a> {
    pub scenario: &'a Scenario,
    pub target: String,
    pub outcome: CallOutcome,
}

/// The step-by-step timeline and the verdict line.
pub fn timeline(result: &ScenarioResult<'_>) -> String {
    let s = result.scenario;
    let o = &result.outcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sma call: {} ({}) -> {} over {}",
        s.name,
        s.path.display(),
        result.target,
        s.transport
    );
    if let Some(e) = &o.error {
        let _ = writeln!(out, "FAIL: the call could not be placed: {e}");
        return out;
    }
    for r in &o.reports {
        let mark = match r.verdict {
            Verdict::Passed => "ok  ",
            Verdict::Failed(_) => "FAIL",
            Verdict::Skipped => "skip",
        };
        let at = format!("+{:.3}s", r.started.as_secs_f64());
        let _ = write!(
            out,
            "  {mark} {:>2}  {:<34} line {:<4} {at:>9}",
            r.index + 1,
            r.label,
            r.line
        );
        if r.verdict != Verdict::Skipped {
            let _ = write!(out, "  {:>8}", show(r.took));
        }
        if !r.detail.is_empty() {
            let _ = write!(out, "  {}", r.detail);
        }
        out.push('\n');
    }
    let mut facts = Vec::new();
    if let Some(c) = &o.codec {
        facts.push(c.clone());
    }
    if let Some(q) = &o.quality {
        facts.push(format!(
            "jitter {:.1} ms, {} lost, MOS {:.2}",
            q.jitter_ms, q.cumulative_lost, q.mos
        ));
    }
    facts.push(format!("{} frames heard", o.packets_received));
    if let Some(p) = &o.recording {
        facts.push(format!("recording {}", p.display()));
    }
    let passed = o
        .reports
        .iter()
        .filter(|r| r.verdict == Verdict::Passed)
        .count();
    match o
        .reports
        .iter()
        .find(|r| matches!(r.verdict, Verdict::Failed(_)))
    {
        None if o.passed => {
            let _ = writeln!(
                out,
                "PASS: {passed} steps in {} ({})",
                show(o.duration),
                facts.join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "FAIL: the run did not finish ({})", facts.join(", "));
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "FAIL: step {} ({}, line {}): {} ({})",
                r.index + 1,
                r.label,
                r.line,
                r.detail,
                facts.join(", ")
            );
        }
    }
    out
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per scenario, one test case per step.
pub fn junit(results: &[ScenarioResult<'_>]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for result in results {
        let s = result.scenario;
        let o = &result.outcome;
        let failures = o
            .reports
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
            .count()
            + usize::from(o.error.is_some());
        let skipped = o
            .reports
            .iter()
            .filter(|r| r.verdict == Verdict::Skipped)
            .count();
        let tests = o.reports.len() + usize::from(o.error.is_some());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\" file=\"{}\">",
            xml_escape(&s.name),
            o.duration.as_secs_f64(),
            xml_escape(&s.path.display().to_string())
        );
        if let Some(e) = &o.error {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"place the call\"><failure message=\"{}\"/></testcase>",
                xml_escape(&s.name),
                xml_escape(e)
            );
        }
        for r in &o.reports {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}. {}\" time=\"{:.3}\" file=\"{}\" line=\"{}\"",
                xml_escape(&s.name),
                r.index + 1,
                xml_escape(&r.label),
                r.took.as_secs_f64(),
                xml_escape(&s.path.display().to_string()),
                r.line
            );
            match &r.verdict {
                Verdict::Passed => out.push_str("/>\n"),
                Verdict::Skipped => out.push_str("><skipped/></testcase>\n"),
                Verdict::Failed(why) => {
                    let _ = writeln!(
                        out,
                        "><failure message=\"{}\">{} (line {})</failure></testcase>",
                        xml_escape(why),
                        xml_escape(why),
                        r.line
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The JSON summary of one scenario run.
pub fn json_summary(result: &ScenarioResult<'_>) -> Value {
    let s = result.scenario;
    let o = &result.outcome;
    let steps: Vec<Value> = o
        .reports
        .iter()
        .map(|r| {
            let (verdict, reason) = match &r.verdict {
                Verdict::Passed => ("passed", None),
                Verdict::Failed(why) => ("failed", Some(why.clone())),
                Verdict::Skipped => ("skipped", None),
            };
            json!({
                "index": r.index + 1,
                "line": r.line,
                "step": r.label,
                "result": verdict,
                "reason": reason,
                "detail": r.detail,
                "started_ms": r.started.as_millis() as u64,
                "took_ms": r.took.as_millis() as u64,
            })
        })
        .collect();
    json!({
        "scenario": s.name,
        "file": s.path.display().to_string(),
        "target": result.target,
        "transport": s.transport.as_str(),
        "passed": o.passed,
        "error": o.error,
        "setup_ms": o.setup.map(|d| d.as_secs_f64() * 1000.0),
        "final_status": o.final_response.as_ref().map(|r| r.0),
        "codec": o.codec,
        "duration_ms": o.duration.as_millis() as u64,
        "frames_received": o.packets_received,
        "rtp": o.quality.map(|q| json!({
            "jitter_ms": q.jitter_ms,
            "cumulative_lost": q.cumulative_lost,
            "fraction_lost": q.fraction_lost,
            "round_trip_ms": q.round_trip_ms,
            "mos": q.mos,
        })),
        "recording": o.recording.as_ref().map(|p| p.display().to_string()),
        "steps": steps,
    })
}
