//! The scenario state machine on simulated time: one test per behaviour a QA engineer
//! relies on.

use super::*;
use crate::scenario::Scenario;
use std::path::Path;

fn scenario(steps: &str) -> Arc<Scenario> {
    let text =
        format!("call:\n  to: sip:+1206@127.0.0.1:5060\n  answer_timeout: 5s\nsteps:\n{steps}");
    Arc::new(Scenario::parse(&text, Path::new("t.yaml")).unwrap())
}

const LOUD: [i16; 160] = {
    let mut f = [0i16; 160];
    let mut i = 0;
    while i < 160 {
        f[i] = if i % 2 == 0 { 8000 } else { -8000 };
        i += 1;
    }
    f
};
const QUIET: [i16; 160] = [0; 160];

struct Sim {
    run: ScenarioRun,
    now: Instant,
}

impl Sim {
    fn new(steps: &str) -> Sim {
        let now = Instant::now();
        Sim {
            run: ScenarioRun::new(scenario(steps), now),
            now,
        }
    }
    fn at(&mut self, ms: u64) -> &mut Sim {
        self.now += Duration::from_millis(ms);
        self.run.handle_timeout(self.now);
        self
    }
    fn see(&mut self, o: Observation<'_>) -> &mut Sim {
        self.run.handle(o, self.now);
        self
    }
    fn answer(&mut self) -> &mut Sim {
        self.see(Observation::Response {
            status: 180,
            reason: "Ringing",
        });
        self.see(Observation::Response {
            status: 200,
            reason: "OK",
        });
        self.run.set_rate(8000);
        self
    }
    /// Frames every 20 ms for `ms`.
    fn frames(&mut self, frame: &[i16], ms: u64) -> &mut Sim {
        for _ in 0..ms / 20 {
            self.now += FRAME;
            self.run.handle(Observation::Audio(frame), self.now);
        }
        self
    }
    fn verdicts(&self) -> Vec<&Verdict> {
        self.run.reports().iter().map(|r| &r.verdict).collect()
    }
    fn failure(&self) -> String {
        match self.run.first_failure() {
            Some(r) => r.detail.clone(),
            None => String::new(),
        }
    }
}

#[test]
fn a_happy_call_passes_every_step_and_hangs_up() {
    let mut s = Sim::new(
        "  - expect: ringing\n  - expect: answered\n  - expect_audio: {min_ms: 400}\n  - send_digits: \"12\"\n  - hangup\n",
    );
    s.at(30).answer();
    assert_eq!(s.run.setup_time(), Some(Duration::from_millis(30)));
    s.frames(&QUIET, 200).frames(&LOUD, 420);
    match s.run.poll_command() {
        Some(Command::SendDigits { digits, mode, .. }) => {
            assert_eq!(digits, "12");
            assert_eq!(mode, DtmfMode::Rfc4733);
        }
        other => panic!("{other:?}"),
    }
    s.at(400).see(Observation::Done(1));
    assert_eq!(s.run.poll_command(), Some(Command::Hangup));
    assert!(!s.run.is_finished());
    s.at(10).see(Observation::Ended {
        by_far_end: false,
        why: "BYE",
    });
    assert!(s.run.is_finished());
    assert!(s.run.passed(), "{:?}", s.run.reports());
    assert_eq!(s.run.reports()[2].detail, "heard 400 ms of audio");
}

#[test]
fn a_far_end_that_never_answers_fails_at_the_answer_timeout_and_cancels() {
    let mut s = Sim::new("  - expect: answered\n  - hangup\n");
    s.see(Observation::Response {
        status: 180,
        reason: "Ringing",
    });
    s.at(4_999);
    assert!(s.run.reports().is_empty());
    s.at(1);
    assert_eq!(
        s.failure(),
        "no final response within 5.0 s (last: 180 Ringing)"
    );
    assert_eq!(s.verdicts()[1], &Verdict::Skipped);
    assert_eq!(s.run.poll_command(), Some(Command::Hangup));
    s.see(Observation::Response {
        status: 487,
        reason: "Request Terminated",
    });
    assert!(s.run.is_finished());
}

#[test]
fn a_rejection_names_the_status_and_sip_status_can_expect_it() {
    let mut s = Sim::new("  - expect: answered\n");
    s.see(Observation::Response {
        status: 486,
        reason: "Busy Here",
    });
    assert_eq!(s.failure(), "the call was rejected: 486 Busy Here");
    assert!(s.run.is_finished(), "nothing to clear after a rejection");
    assert_eq!(s.run.poll_command(), None);

    let mut s = Sim::new("  - expect: {sip_status: 404}\n");
    s.see(Observation::Response {
        status: 404,
        reason: "Not Found",
    });
    assert!(s.run.passed());
}

#[test]
fn no_rtp_and_only_silence_are_told_apart() {
    let mut s = Sim::new("  - expect: answered\n  - expect_audio: {within: 2s}\n");
    s.answer().at(2_000);
    assert_eq!(s.failure(), "no RTP received within 2.0 s");
    let mut s = Sim::new("  - expect: answered\n  - expect_audio: {within: 1s}\n");
    s.answer().frames(&QUIET, 1_000).at(20);
    assert!(
        s.failure().starts_with("only silence within 1.0 s"),
        "{}",
        s.failure()
    );
}

#[test]
fn audio_longer_than_max_fails_and_a_short_burst_is_ignored() {
    let mut s = Sim::new("  - expect: answered\n  - expect_audio: {min_ms: 100, max_ms: 300}\n");
    s.answer().frames(&LOUD, 400);
    assert!(
        s.failure()
            .starts_with("audio went on for more than 300 ms"),
        "{}",
        s.failure()
    );

    let mut s = Sim::new(
        "  - expect: answered\n  - expect_audio: {min_ms: 200, max_ms: 1000, gap_ms: 100}\n",
    );
    s.answer().frames(&LOUD, 60).frames(&QUIET, 200);
    assert_eq!(s.run.reports().len(), 1, "a 60 ms click is not the audio");
    s.frames(&LOUD, 300).frames(&QUIET, 40);
    assert_eq!(s.run.reports().len(), 1, "the burst has not ended yet");
    s.frames(&QUIET, 100);
    assert!(
        s.run.reports()[1].verdict == Verdict::Passed,
        "{:?}",
        s.run.reports()
    );
}

#[test]
fn silence_counts_time_without_loud_frames() {
    let mut s = Sim::new("  - expect: answered\n  - expect_silence: {min_ms: 500}\n");
    s.answer().frames(&QUIET, 300).frames(&LOUD, 100);
    assert_eq!(s.run.reports().len(), 1);
    s.frames(&QUIET, 480);
    assert_eq!(s.run.reports().len(), 1);
    s.frames(&QUIET, 20);
    assert_eq!(s.run.reports()[1].verdict, Verdict::Passed);
}

#[test]
fn digits_must_match_in_order() {
    let mut s =
        Sim::new("  - expect: answered\n  - expect_digits: \"12#\"\n  - expect_digits: \"9\"\n");
    s.answer();
    s.see(Observation::Digit('1')).see(Observation::Digit('2'));
    assert_eq!(s.run.reports().len(), 1);
    s.see(Observation::Digit('#')).see(Observation::Digit('8'));
    assert_eq!(s.run.reports()[1].verdict, Verdict::Passed);
    assert_eq!(s.failure(), "expected \"9\", received \"8\"");

    let mut s = Sim::new("  - expect: answered\n  - expect_digits: {digits: \"55\", within: 1s}\n");
    s.answer().see(Observation::Digit('5')).at(1_000);
    assert_eq!(s.failure(), "expected \"55\", received only \"5\"");
}

#[test]
fn the_far_end_hanging_up_fails_a_waiting_step_but_passes_expect_hangup() {
    let mut s = Sim::new("  - expect: answered\n  - expect_audio: {}\n");
    s.answer().at(100).see(Observation::Ended {
        by_far_end: true,
        why: "BYE",
    });
    assert_eq!(s.failure(), "the far end hung up at +100 ms (BYE)");
    assert!(s.run.is_finished());
    assert_eq!(s.run.poll_command(), None, "no BYE after the far end's");

    let mut s = Sim::new("  - expect: answered\n  - wait: 1s\n  - expect_hangup: 5s\n");
    s.answer().at(500).see(Observation::Ended {
        by_far_end: true,
        why: "BYE",
    });
    assert!(s.run.reports().len() == 1, "a wait is not cut short");
    s.at(500);
    assert!(s.run.passed(), "{:?}", s.run.reports());

    let mut s = Sim::new("  - expect: answered\n  - expect_hangup: 2s\n");
    s.answer().at(2_000);
    assert_eq!(s.failure(), "the far end did not hang up within 2.0 s");
    assert_eq!(s.run.poll_command(), Some(Command::Hangup));
}

#[test]
fn media_steps_need_an_answered_call_with_usable_sdp() {
    let s = Sim::new("  - send_digits: \"1\"\n");
    assert_eq!(s.failure(), "the call is not answered");
    let mut s = Sim::new("  - expect: answered\n");
    s.see(Observation::MediaFailed("no common codec"))
        .see(Observation::Response {
            status: 200,
            reason: "OK",
        });
    assert_eq!(
        s.failure(),
        "answered, but the SDP answer is unusable: no common codec"
    );
    assert_eq!(s.run.poll_command(), Some(Command::Hangup));
}

#[test]
fn a_send_that_never_finishes_times_out() {
    let mut s = Sim::new("  - expect: answered\n  - send_digits: \"1\"\n");
    s.answer();
    assert!(matches!(
        s.run.poll_command(),
        Some(Command::SendDigits { .. })
    ));
    s.at(5_199);
    assert_eq!(s.run.reports().len(), 1);
    s.at(1);
    assert_eq!(s.failure(), "the audio did not finish sending in time");
}

#[test]
fn every_state_has_a_deadline() {
    let mut s = Sim::new("  - expect: answered\n  - wait: 1s\n");
    s.answer();
    while !s.run.is_finished() {
        let next = s.run.poll_timeout().expect("a deadline while running");
        assert!(next >= s.now);
        s.now = next;
        s.run.handle_timeout(next);
        if let Some(Command::Hangup) = s.run.poll_command() {
            s.see(Observation::Ended {
                by_far_end: false,
                why: "BYE",
            });
        }
    }
    assert!(s.run.passed());
}

/// A deterministic speech-like prompt (noise under a syllable-rate envelope), `ms` long at
/// 8 kHz, written as a WAV next to a scenario expecting it; the steps and the samples.
fn prompt_scenario(steps: &str, ms: usize) -> (Arc<Scenario>, Vec<i16>) {
    let mut x = 7u32;
    let samples: Vec<i16> = (0..ms * 8)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = ((x >> 16) as i16) as f32 / 32_768.0;
            let syllable = (i as f32 / 8000.0 * 4.0 * std::f32::consts::PI).sin().abs();
            (noise * syllable * 12_000.0) as i16
        })
        .collect();
    let dir = std::env::temp_dir().join(format!(
        "sma-run-tests-{}-{}",
        std::process::id(),
        steps.len() ^ ms
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [
        16u32.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        8000u32.to_le_bytes().to_vec(),
        16000u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        16u16.to_le_bytes().to_vec(),
    ] {
        wav.extend_from_slice(&field);
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(dir.join("prompt.wav"), wav).unwrap();
    let text =
        format!("call:\n  to: sip:+1206@127.0.0.1:5060\n  answer_timeout: 5s\nsteps:\n{steps}");
    let scenario = Scenario::parse(&text, &dir.join("t.yaml")).unwrap();
    (Arc::new(scenario), samples)
}

impl Sim {
    fn with(scenario: Arc<Scenario>) -> Sim {
        let now = Instant::now();
        Sim {
            run: ScenarioRun::new(scenario, now),
            now,
        }
    }
    /// The samples as 20 ms frames.
    fn play(&mut self, samples: &[i16]) -> &mut Sim {
        for frame in samples.chunks(160) {
            self.now += FRAME;
            self.run.handle(Observation::Audio(frame), self.now);
        }
        self
    }
}

#[test]
fn a_prompt_heard_whole_passes_though_the_far_end_hangs_up_right_after_it() {
    let (scenario, prompt) = prompt_scenario(
        "  - expect: answered\n  - expect_prompt: {file: prompt.wav}\n  - expect_hangup: 5s\n",
        1000,
    );
    let mut s = Sim::with(scenario);
    // A little silence first, so the last search before the hang-up saw only part of it.
    s.answer().frames(&QUIET, 100).play(&prompt);
    assert_eq!(s.run.reports().len(), 1, "not decided before the end");
    s.see(Observation::Ended {
        by_far_end: true,
        why: "BYE",
    });
    assert!(s.run.passed(), "{:?}", s.run.reports());
    assert!(s.run.reports()[1].detail.starts_with("matched with score"));

    // Hanging up before the prompt was heard still fails, and says so.
    let (scenario, prompt) = prompt_scenario(
        "  - expect: answered\n  - expect_prompt: {file: prompt.wav}\n",
        1000,
    );
    let mut s = Sim::with(scenario);
    s.answer().play(&prompt[..4000]).see(Observation::Ended {
        by_far_end: true,
        why: "BYE",
    });
    assert!(
        s.failure()
            .starts_with("the far end hung up at +500 ms (BYE) before the prompt was heard"),
        "{}",
        s.failure()
    );
}

#[test]
fn a_prompt_that_began_during_the_previous_step_is_found() {
    let (scenario, prompt) = prompt_scenario(
        "  - expect: answered\n  - send_digits: \"1\"\n  - expect_prompt: {file: prompt.wav, within: 3s}\n",
        1000,
    );
    let mut s = Sim::with(scenario);
    s.answer();
    assert!(matches!(
        s.run.poll_command(),
        Some(Command::SendDigits { .. })
    ));
    // The far end barges in: 400 ms of its prompt arrive while the digit is still sent.
    s.play(&prompt[..3200]).see(Observation::Done(1));
    s.play(&prompt[3200..]).frames(&QUIET, 400);
    assert_eq!(s.verdicts(), [&Verdict::Passed; 3], "{:?}", s.run.reports());
    assert_eq!(
        s.run.reports()[2].detail.split(", ").nth(1),
        Some("starting 400 ms before the step"),
        "{}",
        s.run.reports()[2].detail
    );
}

fn callee(steps: &str) -> Sim {
    let text = format!("role: callee\nlisten: 127.0.0.1:5090\nsteps:\n{steps}");
    let scenario = Arc::new(Scenario::parse(&text, Path::new("t.yaml")).unwrap());
    let now = Instant::now();
    Sim {
        run: ScenarioRun::new(scenario, now),
        now,
    }
}

fn invite(from_user: &str, headers: &[(&str, &str)]) -> Incoming {
    Incoming {
        from_uri: format!("sip:{from_user}@10.0.0.1"),
        from_user: from_user.into(),
        to_user: "+12065550199".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn a_callee_checks_the_invite_rings_answers_and_hears_the_caller() {
    let mut s = callee(
        "  - expect_incoming: {from: \"+12065550100\", to: \"+12065550199\", headers: {x-agent: \"7\"}}\n  - ring: 1s\n  - answer\n  - expect_audio: {min_ms: 200}\n  - expect_hangup: 5s\n",
    );
    assert_eq!(s.run.poll_command(), None);
    let call = invite("+12065550100", &[("X-Agent", "7")]);
    s.at(300).see(Observation::Incoming(&call));
    assert_eq!(s.run.poll_command(), Some(Command::Ring));
    s.at(900);
    assert_eq!(s.run.poll_command(), None, "still ringing");
    s.at(200);
    assert_eq!(s.run.poll_command(), Some(Command::Answer));
    s.see(Observation::Response {
        status: 200,
        reason: "OK",
    });
    s.run.set_rate(8000);
    s.frames(&LOUD, 300);
    s.see(Observation::Ended {
        by_far_end: true,
        why: "BYE from the far end",
    });
    assert!(s.run.passed(), "{:?}", s.run.reports());
    assert_eq!(s.verdicts().len(), 5);
}

#[test]
fn a_callee_names_what_the_invite_lacked() {
    let mut s = callee(
        "  - expect_incoming: {from: \"+12065550100\", headers: {X-Agent: \"7\"}}\n  - answer\n",
    );
    s.see(Observation::Incoming(&invite(
        "+12065550100",
        &[("X-Agent", "9")],
    )));
    assert!(
        s.failure().contains("X-Agent was `9`, expected `7`"),
        "{}",
        s.failure()
    );
    // The unanswered call is refused, not left ringing.
    assert_eq!(s.run.poll_command(), Some(Command::Hangup));

    let mut s = callee("  - expect_incoming: {from: \"+12065550100\"}\n");
    s.see(Observation::Incoming(&invite("+44", &[])));
    assert!(
        s.failure().contains("expected the caller +12065550100"),
        "{}",
        s.failure()
    );

    let mut s = callee("  - expect_incoming: {within: 2s}\n  - answer\n");
    s.at(2000);
    assert!(
        s.failure().contains("no INVITE within 2.0 s"),
        "{}",
        s.failure()
    );
    assert!(s.run.is_finished(), "nothing to clear without a call");
    assert_eq!(s.run.poll_command(), None);
}

#[test]
fn a_callee_rejects_with_the_status_asked() {
    let mut s = callee("  - expect: incoming\n  - reject: 486\n");
    s.see(Observation::Incoming(&invite("+1", &[])));
    assert_eq!(s.run.poll_command(), Some(Command::Reject(486)));
    s.see(Observation::Response {
        status: 486,
        reason: "Busy Here",
    })
    .see(Observation::Ended {
        by_far_end: false,
        why: "we rejected it with 486",
    });
    assert!(s.run.passed(), "{:?}", s.run.reports());
}

#[test]
fn a_caller_that_gives_up_while_the_callee_rings_fails_the_answer() {
    let mut s = callee("  - expect: incoming\n  - ring: 5s\n  - answer\n");
    s.see(Observation::Incoming(&invite("+1", &[])));
    s.at(1000).see(Observation::Ended {
        by_far_end: true,
        why: "cancelled by the caller",
    });
    s.at(4000);
    assert!(
        s.failure().contains("ended before an answer"),
        "{}",
        s.failure()
    );
}

#[test]
fn early_media_is_heard_before_the_answer_and_sending_still_waits_for_it() {
    // A 183 with SDP started the media: listening steps run while the far end rings.
    let mut s = Sim::new(
        "  - expect: {sip_status: 183}\n  - expect_audio: {min_ms: 400, within: 3s}\n  - expect: answered\n  - expect_silence: {min_ms: 200}\n",
    );
    // The caller starts the media before it reports the response (as caller.rs does).
    s.run.set_rate(8000);
    s.see(Observation::Response {
        status: 183,
        reason: "Session Progress",
    });
    s.frames(&LOUD, 420);
    assert_eq!(s.verdicts(), vec![&Verdict::Passed, &Verdict::Passed]);
    s.at(1000).see(Observation::Response {
        status: 200,
        reason: "OK",
    });
    s.frames(&QUIET, 220);
    assert_eq!(
        s.verdicts(),
        vec![&Verdict::Passed; 4],
        "{:?}",
        s.run.reports()
    );

    // Without media before the answer, listening fails at once; so does sending with it.
    for (steps, media) in [
        (
            "  - expect: ringing\n  - expect_audio: {min_ms: 400}\n",
            false,
        ),
        ("  - expect: ringing\n  - send_digits: \"1\"\n", true),
    ] {
        let mut s = Sim::new(steps);
        s.see(Observation::Response {
            status: 180,
            reason: "Ringing",
        });
        if media {
            s.run.set_rate(8000);
        }
        s.at(1);
        assert_eq!(s.failure(), "the call is not answered", "{steps}");
    }
}
