//! One scripted caller: the IO shell around [`ScenarioRun`]. It places the call through the
//! dialer, negotiates media, sends what the scenario plays, says and presses through the
//! node's pacer, feeds what it hears back into the run, and records both directions to a
//! stereo WAV (left: what the far end sent, right: what the caller sent).

use super::dialer::{CallSignal, Dial, Dialer};
use super::run::{Command, Observation, ScenarioRun, StepReport};
use super::scenario::{DtmfMode, Scenario, Silence};
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
use sma_sip::ua::EndReason;
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
    let local = LocalMedia {
        address: ip,
        port: sockets.rtp_port(),
        codecs: scenario.codecs.clone(),
        telephone_event: scenario.media.telephone_event,
        ptime: scenario.media.ptime,
        direction: Direction::SendRecv,
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let (signals_tx, mut signals) = mpsc::unbounded_channel();
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
    let mut run = ScenarioRun::new(scenario.clone(), began);
    let mut media: Option<Media> = None;
    let mut recorder: Option<CallRecorder> = None;
    let mut recording = None;
    let mut quality = None;
    let mut packets = 0u64;
    let mut codec_name = None;

    while !run.is_finished() {
        let deadline = run.poll_timeout();
        // Signals, media events and local completions are polled here directly: no
        // forwarding tasks, one wake-up per message (load mode runs thousands of these).
        let leg_events = async {
            match media.as_mut() {
                Some(m) => m.events.recv().await,
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            Some(signal) = signals.recv() => Some(Msg::Signal(signal)),
            Some(event) = leg_events => Some(Msg::Leg(event)),
            _ = sma_net::time::sleep_until(deadline) => {
                run.handle_timeout(Instant::now());
                None
            }
        };
        let now = Instant::now();
        match msg {
            Some(Msg::Signal(CallSignal::Response {
                status,
                reason,
                body,
            })) => {
                if (200..300).contains(&status) && media.is_none() {
                    let negotiated = SessionDescription::parse(&body)
                        .map_err(|e| format!("unparseable SDP: {e}"))
                        .and_then(|answer| {
                            sdp.accept_answer(&offer, &answer, &local)
                                .map_err(|e| e.to_string())
                        });
                    match negotiated {
                        Ok(m) => {
                            let codec = sma_net::audio_codec(m.codec.codec);
                            codec_name = Some(format!(
                                "{}/{}",
                                m.codec.codec.encoding(),
                                m.codec.codec.clock_rate()
                            ));
                            if let Some(dir) = &shared.record_dir {
                                let path =
                                    dir.join(format!("{}-{index}.wav", sanitize(&scenario.name)));
                                match CallRecorder::create(&path, Track::Both, codec.sample_rate())
                                {
                                    Ok(r) => {
                                        recorder = Some(r);
                                        recording = Some(path);
                                    }
                                    Err(e) => tracing::warn!(error = %e, "cannot record the call"),
                                }
                            }
                            match start_media(&shared, &sockets, &m, codec, &tx, recorder.is_some())
                            {
                                Ok(started) => {
                                    if scenario.media.silence == Silence::Suppress {
                                        started.output.set_silence_suppression(true);
                                    }
                                    run.set_rate(codec.sample_rate());
                                    media = Some(started);
                                }
                                Err(why) => run.handle(Observation::MediaFailed(&why), now),
                            }
                        }
                        Err(why) => run.handle(Observation::MediaFailed(&why), now),
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
                let (by_far_end, why) = match &reason {
                    EndReason::RemoteBye => (true, "BYE from the far end".to_owned()),
                    EndReason::LocalBye => (false, "our BYE".to_owned()),
                    EndReason::Cancelled => (false, "cancelled".to_owned()),
                    EndReason::Rejected(s) => (true, format!("rejected with {s}")),
                    EndReason::AckTimeout => (true, "no ACK".to_owned()),
                    EndReason::SessionExpired => (true, "session expired".to_owned()),
                    EndReason::Timeout => (true, "no response (timeout)".to_owned()),
                };
                if let Some(m) = media.take() {
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
            Some(Msg::Leg(LegEvent::Audio { samples, .. })) => {
                packets += 1;
                if let Some(r) = recorder.as_mut() {
                    let _ = r.incoming(&samples);
                }
                run.handle(Observation::Audio(&samples), now);
            }
            Some(Msg::Leg(LegEvent::Digit { digit, .. })) => {
                run.handle(Observation::Digit(digit.as_char()), now);
            }
            Some(Msg::Leg(LegEvent::Quality(q))) => quality = Some(q),
            Some(Msg::Leg(_)) => {}
            Some(Msg::Played(id)) => run.handle(Observation::Done(id), now),
            Some(Msg::Outgoing(samples)) => {
                if let Some(r) = recorder.as_mut() {
                    let _ = r.outgoing(&samples);
                }
            }
            Some(Msg::Speech(id, result)) => match (result, media.as_ref()) {
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
            None => {}
        }
        while let Some(command) = run.poll_command() {
            match command {
                Command::Hangup => dialer.hangup(call),
                Command::Play { id, step } => {
                    if let (Some(m), Some(audio)) = (media.as_ref(), scenario.audio.get(&step)) {
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
                    if let Some(m) = media.as_ref() {
                        let (shared, tx, codec) = (shared.clone(), tx.clone(), m.codec);
                        tokio::task::spawn_blocking(move || {
                            let request = SpeechRequest {
                                text,
                                text_type: TextType::Text,
                                voice_id: voice,
                                language_code: None,
                            };
                            let speech =
                                tts::cached(&shared.prompts, shared.tts.as_ref(), &request, codec)
                                    .map_err(|e| e.to_string());
                            let _ = tx.send(Msg::Speech(id, speech));
                        });
                    }
                }
                Command::SendDigits {
                    id,
                    digits,
                    mode,
                    duration_ms,
                    gap_ms,
                } => {
                    if let Some(m) = media.as_ref() {
                        match digit_source(m, &digits, mode, duration_ms, gap_ms) {
                            Ok(source) => {
                                m.output.play(id, source);
                            }
                            Err(why) => tracing::warn!(%why, "cannot send digits"),
                        }
                    }
                }
            }
        }
    }
    if let Some(m) = media.take() {
        stop_media(m);
    }
    if let Some(r) = recorder.take() {
        if let Err(e) = r.finish() {
            tracing::warn!(error = %e, "recording not saved");
            recording = None;
        }
    }
    CallOutcome {
        reports: run.reports().to_vec(),
        passed: run.passed(),
        setup: run.setup_time(),
        final_response: run.final_response().cloned(),
        codec: codec_name,
        quality,
        packets_received: packets,
        recording,
        error: None,
        duration: began.elapsed(),
    }
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
    let stream = shared.pacer.add(
        sockets.rtp.clone(),
        m.remote,
        sender,
        Box::new(output),
        Duration::from_millis(u64::from(ptime)),
        Instant::now(),
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
