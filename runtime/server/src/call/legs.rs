//! One leg's media and the actions that run on one leg: answering, the leg's RTP stream and
//! receive task, media following offer/answer, prompts and speech, digit collection,
//! recordings, digits sent, noise suppression.

use super::actor::{rand_u32, Actor, CallRecording, Media, MediaUpdate, Msg, Running, SipCommand};
use super::digits::{CollectSpec, Collector, Listener};
use sma_actions::{
    Action, AudioSource, CallRecordingDestination, DigitCollection, DigitsPattern,
    RecordingDestination, SpeechParameters,
};
use sma_engine::{ActionCommand, ActionResult, Outcome};
use sma_media::bridge::{Destination, ReceiverControl, RelayGate};
use sma_media::codec::AudioCodec;
use sma_media::dtmf::Digit;
use sma_media::leg::{spawn_receiver, LegConfig, LegEvent};
use sma_media::output::LegOutput;
use sma_media::pacer::FrameSource;
use sma_media::prompt::{EncodedPrompt, PromptError, PromptSource};
use sma_media::record::{CallRecorder, RecordEnd, RecordLimits, Recorder, Track};
use sma_media::rtp::{RtpSender, SendCounters};
use sma_media::source::digit_sequence;
use sma_media::storage;
use sma_media::tts::{self, SpeechRequest, TextType};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

use super::actor::CallContext;

impl Actor {
    /// Answers leg `i` and starts its media (the first media action does this, §1.3).
    pub(super) fn ensure_answered(&mut self, i: usize) -> Result<(), String> {
        if self.legs[i].ended {
            return Err("the leg has ended".into());
        }
        if self.legs[i].answered {
            return Ok(());
        }
        if self.legs[i].media.is_none() {
            self.start_media(i)?;
        }
        let leg = &mut self.legs[i];
        leg.answered = true;
        leg.record.answered();
        let _ = self.commands.send(SipCommand::Answer {
            call: leg.call,
            bridged_at: self.bridged_at.take(),
        });
        let id = leg.id.clone();
        self.engine.on_leg_answered(&id);
        Ok(())
    }

    /// Starts sending and receiving on leg `i` with its negotiated media.
    pub(super) fn start_media(&mut self, i: usize) -> Result<(), String> {
        let leg = &self.legs[i];
        let (Some(m), Some(sockets)) = (leg.negotiated.clone(), leg.sockets.as_ref()) else {
            return Err("no media for the leg".into());
        };
        let tx = self.tx.clone();
        let (output, control) = LegOutput::new(
            m.codec,
            m.payload_type,
            m.ptime,
            Box::new(move |id| {
                let _ = tx.send(Msg::Played(i, id));
            }),
        )
        .map_err(|e| format!("codec: {e}"))?;
        let counters = Arc::new(SendCounters::default());
        let ssrc: u32 = rand_u32();
        let mut sender = RtpSender::new(ssrc, rand_u32() as u16, rand_u32());
        sender.share(counters.clone());
        let srtp = m
            .srtp
            .as_ref()
            .map(|k| sma_media::leg::LegSrtp::new(&k.ours, &k.theirs));
        let stream = self.ctx.pacer.add_protected(
            sockets.rtp.clone(),
            m.remote,
            sender,
            Box::new(output),
            Duration::from_millis(u64::from(m.ptime)),
            Instant::now(),
            srtp.as_ref().map(|s| s.outbound.clone()),
        );
        let destination = Destination::new(m.remote);
        let retarget = (stream.clone(), destination.clone());
        let receiver_control = ReceiverControl::new(false);
        receiver_control.set_denoise(leg.voice_focus);
        let config = LegConfig {
            codec: m.codec,
            audio_payload_type: m.payload_type,
            telephone_event: m.telephone_event,
            ptime_ms: m.ptime,
            rtcp_mux: m.rtcp_mux,
            remote: m.remote,
            inactivity: self.ctx.inactivity,
            rtcp_interval: Duration::from_secs(5),
            inband_dtmf: false,
            control: receiver_control.clone(),
            ssrc,
            sent: Some(counters.clone()),
            srtp: srtp.clone(),
        };
        let (mut events, receiver) = spawn_receiver(
            sockets,
            config,
            Some(Arc::new(move |addr| {
                retarget.0.retarget(addr);
                retarget.1.set(addr);
            })),
        )
        .map_err(|e| format!("media sockets: {e}"))?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if tx.send(Msg::Leg(i, e)).is_err() {
                    return;
                }
            }
        });
        let held = !m.send;
        control.set_held(held);
        self.legs[i].media = Some(Media {
            output: control,
            stream,
            receiver,
            held,
            control: receiver_control,
            ssrc,
            counters,
            destination,
            gate: RelayGate::default(),
            srtp,
        });
        self.update_audio_delivery(i);
        Ok(())
    }

    /// Whether leg `i`'s received audio must reach the actor: a recording of it is running.
    pub(super) fn update_audio_delivery(&mut self, i: usize) {
        let recording_running =
            matches!(&self.running, Some((l, Running::Record { .. })) if *l == i);
        let leg = &self.legs[i];
        let call_recording = leg.recording.as_ref().is_some_and(|r| !r.stopped);
        if let Some(m) = &leg.media {
            m.control
                .set_deliver_audio(recording_running || call_recording);
        }
    }

    /// Sends what leg `i`'s party hears to its call recording.
    pub(super) fn tap_outgoing(&self, i: usize) {
        let tx = self.tx.clone();
        if let Some(m) = &self.legs[i].media {
            let _ = m.output.set_tap(Some(Box::new(move |s: &[i16]| {
                let _ = tx.send(Msg::Outgoing(i, s.to_vec()));
            })));
        }
    }

    pub(super) fn record_outgoing(&mut self, i: usize, samples: Vec<i16>) {
        let Some(r) = self.legs.get_mut(i).and_then(|l| l.recording.as_mut()) else {
            return;
        };
        if r.stopped {
            return;
        }
        let s = if r.paused {
            vec![0; samples.len()]
        } else {
            samples
        };
        if let Err(e) = r.recorder.outgoing(&s) {
            warn!(%e, "call recording write failed");
        }
    }

    /// A new offer/answer on leg `i`: media follows the signalling. A new address retargets
    /// the stream; hold and resume stop and restart sending (what plays keeps its time); a new
    /// codec or packet time restarts sending and receiving with it (what was playing ends
    /// there), and the bridge (if any) is connected again for the new media.
    pub(super) fn on_media_update(&mut self, i: usize, update: MediaUpdate) {
        let Some(old) = self.legs[i].negotiated.clone() else {
            return;
        };
        let rebuild = old.codec != update.codec
            || old.payload_type != update.payload_type
            || old.ptime != update.ptime
            || old.telephone_event != update.telephone_event
            || old.rtcp_mux != update.rtcp_mux
            || old.srtp != update.srtp;
        info!(
            leg = %self.legs[i].id,
            remote = %update.remote,
            codec = ?update.codec,
            ptime = update.ptime,
            send = update.send,
            rebuild,
            "media follows the new offer/answer"
        );
        self.legs[i].negotiated = Some(update.clone());
        if self.legs[i].media.is_none() {
            // Not answered yet: the media starts with these when it does.
            return;
        }
        if rebuild {
            let playing = self.legs[i].playing.take();
            let bridged = self.bridge.is_some_and(|(a, b)| a == i || b == i);
            if bridged {
                self.disconnect_bridge();
            }
            if let Some(media) = self.legs[i].media.take() {
                media.stream.stop();
                media.receiver.abort();
            }
            if let Err(why) = self.start_media(i) {
                warn!(%why, "media could not restart with the new codec");
                self.legs[i].record.invocation_failure(&why);
                self.hang_up(i, 488);
                return;
            }
            if self.legs[i]
                .recording
                .as_ref()
                .is_some_and(|r| !r.stopped && r.taps_outgoing)
            {
                self.tap_outgoing(i);
            }
            if bridged {
                self.connect_bridge();
            }
            // What was playing was encoded for the old codec: it ends here.
            if let Some(id) = playing {
                let _ = self.tx.send(Msg::Played(i, id));
                self.legs[i].playing = Some(id);
            }
            return;
        }
        if let Some(media) = self.legs[i].media.as_mut() {
            if !update.remote.ip().is_unspecified() {
                media.stream.retarget(update.remote);
                media.destination.set(update.remote);
            }
            if media.held == update.send {
                media.held = !update.send;
                media.output.set_held(media.held);
                info!(held = media.held, "hold changed");
            }
        }
        self.refresh_bridge();
    }

    pub(super) fn codec(&self, i: usize) -> AudioCodec {
        self.legs[i]
            .negotiated
            .as_ref()
            .map_or(AudioCodec::Pcmu, |m| m.codec)
    }

    /// Plays `source` on leg `i`'s output, replacing what played (and, while bridged, the
    /// other party's audio into this leg until it ends).
    pub(super) fn play(&mut self, i: usize, source: Box<dyn FrameSource>) -> Option<u64> {
        let id = self.next_play;
        self.next_play += 1;
        self.legs[i].playing = Some(id);
        self.refresh_bridge();
        self.legs[i].media.as_ref()?.output.play(id, source);
        Some(id)
    }

    pub(super) fn play_prompt(
        &mut self,
        i: usize,
        prompt: &Arc<EncodedPrompt>,
        repeat: u32,
    ) -> Option<u64> {
        let pt = self.legs[i]
            .negotiated
            .as_ref()
            .map_or(0, |m| m.payload_type);
        let ptime = prompt.ptime_ms;
        self.play(
            i,
            Box::new(PromptSource::new(prompt.clone(), pt, repeat, 0, ptime)),
        )
    }

    /// Stops what leg `i` plays for an action (barge-in, digits done).
    pub(super) fn stop_output(&mut self, i: usize) {
        if let Some(id) = self.legs[i].playing.take() {
            if let Some(m) = &self.legs[i].media {
                m.output.stop_if(id);
            }
        }
        self.refresh_bridge();
    }

    pub(super) fn start(&mut self, command: ActionCommand) {
        let id = command.id;
        let name = command.action.name();
        debug!(action = name, id, leg = %command.call_id, "starting action");
        if let Action::ModifyChimeMeetingAttendees(m) = &command.action {
            let m = m.clone();
            return self.modify_attendees(id, &m);
        }
        if self.is_meeting_leg(&command.call_id) {
            // LEG-B of a meeting join: hanging it up leaves the meeting; nothing else runs
            // on the meeting's side.
            return match &command.action {
                Action::Hangup(_) => {
                    self.engine.on_action_done(id, Outcome::Silent);
                    self.leave_meeting(0);
                }
                _ => self.fail(
                    id,
                    "InvalidActionParameter",
                    "CallId or ParticipantTag parameter for action is invalid.",
                ),
            };
        }
        let Some(i) = self.leg_index(&command.call_id) else {
            return self.fail(
                id,
                "InvalidActionParameter",
                "CallId or ParticipantTag parameter for action is invalid.",
            );
        };
        match &command.action {
            Action::Hangup(h) => {
                let code = h.sip_response_code.map_or(0, |c| c.get());
                let status = if code == 0 { 480 } else { code as u16 };
                self.engine.on_action_done(id, Outcome::Silent);
                self.hang_up(i, status);
            }
            Action::Pause(p) => {
                let ms = p.duration_in_milliseconds.get().max(0) as u64;
                self.running = Some((
                    i,
                    Running::Pause {
                        id,
                        until: Instant::now() + Duration::from_millis(ms),
                    },
                ));
            }
            Action::VoiceFocus(v) => {
                let enable = v.enable.get();
                self.legs[i].voice_focus = enable;
                if let Some(m) = &self.legs[i].media {
                    m.control.set_denoise(enable);
                }
                info!(enable, leg = %self.legs[i].id, "noise suppression");
                // A denoised direction of a bridge cannot be relayed untouched.
                self.reconnect_bridge();
                self.engine
                    .on_action_done(id, Outcome::Succeeded(ActionResult::default()));
            }
            Action::CallAndBridge(b) => {
                let b = b.clone();
                self.start_bridge(i, id, &b, command);
            }
            Action::JoinChimeMeeting(j) => {
                let j = j.clone();
                self.join_meeting(i, id, &j);
            }
            // Handled above, whichever leg it names.
            Action::ModifyChimeMeetingAttendees(_) => {}
            // The engine refuses this before it starts; a shell never sees it.
            Action::StartBotConversation(_) => {
                self.fail(
                    id,
                    "SystemException",
                    format!("System error while running action: {name} is not supported by this runtime yet."),
                );
            }
            Action::PlayAudio(_)
            | Action::PlayAudioAndGetDigits(_)
            | Action::Speak(_)
            | Action::SpeakAndGetDigits(_) => {
                if let Err(why) = self.ensure_answered(i) {
                    return self.fail(id, "SystemException", why);
                }
                self.load(i, command);
            }
            Action::ReceiveDigits(r) => {
                if let Err(why) = self.ensure_answered(i) {
                    return self.fail(id, "SystemException", why);
                }
                let Some(Some(regex)) = self.digits_regex(id, Some(&r.input_digits_regex)) else {
                    return;
                };
                let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
                let listener = Listener::new(
                    regex,
                    ms(r.in_between_digits_duration_in_milliseconds.get()),
                    ms(r.flush_digits_duration_in_milliseconds.get()),
                );
                let data =
                    sma_actions::ActionData::new("ReceiveDigits", command.parameters.to_map());
                self.legs[i].listener = Some((listener, data));
                self.engine.on_action_done(
                    id,
                    Outcome::Succeeded(ActionResult {
                        received_digits: Some(String::new()),
                        ..Default::default()
                    }),
                );
            }
            Action::SendDigits(s) => {
                if let Err(why) = self.ensure_answered(i) {
                    return self.fail(id, "SystemException", why);
                }
                let tone = s.tone_duration_in_milliseconds.map_or(250, |t| t.get()) as u32;
                match self.digit_source(i, &s.digits, tone) {
                    Ok(source) => {
                        self.running = Some((i, Running::Send { id }));
                        self.play(i, source);
                    }
                    Err(why) => self.fail(id, "SystemException", why),
                }
            }
            Action::RecordAudio(r) => {
                if let Err(why) = self.ensure_answered(i) {
                    return self.fail(id, "SystemException", why);
                }
                self.start_record(i, id, r);
            }
            Action::StartCallRecording(r) => {
                if let Err(why) = self.ensure_answered(i) {
                    return self.fail(id, "SystemException", why);
                }
                self.start_call_recording(i, id, r);
            }
            Action::StopCallRecording(_)
            | Action::PauseCallRecording(_)
            | Action::ResumeCallRecording(_) => {
                let outcome = self.control_call_recording(i, &command.action);
                self.engine.on_action_done(id, outcome);
            }
        }
    }

    /// SendDigits: RFC 4733 events when negotiated, in-band tones otherwise; `,` pauses 500 ms.
    fn digit_source(
        &self,
        i: usize,
        digits: &str,
        tone_ms: u32,
    ) -> Result<Box<dyn FrameSource>, String> {
        let Some(m) = self.legs[i].negotiated.as_ref() else {
            return Err("no media".into());
        };
        digit_sequence(
            digits,
            tone_ms,
            60,
            m.codec,
            m.payload_type,
            m.telephone_event,
            m.ptime,
        )
        .map_err(|e| e.to_string())
    }

    /// Loads the prompts or synthesizes the speech an action plays, off the async threads.
    fn load(&mut self, i: usize, command: ActionCommand) {
        let jobs: Vec<Job> = match &command.action {
            Action::PlayAudio(p) => vec![Job::File(p.audio_source.clone())],
            Action::PlayAudioAndGetDigits(p) => std::iter::once(&p.audio_source)
                .chain(&p.failure_audio_source)
                .map(|source| Job::File(source.clone()))
                .collect(),
            Action::Speak(s) => vec![Job::Speech(SpeechParameters {
                text: s.text.clone(),
                engine: s.engine,
                language_code: s.language_code.clone(),
                text_type: s.text_type,
                voice_id: s.voice_id.clone(),
            })],
            Action::SpeakAndGetDigits(s) => {
                let main = s.speech_parameters.clone();
                // Unset failure parameters inherit the prompt's (contract §3.12).
                let failure = s
                    .failure_speech_parameters
                    .as_ref()
                    .map(|f| SpeechParameters {
                        text: f.text.clone(),
                        engine: f.engine.or(main.engine),
                        language_code: f.language_code.clone().or(main.language_code.clone()),
                        text_type: f.text_type.or(main.text_type),
                        voice_id: f.voice_id.clone().or(main.voice_id.clone()),
                    });
                std::iter::once(main)
                    .chain(failure)
                    .map(Job::Speech)
                    .collect()
            }
            _ => Vec::new(),
        };
        self.load_jobs(i, command, jobs);
    }

    /// Runs `jobs` for the leg's codec on a blocking thread; `Msg::Prompts` brings them back
    /// for `command`, which waits meanwhile.
    pub(super) fn load_jobs(&mut self, i: usize, command: ActionCommand, jobs: Vec<Job>) {
        let id = command.id;
        let codec = self.codec(i);
        let ctx = self.ctx.clone();
        self.running = Some((
            i,
            Running::Loading {
                id,
                command: Box::new(command),
            },
        ));
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = jobs.into_iter().map(|job| job.run(&ctx, codec)).collect();
            let _ = tx.send(Msg::Prompts(id, result));
        });
    }

    pub(super) fn on_prompts(
        &mut self,
        id: u64,
        result: Result<Vec<Arc<EncodedPrompt>>, (String, String)>,
        now: Instant,
    ) {
        let Some((_, Running::Loading { id: running, .. })) = &self.running else {
            return;
        };
        if *running != id {
            return;
        }
        let Some((i, Running::Loading { command, .. })) = self.running.take() else {
            return;
        };
        let prompts = match result {
            Ok(p) => p,
            Err((error_type, message)) => {
                if let sma_actions::Action::CallAndBridge(_) = command.action {
                    // The ringback tone (contract §3.1's message for it).
                    return self.fail(
                        id,
                        &error_type,
                        format!("Ringtone parameter value is invalid. {message}"),
                    );
                }
                return self.fail(id, &error_type, message);
            }
        };
        if let Action::CallAndBridge(b) = &command.action {
            let b = b.clone();
            return self.dial_with_ringback(i, *command, &b, prompts.first().cloned());
        }
        let Some(first) = prompts.first().cloned() else {
            return self.fail(id, "SystemException", "nothing to play");
        };
        match &command.action {
            Action::PlayAudio(p) => {
                let repeat = p.repeat().clamp(1, 1000) as u32;
                let terminators = p
                    .playback_terminators
                    .iter()
                    .flatten()
                    .filter_map(|t| t.chars().next())
                    .collect();
                self.running = Some((i, Running::Play { id, terminators }));
                self.play_prompt(i, &first, repeat);
            }
            Action::Speak(_) => {
                self.running = Some((
                    i,
                    Running::Play {
                        id,
                        terminators: Vec::new(),
                    },
                ));
                self.play_prompt(i, &first, 1);
            }
            Action::PlayAudioAndGetDigits(p) => {
                self.start_collect(i, id, p, first, prompts.get(1).cloned(), now)
            }
            Action::SpeakAndGetDigits(p) => {
                self.start_collect(i, id, p, first, prompts.get(1).cloned(), now)
            }
            _ => {}
        }
    }

    fn start_collect(
        &mut self,
        i: usize,
        id: u64,
        p: &dyn DigitCollection,
        prompt: Arc<EncodedPrompt>,
        failure: Option<Arc<EncodedPrompt>>,
        _now: Instant,
    ) {
        let Some(regex) = self.digits_regex(id, p.input_digits_regex()) else {
            return;
        };
        let ms = |v: i64| Duration::from_millis(v.max(1) as u64);
        let spec = CollectSpec {
            min: p.min_digits().max(0) as usize,
            max: p.max_digits().clamp(1, 128) as usize,
            terminators: p
                .terminators()
                .iter()
                .filter_map(|t| t.chars().next())
                .collect(),
            in_between: ms(p.in_between_ms()),
            per_attempt: ms(p.repeat_duration_ms()),
            attempts: p.attempts().clamp(1, 100) as u32,
            regex,
        };
        self.running = Some((
            i,
            Running::Collect {
                id,
                collector: Collector::new(spec),
                prompt: Some(prompt.clone()),
                failure,
            },
        ));
        self.play_prompt(i, &prompt, 1);
    }

    /// Compiles `InputDigitsRegex`: `None` when it is invalid (the action has then failed with
    /// the contract's message), `Some(None)` when there is none.
    fn digits_regex(&mut self, id: u64, pattern: Option<&str>) -> Option<Option<DigitsPattern>> {
        match pattern.map(DigitsPattern::new).transpose() {
            Ok(regex) => Some(regex),
            Err(_) => {
                self.fail(
                    id,
                    "InvalidActionParameter",
                    "The InputDigitsRegex parameter is invalid.",
                );
                None
            }
        }
    }

    pub(super) fn on_leg_event(&mut self, i: usize, event: LegEvent, now: Instant) {
        if self.legs.get(i).is_none_or(|l| l.ended) {
            return;
        }
        match event {
            LegEvent::Audio { samples, .. } => {
                if let Some(r) = self.legs[i].recording.as_mut().filter(|r| !r.stopped) {
                    let s = if r.paused {
                        vec![0; samples.len()]
                    } else {
                        samples.clone()
                    };
                    if let Err(e) = r.recorder.incoming(&s) {
                        warn!(%e, "call recording write failed");
                    }
                }
                if let Some((
                    l,
                    Running::Record {
                        recorder: Some(recorder),
                        ..
                    },
                )) = &mut self.running
                {
                    if *l != i {
                        return;
                    }
                    match recorder.push(&samples) {
                        Ok(Some(end)) => self.finish_record(end),
                        Ok(None) => {}
                        Err(e) => {
                            let id = self.running.as_ref().map_or(0, |(_, r)| r.id());
                            self.fail(
                                id,
                                "SystemException",
                                format!("System error while running action: {e}"),
                            );
                        }
                    }
                }
            }
            LegEvent::Digit { digit, source } => {
                let c = digit.as_char();
                debug!(digit = %c, ?source, leg = %self.legs[i].id, "digit received");
                if let Some((listener, _)) = &mut self.legs[i].listener {
                    listener.digit(c, now);
                }
                match &mut self.running {
                    Some((l, Running::Play { id, terminators }))
                        if *l == i && terminators.contains(&c) =>
                    {
                        let id = *id;
                        self.running = None;
                        self.stop_output(i);
                        self.done(id, Outcome::Succeeded(ActionResult::default()));
                    }
                    Some((l, Running::Collect { collector, .. })) if *l == i => {
                        let step = collector.digit(c, now);
                        self.collect_step(step);
                    }
                    Some((
                        l,
                        Running::Record {
                            recorder: Some(recorder),
                            ..
                        },
                    )) if *l == i => {
                        if let Some(end) = recorder.digit(digit) {
                            self.finish_record(end);
                        }
                    }
                    _ => {}
                }
            }
            LegEvent::Inactive => {
                warn!(leg = %self.legs[i].id, "no RTP from the leg for the inactivity timeout; hanging up");
                let why = format!(
                    "no RTP from the far end for {} s (media inactivity timeout)",
                    self.ctx.inactivity.as_secs()
                );
                self.legs[i].record.invocation_failure(&why);
                self.hang_up(i, 408);
            }
            LegEvent::Latched(addr) => debug!(%addr, "media latched"),
            LegEvent::Quality(q) => {
                debug!(
                    mos = q.mos,
                    jitter_ms = q.jitter_ms,
                    loss = q.fraction_lost,
                    "quality"
                );
                self.legs[i].record.quality(q.mos);
            }
        }
    }

    fn start_record(&mut self, i: usize, id: u64, r: &sma_actions::RecordAudio) {
        let destination = &r.recording_destination;
        let prefix = destination.prefix.clone().unwrap_or_default();
        let key = storage::record_audio_key(
            &prefix,
            &self.engine.details().transaction_id,
            &self.legs[i].id,
            storage::now_ms(),
        );
        let path = match self.ctx.buckets.object(&destination.bucket_name, &key) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    id,
                    "InvalidActionParameter",
                    format!("RecordingDestination parameter value is invalid: {e}"),
                )
            }
        };
        let rate = self.codec(i).sample_rate();
        let max = r.duration_in_seconds.map_or(self.ctx.max_recording, |d| {
            Duration::from_secs(d.get().max(1) as u64).min(self.ctx.max_recording)
        });
        let silence = r.silence_duration_in_seconds.map(|d| {
            (
                Duration::from_secs(d.get().max(1) as u64),
                r.silence_threshold
                    .map_or(200, |t| t.get().clamp(1, 1000) as u16),
            )
        });
        let limits = RecordLimits {
            sample_rate: rate,
            max_duration: max,
            silence,
            terminators: r
                .recording_terminators
                .iter()
                .flatten()
                .filter_map(|t| t.chars().next().and_then(Digit::new))
                .collect(),
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match Recorder::create(&path, limits) {
            Ok(recorder) => {
                self.running = Some((
                    i,
                    Running::Record {
                        id,
                        recorder: Some(recorder),
                        destination: RecordingDestination {
                            r#type: "S3".into(),
                            bucket_name: destination.bucket_name.clone(),
                            prefix: None,
                            key: Some(key),
                        },
                        // A caller who sends no RTP still ends the recording on time.
                        until: Instant::now() + max + Duration::from_millis(500),
                    },
                ));
                self.update_audio_delivery(i);
            }
            Err(e) => self.fail(
                id,
                "InvalidActionParameter",
                format!("Error occurred while uploading recording to S3 bucket: {e}"),
            ),
        }
    }

    /// Ends a RecordAudio: the file is committed (fsync + rename) off the async threads, and
    /// only then is success reported.
    pub(super) fn finish_record(&mut self, end: RecordEnd) {
        let Some((
            i,
            Running::Record {
                id,
                recorder,
                destination,
                ..
            },
        )) = &mut self.running
        else {
            return;
        };
        let Some(recorder) = recorder.take() else {
            return;
        };
        let (i, id, destination) = (*i, *id, destination.clone());
        let tx = self.tx.clone();
        let terminator = match end {
            RecordEnd::Terminator(d) => Some(d.as_char().to_string()),
            _ => None,
        };
        info!(?end, "recording finished");
        tokio::task::spawn_blocking(move || {
            let result = recorder
                .finish()
                .map(|_| destination)
                .map_err(|e| e.to_string());
            let _ = tx.send(Msg::RecordingDone(id, result, terminator));
        });
        if let Some(m) = &self.legs[i].media {
            let call_recording = self.legs[i].recording.as_ref().is_some_and(|r| !r.stopped);
            m.control.set_deliver_audio(call_recording);
        }
    }

    fn start_call_recording(&mut self, i: usize, id: u64, r: &sma_actions::StartCallRecording) {
        if self.legs[i].recording_started {
            return self.fail(
                id,
                "InvalidActionParameter",
                "CallId parameter for action is invalid: call recording was already started on this leg.",
            );
        }
        let location = r.destination.location.trim_matches('/');
        let (bucket, prefix) = match location.split_once('/') {
            Some((b, p)) => (b, Some(p)),
            None => (location, None),
        };
        let key = storage::call_recording_key(
            prefix,
            &self.engine.details().transaction_id,
            &self.legs[i].id,
            storage::now_ms(),
        );
        let path = match self.ctx.buckets.object(bucket, &key) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    id,
                    "InvalidActionParameter",
                    format!("NoAccessToDestination: Error while accessing destination ({e})"),
                )
            }
        };
        let track = match r.track() {
            sma_actions::Track::Both => Track::Both,
            sma_actions::Track::Incoming => Track::Incoming,
            sma_actions::Track::Outgoing => Track::Outgoing,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let recorder = match CallRecorder::create(&path, track, self.codec(i).sample_rate()) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(
                    id,
                    "SystemException",
                    format!("NoAccessToDestination: Error while accessing destination ({e})"),
                )
            }
        };
        let taps_outgoing = matches!(track, Track::Both | Track::Outgoing);
        if taps_outgoing {
            self.tap_outgoing(i);
        }
        let location = format!("{bucket}/{key}");
        self.legs[i].recording = Some(CallRecording {
            recorder,
            location: location.clone(),
            paused: false,
            stopped: false,
            taps_outgoing,
        });
        self.legs[i].recording_started = true;
        self.update_audio_delivery(i);
        // What this party hears must pass through its output to be recorded: a bridge into
        // it is not relayed untouched while this runs.
        self.reconnect_bridge();
        self.engine.on_action_done(
            id,
            Outcome::Succeeded(ActionResult {
                call_recording_destination: Some(CallRecordingDestination {
                    r#type: "S3".into(),
                    location,
                }),
                ..Default::default()
            }),
        );
    }

    fn control_call_recording(&mut self, i: usize, action: &Action) -> Outcome {
        let Some(recording) = self.legs[i].recording.as_mut().filter(|r| !r.stopped) else {
            return Outcome::Failed {
                error_type: "InvalidActionParameter".into(),
                message: "CallId parameter for action is invalid: no call recording is in progress on this leg.".into(),
            };
        };
        match action {
            Action::PauseCallRecording(_) => recording.paused = true,
            Action::ResumeCallRecording(_) => recording.paused = false,
            _ => {
                self.stop_call_recording(i);
                self.reconnect_bridge();
            }
        }
        Outcome::Succeeded(ActionResult::default())
    }

    /// Finalizes leg `i`'s call recording (stop, or the leg's end); it cannot restart there.
    pub(super) fn stop_call_recording(&mut self, i: usize) {
        if let Some(m) = &self.legs[i].media {
            let _ = m.output.set_tap(None);
        }
        let Some(recording) = self.legs[i].recording.take() else {
            return;
        };
        self.update_audio_delivery(i);
        let location = recording.location.clone();
        tokio::task::spawn_blocking(move || match recording.recorder.finish() {
            Ok(info) => {
                info!(%location, seconds = info.duration.as_secs_f64(), "call recording delivered")
            }
            Err(e) => warn!(%location, %e, "call recording could not be finalized"),
        });
    }

    /// Stops the running action's media without reporting it.
    pub(super) fn stop_running(&mut self) {
        match self.running.take() {
            Some((
                _,
                Running::Record {
                    recorder: Some(recorder),
                    ..
                },
            )) => {
                // Keep what was recorded: a hang-up during voicemail is the usual end of one.
                tokio::task::spawn_blocking(move || {
                    let _ = recorder.finish();
                });
            }
            Some((i, Running::Play { .. }))
            | Some((i, Running::Collect { .. }))
            | Some((i, Running::Send { .. })) => self.stop_output(i),
            Some((_, Running::Bridge { .. })) => {
                self.abandon_dialing("the action was stopped");
            }
            _ => {}
        }
    }

    /// Releases leg `i`'s media: stream, receive task, recording, sockets (the ports go back
    /// to the range).
    pub(super) fn stop_media(&mut self, i: usize) {
        self.stop_call_recording(i);
        if let Some(media) = self.legs[i].media.take() {
            media.stream.stop();
            media.receiver.abort();
        }
        self.legs[i].sockets = None;
    }
}

/// A prompt or speech to prepare.
pub(super) enum Job {
    File(AudioSource),
    Speech(SpeechParameters),
}

impl Job {
    /// Runs on a blocking thread: reads and decodes a file, or synthesizes speech, through
    /// the shared cache. Errors carry the contract's error type.
    fn run(
        self,
        ctx: &CallContext,
        codec: AudioCodec,
    ) -> Result<Arc<EncodedPrompt>, (String, String)> {
        match self {
            Job::File(source) => {
                let invalid = |why: String| {
                    (
                        "InvalidAudioSource".to_owned(),
                        format!("Cannot access S3 bucket or audio file: {why}"),
                    )
                };
                if !sma_actions::is_s3(&source.r#type) {
                    return Err(invalid(format!(
                        "audio source type `{}` is not S3",
                        source.r#type
                    )));
                }
                let path = ctx
                    .buckets
                    .object(&source.bucket_name, &source.key)
                    .map_err(|e| invalid(e.to_string()))?;
                let meta = std::fs::metadata(&path)
                    .map_err(|e| invalid(format!("{}/{}: {e}", source.bucket_name, source.key)))?;
                // Identity without hashing the content: path, size and modification time.
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let identity = format!(
                    "file\u{0}{}\u{0}{}\u{0}{modified}",
                    path.display(),
                    meta.len()
                );
                ctx.prompts
                    .get_with(identity.as_bytes(), codec, || {
                        let bytes = std::fs::read(&path).map_err(|e| {
                            PromptError::Corrupt(format!("{}: {e}", path.display()))
                        })?;
                        sma_media::prompt::decode(bytes)
                    })
                    .map_err(|e| invalid(e.to_string()))
            }
            Job::Speech(p) => {
                let request = SpeechRequest {
                    text: p.text.clone(),
                    text_type: match p.text_type {
                        Some(sma_actions::TextType::Ssml) => TextType::Ssml,
                        _ => TextType::Text,
                    },
                    voice_id: p.voice_id.clone(),
                    language_code: p.language_code.clone(),
                };
                tts::cached(&ctx.prompts, ctx.tts.as_ref(), &request, codec).map_err(|e| {
                    let t = match e {
                        tts::TtsError::Engine { .. } => "SystemException",
                        _ => "InvalidActionParameter",
                    };
                    (t.to_owned(), e.to_string())
                })
            }
        }
    }
}
