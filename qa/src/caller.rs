//! One scripted caller: the IO shell around [`ScenarioRun`]. It places the call through the
//! dialer, negotiates media, sends what the scenario plays, says and presses through the
//! node's pacer, feeds what it hears back into the run, and records both directions to a
//! stereo WAV (left: what the far end sent, right: what the caller sent).

use super::dialer::{CallSignal, Dial, Dialer, IncomingInvite};
use super::run::{Command, Observation, ScenarioRun, StepReport};
use super::scenario::{DtmfMode, Scenario, Silence, SrtpMode};
use sma_media::codec::AudioCodec;
use sma_media::leg::{spawn_receiver, LegConfig, LegEvent, LegSockets, PortPool, Quality};
use sma_media::output::{LegOutput, OutputControl};
use sma_media::pacer::{FrameSource, Pacer, StreamHandle};
use sma_media::prompt::{EncodedPrompt, PromptCache, PromptSource};
use sma_media::record::{CallRecorder, Track};
use sma_media::rtp::{RtpSender, SendCounters};
use sma_media::source::{digit_sequence, PcmSource};
use sma_media::tts::{self, SpeechRequest, Synthesizer, TextType};
use sma_sip::auth::Credentials;
use sma_sip::message::{Headers, NameAddr, Uri};
use sma_sip::sdp::{Direction, LocalMedia, SdpSession, SessionDescription};
use sma_sip::ua::{CallHandle, EndReason};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What every caller of a run shares.
pub struct Shared {
    pub pacer: Pacer,
    pub prompts: PromptCache,
    pub tts: Arc<dyn Synthesizer>,
    pub ports: Arc<PortPool>,
    /// Where recordings go; `None`: not recorded.
    pub record_dir: Option<PathBuf>,
}

impl Shared {
    pub fn new(
        tts: Arc<dyn Synthesizer>,
        rtp_ports: (u16, u16),
        record_dir: Option<PathBuf>,
        ptime: u32,
    ) -> Shared {
        Shared {
            pacer: Pacer::start(),
            prompts: PromptCache::new(64, ptime),
            tts,
            ports: PortPool::new(rtp_ports),
            record_dir,
        }
    }
}

/// How one call went.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub reports: Vec<StepReport>,
    pub passed: bool,
    /// INVITE to 2xx.
    pub setup: Option<Duration>,
    /// The last response to the INVITE.
    pub final_response: Option<(u16, String)>,
    /// The negotiated codec, e.g. `PCMU/8000`.
    pub codec: Option<String>,
    pub quality: Option<Quality>,
    pub packets_received: u64,
    pub recording: Option<PathBuf>,
    /// The call could not be placed at all (no media port, dialer gone).
    pub error: Option<String>,
    pub duration: Duration,
}

impl CallOutcome {
    fn error(why: String) -> CallOutcome {
        CallOutcome {
            reports: Vec::new(),
            passed: false,
            setup: None,
            final_response: None,
            codec: None,
            quality: None,
            packets_received: 0,
            recording: None,
            error: Some(why),
            duration: Duration::ZERO,
        }
    }
}

/// The Request-URI a scenario dials.
pub fn target_uri(scenario: &Scenario, server: &str) -> Result<Uri, String> {
    let to = &scenario.call.to;
    let text = if to.contains(':') {
        to.clone()
    } else {
        format!("sip:{to}@{server};user=phone")
    };
    Uri::parse(&text).map_err(|e| format!("`{text}`: {e}"))
}

enum Msg {
    Signal(CallSignal),
    Leg(LegEvent),
    Played(u64),
    Outgoing(Vec<i16>),
    Speech(u64, Result<Arc<EncodedPrompt>, String>),
}

struct Media {
    codec: AudioCodec,
    payload_type: u8,
    telephone_event: Option<u8>,
    ptime: u32,
    output: OutputControl,
    stream: StreamHandle,
    events: mpsc::Receiver<LegEvent>,
    receiver: tokio::task::JoinHandle<()>,
}

fn random_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// Which end of the call this is, and what it needs to set the call up.
enum Side {
    /// Our INVITE is out; the 2xx carries the answer to `offer`.
    Caller {
        call: CallHandle,
        offer: SessionDescription,
        /// Our SDES keys, when the offer carries them.
        srtp: Option<Box<sma_net::sdes::Offered>>,
    },
    /// Listening: the first INVITE arrives on `invites`; then `call` and its offer.
    Callee {
        invites: mpsc::Receiver<IncomingInvite>,
        call: Option<(CallHandle, Vec<u8>)>,
        /// We refused the call ourselves (a `reject` step or an unusable offer).
        rejected: bool,
    },
}

impl Side {
    fn call(&self) -> Option<CallHandle> {
        match self {
            Side::Caller { call, .. } => Some(*call),
            Side::Callee { call, .. } => call.as_ref().map(|c| c.0),
        }
    }
}

/// Places call number `index` of a run and works through the scenario.
pub async fn place_call(
    scenario: Arc<Scenario>,
    uri: Uri,
    dialer: Dialer,
    shared: Arc<Shared>,
    index: u64,
) -> CallOutcome {
    let began = Instant::now();
    let ip = dialer.local.ip();
    let sockets = match shared.ports.bind(ip) {
        Ok(s) => s,
        Err(e) => return CallOutcome::error(format!("media ports: {e}")),
    };
    let mut local = local_media(&scenario, ip, &sockets);
    let srtp = if scenario.media.srtp == SrtpMode::Off {
        None
    } else {
        match sma_net::sdes::offer(&scenario.srtp_suites) {
            Ok(offered) => {
                local.crypto = offered.lines.clone();
                Some(Box::new(offered))
            }
            Err(why) => return CallOutcome::error(format!("SRTP keys: {why}")),
        }
    };
    let mut sdp = SdpSession::new(u64::from(random_u32()));
    let offer = sdp.offer(&local);
    let from = match &scenario.call.from {
        Some(f) => NameAddr::parse(&format!("<{f}>")).or_else(|_| NameAddr::parse(f)),
        None => NameAddr::parse(&format!("<sip:sma-call@{}>", dialer.local)),
    };
    let Ok(from) = from else {
        return CallOutcome::error("call.from is not a SIP URI".into());
    };
    let mut headers = Headers::new();
    for (name, value) in &scenario.call.headers {
        headers.push(name.as_str(), value.as_str());
    }
    let (signals_tx, signals) = mpsc::unbounded_channel();
    let dial = Dial {
        target: uri,
        from,
        offer: offer.to_bytes(),
        headers,
        credentials: scenario.call.credentials.as_ref().map(|c| Credentials {
            username: c.username.clone(),
            password: c.password.clone(),
        }),
    };
    let Some(call) = dialer.invite(dial, signals_tx).await else {
        return CallOutcome::error("the SIP dialer stopped".into());
    };
    let side = Side::Caller { call, offer, srtp };
    converse(
        scenario,
        dialer,
        shared,
        index,
        began,
        (sockets, local, sdp),
        side,
        Some(signals),
    )
    .await
}

/// Takes the one call a callee scenario expects on `dialer` (from [`Dialer::listen`]) and
/// works through the scenario: ring, answer or reject, then the usual steps.
pub async fn take_call(
    scenario: Arc<Scenario>,
    dialer: Dialer,
    invites: mpsc::Receiver<IncomingInvite>,
    shared: Arc<Shared>,
) -> CallOutcome {
    let began = Instant::now();
    let ip = dialer.local.ip();
    let sockets = match shared.ports.bind(ip) {
        Ok(s) => s,
        Err(e) => return CallOutcome::error(format!("media ports: {e}")),
    };
    let local = local_media(&scenario, ip, &sockets);
    let sdp = SdpSession::new(u64::from(random_u32()));
    let side = Side::Callee {
        invites,
        call: None,
        rejected: false,
    };
    converse(
        scenario,
        dialer,
        shared,
        1,
        began,
        (sockets, local, sdp),
        side,
        None,
    )
    .await
}

fn local_media(scenario: &Scenario, ip: std::net::IpAddr, sockets: &LegSockets) -> LocalMedia {
    LocalMedia {
        address: ip,
        port: sockets.rtp_port(),
        codecs: scenario.codecs.clone(),
        telephone_event: scenario.media.telephone_event,
        ptime: scenario.media.ptime,
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        require_srtp: scenario.media.srtp == SrtpMode::Required,
    }
}

/// The call's media and what it heard, whichever side set it up.
struct Session {
    scenario: Arc<Scenario>,
    shared: Arc<Shared>,
    index: u64,
    tx: mpsc::UnboundedSender<Msg>,
    media: Option<Media>,
    recorder: Option<CallRecorder>,
    recording: Option<PathBuf>,
    quality: Option<Quality>,
    packets: u64,
    codec_name: Option<String>,
}

impl Session {
    /// Starts media on what offer/answer settled; an error goes to the run.
    fn start(
        &mut self,
        sockets: &LegSockets,
        m: &sma_sip::sdp::NegotiatedMedia,
        srtp: Option<&sma_net::sdes::SrtpKeys>,
        run: &mut ScenarioRun,
        now: Instant,
    ) {
        let codec = sma_net::audio_codec(m.codec.codec);
        self.codec_name = Some(format!(
            "{}/{}",
            m.codec.codec.encoding(),
            m.codec.codec.clock_rate()
        ));
        if let Some(dir) = &self.shared.record_dir {
            let path = dir.join(format!(
                "{}-{}.wav",
                sanitize(&self.scenario.name),
                self.index
            ));
            match CallRecorder::create(&path, Track::Both, codec.sample_rate()) {
                Ok(r) => {
                    self.recorder = Some(r);
                    self.recording = Some(path);
                }
                Err(e) => tracing::warn!(error = %e, "cannot record the call"),
            }
        }
        match start_media(
            &self.shared,
            sockets,
            m,
            codec,
            &self.tx,
            self.recorder.is_some(),
            srtp,
        ) {
            Ok(started) => {
                if self.scenario.media.silence == Silence::Suppress {
                    started.output.set_silence_suppression(true);
                }
                run.set_rate(codec.sample_rate());
                self.media = Some(started);
            }
            Err(why) => run.handle(Observation::MediaFailed(&why), now),
        }
    }

    /// A local completion or a media event.
    fn on_msg(&mut self, msg: Msg, run: &mut ScenarioRun, now: Instant) {
        match msg {
            Msg::Leg(LegEvent::Audio { samples, .. }) => {
                self.packets += 1;
                if let Some(r) = self.recorder.as_mut() {
                    let _ = r.incoming(&samples);
                }
                run.handle(Observation::Audio(&samples), now);
            }
            Msg::Leg(LegEvent::Digit { digit, .. }) => {
                run.handle(Observation::Digit(digit.as_char()), now);
            }
            Msg::Leg(LegEvent::Quality(q)) => self.quality = Some(q),
            Msg::Leg(_) | Msg::Signal(_) => {}
            Msg::Played(id) => run.handle(Observation::Done(id), now),
            Msg::Outgoing(samples) => {
                if let Some(r) = self.recorder.as_mut() {
                    let _ = r.outgoing(&samples);
                }
            }
            Msg::Speech(id, result) => match (result, self.media.as_ref()) {
                (Ok(prompt), Some(m)) => {
                    let source =
                        PromptSource::new(prompt.clone(), m.payload_type, 1, 0, prompt.ptime_ms);
                    m.output.play(id, Box::new(source));
                }
                (Err(why), _) => {
                    tracing::warn!(%why, "speech synthesis failed");
                    // The step's deadline reports it; play nothing.
                }
                (Ok(_), None) => {}
            },
        }
    }

    /// Plays, says or presses what the run asked for.
    fn media_command(&mut self, command: Command) {
        let Some(m) = self.media.as_ref() else {
            return;
        };
        match command {
            Command::Play { id, step } => {
                if let Some(audio) = self.scenario.audio.get(&step) {
                    match audio.at_rate(m.codec.sample_rate()).and_then(|pcm| {
                        PcmSource::new(pcm, m.codec, m.payload_type, m.ptime)
                            .map_err(|e| e.to_string())
                    }) {
                        Ok(source) => {
                            m.output.play(id, Box::new(source));
                        }
                        Err(why) => tracing::warn!(%why, "cannot play"),
                    }
                }
            }
            Command::Say { id, text, voice } => {
                let (shared, tx, codec) = (self.shared.clone(), self.tx.clone(), m.codec);
                tokio::task::spawn_blocking(move || {
                    let request = SpeechRequest {
                        text,
                        text_type: TextType::Text,
                        voice_id: voice,
                        language_code: None,
                    };
                    let speech = tts::cached(&shared.prompts, shared.tts.as_ref(), &request, codec)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Speech(id, speech));
                });
            }
            Command::SendDigits {
                id,
                digits,
                mode,
                duration_ms,
                gap_ms,
            } => match digit_source(m, &digits, mode, duration_ms, gap_ms) {
                Ok(source) => {
                    m.output.play(id, source);
                }
                Err(why) => tracing::warn!(%why, "cannot send digits"),
            },
            Command::Hangup | Command::Ring | Command::Answer | Command::Reject(_) => {}
        }
    }

    fn finish(mut self, run: &ScenarioRun, began: Instant) -> CallOutcome {
        if let Some(m) = self.media.take() {
            stop_media(m);
        }
        if let Some(r) = self.recorder.take() {
            if let Err(e) = r.finish() {
                tracing::warn!(error = %e, "recording not saved");
                self.recording = None;
            }
        }
        CallOutcome {
            reports: run.reports().to_vec(),
            passed: run.passed(),
            setup: run.setup_time(),
            final_response: run.final_response().cloned(),
            codec: self.codec_name,
            quality: self.quality,
            packets_received: self.packets,
            recording: self.recording,
            error: None,
            duration: began.elapsed(),
        }
    }
}

/// Works through the scenario on one call, from either side.
#[allow(clippy::too_many_arguments)]
async fn converse(
    scenario: Arc<Scenario>,
    dialer: Dialer,
    shared: Arc<Shared>,
    index: u64,
    began: Instant,
    (sockets, local, mut sdp): (LegSockets, LocalMedia, SdpSession),
    mut side: Side,
    mut signals: Option<mpsc::UnboundedReceiver<CallSignal>>,
) -> CallOutcome {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut run = ScenarioRun::new(scenario.clone(), began);
    let mut session = Session {
        scenario: scenario.clone(),
        shared,
        index,
        tx,
        media: None,
        recorder: None,
        recording: None,
        quality: None,
        packets: 0,
        codec_name: None,
    };

    while !run.is_finished() {
        let deadline = run.poll_timeout();
        // Signals, media events and local completions are polled here directly: no
        // forwarding tasks, one wake-up per message (load mode runs thousands of these).
        let leg_events = async {
            match session.media.as_mut() {
                Some(m) => m.events.recv().await,
                None => std::future::pending().await,
            }
        };
        let call_signals = async {
            match signals.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let invites = async {
            match &mut side {
                Side::Callee {
                    invites,
                    call: None,
                    ..
                } => invites.recv().await,
                _ => std::future::pending().await,
            }
        };
        let mut invite = None;
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            Some(signal) = call_signals => Some(Msg::Signal(signal)),
            Some(event) = leg_events => Some(Msg::Leg(event)),
            Some(incoming) = invites => {
                invite = Some(incoming);
                None
            }
            _ = sma_net::time::sleep_until(deadline) => {
                run.handle_timeout(Instant::now());
                None
            }
        };
        let now = Instant::now();
        if let (Some(i), Side::Callee { call, .. }) = (invite, &mut side) {
            *call = Some((i.call, i.offer));
            signals = Some(i.signals);
            run.handle(Observation::Incoming(&i.incoming), now);
        }
        match msg {
            Some(Msg::Signal(CallSignal::Response {
                status,
                reason,
                body,
            })) => {
                if let Side::Caller { offer, srtp, .. } = &side {
                    // A provisional answer with SDP is early media (ringback, an announcement):
                    // a phone plays it, so the caller hears it from here on (RFC 3960 §2).
                    let early = (180..200).contains(&status) && !body.is_empty();
                    let answer = early || (200..300).contains(&status);
                    if answer && session.media.is_none() {
                        let negotiated = SessionDescription::parse(&body)
                            .map_err(|e| format!("unparseable SDP: {e}"))
                            .and_then(|answer| {
                                sdp.accept_answer(offer, &answer, &local)
                                    .map_err(|e| e.to_string())
                            })
                            .and_then(|m| {
                                let keys = match (m.secure, srtp) {
                                    (true, Some(offered)) => {
                                        Some(sma_net::sdes::accept(offered, &m.remote_crypto)?)
                                    }
                                    _ => None,
                                };
                                Ok((m, keys))
                            });
                        match negotiated {
                            Ok((m, keys)) => {
                                session.start(&sockets, &m, keys.as_ref(), &mut run, now)
                            }
                            Err(why) => run.handle(Observation::MediaFailed(&why), now),
                        }
                    }
                }
                run.handle(
                    Observation::Response {
                        status,
                        reason: &reason,
                    },
                    now,
                );
            }
            Some(Msg::Signal(CallSignal::Ended(reason))) => {
                let we_rejected = matches!(side, Side::Callee { rejected: true, .. });
                let (by_far_end, why) = match &reason {
                    EndReason::RemoteBye => (true, "BYE from the far end".to_owned()),
                    EndReason::LocalBye => (false, "our BYE".to_owned()),
                    EndReason::Cancelled => (true, "cancelled by the caller".to_owned()),
                    EndReason::Rejected(s) if we_rejected => {
                        (false, format!("we rejected it with {s}"))
                    }
                    EndReason::Rejected(s) => (true, format!("rejected with {s}")),
                    EndReason::AckTimeout => (true, "no ACK".to_owned()),
                    EndReason::SessionExpired => (true, "session expired".to_owned()),
                    EndReason::Timeout => (true, "no response (timeout)".to_owned()),
                    EndReason::Unreachable(why) => (true, format!("not delivered: {why}")),
                };
                // Our own CANCEL ends a call we placed.
                let by_far_end = by_far_end
                    && !(matches!(side, Side::Caller { .. })
                        && matches!(reason, EndReason::Cancelled));
                if let Some(m) = session.media.take() {
                    stop_media(m);
                }
                run.handle(
                    Observation::Ended {
                        by_far_end,
                        why: &why,
                    },
                    now,
                );
            }
            Some(other) => session.on_msg(other, &mut run, now),
            None => {}
        }
        while let Some(command) = run.poll_command() {
            match command {
                Command::Hangup => {
                    if let Some(call) = side.call() {
                        dialer.hangup(call);
                    }
                }
                Command::Ring => {
                    if let Some(call) = side.call() {
                        dialer.ring(call);
                    }
                }
                Command::Reject(status) => {
                    if let Side::Callee {
                        call: Some((call, _)),
                        rejected,
                        ..
                    } = &mut side
                    {
                        *rejected = true;
                        dialer.reject(*call, status);
                    }
                }
                Command::Answer => {
                    let Side::Callee {
                        call: Some((call, offer)),
                        rejected,
                        ..
                    } = &mut side
                    else {
                        continue;
                    };
                    let answered = SessionDescription::parse(offer)
                        .map_err(|e| format!("the INVITE's SDP offer: {e}"))
                        .and_then(|offer| {
                            let mut local = local.clone();
                            let keys = if scenario.media.srtp == SrtpMode::Off {
                                None
                            } else {
                                sma_net::sdes::answer(&offer, None, &scenario.srtp_suites)?
                            };
                            local.crypto = keys.iter().map(|k| k.line.clone()).collect();
                            let (answer, m) =
                                sdp.answer(&offer, &local).map_err(|e| e.to_string())?;
                            let keys = keys.filter(|_| m.secure).map(|k| k.keys);
                            Ok((answer, m, keys))
                        });
                    match answered {
                        Ok((answer, m, keys)) => {
                            dialer.answer(*call, answer.to_bytes());
                            session.start(&sockets, &m, keys.as_ref(), &mut run, now);
                            run.handle(
                                Observation::Response {
                                    status: 200,
                                    reason: "OK",
                                },
                                now,
                            );
                        }
                        Err(why) => {
                            // Refused like a phone would; the run reports why.
                            *rejected = true;
                            dialer.reject(*call, 488);
                            run.handle(Observation::MediaFailed(&why), now);
                        }
                    }
                }
                media => session.media_command(media),
            }
        }
    }
    session.finish(&run, began)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn start_media(
    shared: &Shared,
    sockets: &LegSockets,
    m: &sma_sip::sdp::NegotiatedMedia,
    codec: AudioCodec,
    tx: &mpsc::UnboundedSender<Msg>,
    record: bool,
    srtp: Option<&sma_net::sdes::SrtpKeys>,
) -> Result<Media, String> {
    let played = tx.clone();
    let ptime = m.ptime;
    let (output, control) = LegOutput::new(
        codec,
        m.codec.payload_type,
        ptime,
        Box::new(move |id| {
            let _ = played.send(Msg::Played(id));
        }),
    )
    .map_err(|e| format!("codec: {e}"))?;
    if record {
        let outgoing = tx.clone();
        control
            .set_tap(Some(Box::new(move |s: &[i16]| {
                let _ = outgoing.send(Msg::Outgoing(s.to_vec()));
            })))
            .map_err(|e| format!("codec: {e}"))?;
    }
    let counters = Arc::new(SendCounters::default());
    let ssrc = random_u32();
    let mut sender = RtpSender::new(ssrc, random_u32() as u16, random_u32());
    sender.share(counters.clone());
    let srtp = srtp.map(|k| sma_media::leg::LegSrtp::new(&k.ours, &k.theirs));
    let stream = shared.pacer.add_protected(
        sockets.rtp.clone(),
        m.remote,
        sender,
        Box::new(output),
        Duration::from_millis(u64::from(ptime)),
        Instant::now(),
        srtp.as_ref().map(|s| s.outbound.clone()),
    );
    let retarget = stream.clone();
    let config = LegConfig {
        codec,
        audio_payload_type: m.codec.payload_type,
        telephone_event: m.telephone_event,
        ptime_ms: ptime,
        rtcp_mux: m.rtcp_mux,
        remote: m.remote,
        inactivity: Duration::from_secs(3600),
        rtcp_interval: Duration::from_secs(5),
        // Digits from a far end without telephone-events come in-band.
        inband_dtmf: m.telephone_event.is_none(),
        control: Default::default(),
        srtp,
        ssrc,
        sent: Some(counters),
    };
    let (events, receiver) = spawn_receiver(
        sockets,
        config,
        Some(Arc::new(move |addr| retarget.retarget(addr))),
    )
    .map_err(|e| format!("media sockets: {e}"))?;
    Ok(Media {
        codec,
        payload_type: m.codec.payload_type,
        telephone_event: m.telephone_event,
        ptime,
        output: control,
        stream,
        events,
        receiver,
    })
}

fn stop_media(m: Media) {
    m.stream.stop();
    m.receiver.abort();
}

/// Digits as RFC 4733 events when asked and negotiated, in-band tones otherwise.
fn digit_source(
    m: &Media,
    digits: &str,
    mode: DtmfMode,
    tone_ms: u32,
    gap_ms: u32,
) -> Result<Box<dyn FrameSource>, String> {
    let events = match mode {
        DtmfMode::Rfc4733 => m.telephone_event,
        DtmfMode::Inband => None,
    };
    digit_sequence(
        digits,
        tone_ms,
        gap_ms,
        m.codec,
        m.payload_type,
        events,
        m.ptime,
    )
    .map_err(|e| e.to_string())
}
