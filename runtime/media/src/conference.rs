//! The audio conference engine: meetings mixed at 16 kHz on one clock.
//!
//! Each participant is a call leg. Its receive task (after the jitter buffer and the decoder)
//! fills an input [`PcmPipe`] at the leg's rate; its output plays a [`crate::bridge::
//! BridgedSource`] reading an output pipe at the same rate, encoded for its codec on the
//! pacer's clock. [`Mixer::tick`] runs every 20 ms for every meeting at once (the shell,
//! [`ConferenceClock`], is one thread, like the pacer):
//!
//! 1. one frame is taken from each participant's input and its level measured (at the leg's
//!    rate; nothing else is done with a silent participant's audio);
//! 2. the `loudest` participants (default 3) whose smoothed level is above the silence
//!    threshold, who may send (capability `SendReceive` or `Send`) and are not muted, are
//!    selected; only their frames are brought to 16 kHz and summed;
//! 3. everyone who may receive hears the sum minus their own voice (mix-minus): the
//!    participants not selected all hear the same sum, converted once per output rate; each
//!    selected one gets the sum without itself.
//!
//! So a meeting of hundreds costs one level measurement per participant, N conversions and
//! one shared mix; joining and leaving touch only that participant. 8 kHz legs are converted
//! with a half-band filter pair (cheap and linear-phase); other rates (Opus at 48 kHz) with
//! the general resampler.

use crate::bridge::PcmPipe;
use crate::resample::StreamResampler;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The mixing rate.
pub const MIX_RATE: u32 = 16_000;
/// One tick of the mixing clock.
pub const TICK: Duration = Duration::from_millis(20);
const MIX_FRAME: usize = (MIX_RATE / 50) as usize;

/// How meetings are mixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConferenceConfig {
    /// How many talkers are mixed at once (the loudest).
    pub loudest: usize,
    /// Below this level (dBFS, RMS of a smoothed frame) a participant is silent, not mixed.
    pub silence_dbfs: f64,
}

impl Default for ConferenceConfig {
    fn default() -> ConferenceConfig {
        ConferenceConfig {
            loudest: 3,
            silence_dbfs: -50.0,
        }
    }
}

/// What an attendee's `Audio` capability lets it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioCapability {
    pub send: bool,
    pub receive: bool,
}

impl AudioCapability {
    /// From the model's `SendReceive` / `Send` / `Receive` / `None`; unknown values send and
    /// receive nothing.
    pub fn from_model(value: &str) -> AudioCapability {
        AudioCapability {
            send: matches!(value, "SendReceive" | "Send"),
            receive: matches!(value, "SendReceive" | "Receive"),
        }
    }
}

/// Why a participant could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConferenceError {
    #[error("participant {0} is already in meeting {1}")]
    AlreadyJoined(String, String),
    #[error("a participant's audio must be at 8, 16 or 48 kHz, not {0} Hz")]
    UnsupportedRate(u32),
    #[error("meeting {meeting} already has its {limit} participants")]
    Full { meeting: String, limit: usize },
}

/// Half-band filter taps (one side of the odd phase), a Kaiser-windowed sinc: flat to about
/// 3.4 kHz at 8 kHz, more than 60 dB down above 4.6 kHz.
const HALF_BAND_TAPS: usize = 12;

fn half_band() -> [f32; HALF_BAND_TAPS] {
    let beta = 6.0f64;
    let i0 = |x: f64| {
        // The zeroth-order modified Bessel function, by its series.
        let (mut sum, mut term) = (1.0f64, 1.0f64);
        for k in 1..30 {
            term *= (x / 2.0) / f64::from(k);
            sum += term * term;
        }
        sum
    };
    // Tap k weighs the input samples k + 0.5 input periods either side of the point
    // interpolated: the ideal weight sinc(k + 0.5), windowed.
    let n = HALF_BAND_TAPS as f64;
    let mut raw = [0f64; HALF_BAND_TAPS];
    for (k, tap) in raw.iter_mut().enumerate() {
        let t = k as f64 + 0.5;
        let sinc = (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t);
        let r = t / n;
        *tap = sinc * i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0(beta);
    }
    // Gain 1 at DC: the taps of both sides sum to 1.
    let sum: f64 = raw.iter().sum::<f64>() * 2.0;
    let mut taps = [0f32; HALF_BAND_TAPS];
    for (t, r) in taps.iter_mut().zip(raw) {
        *t = (r / sum) as f32;
    }
    taps
}

/// 8 kHz → 16 kHz. Streaming: the output lags the input by `HALF_BAND_TAPS` input samples.
#[derive(Clone)]
struct Upsampler {
    taps: [f32; HALF_BAND_TAPS],
    /// The last `2 * HALF_BAND_TAPS` input samples.
    history: Vec<f32>,
    /// History and input together (kept to reuse its allocation).
    x: Vec<f32>,
}

impl Upsampler {
    fn new(taps: [f32; HALF_BAND_TAPS]) -> Upsampler {
        Upsampler {
            taps,
            history: vec![0.0; 2 * HALF_BAND_TAPS],
            x: Vec::new(),
        }
    }

    /// Keeps the history current without producing output (a participant not mixed).
    fn skip(&mut self, input: &[i16]) {
        let n = self.history.len();
        if input.len() >= n {
            for (h, s) in self.history.iter_mut().zip(&input[input.len() - n..]) {
                *h = f32::from(*s);
            }
        } else {
            self.history.drain(..input.len());
            self.history.extend(input.iter().map(|s| f32::from(*s)));
        }
    }

    /// Appends `2 * input.len()` samples to `out`.
    fn process(&mut self, input: &[i16], out: &mut Vec<f32>) {
        let n = HALF_BAND_TAPS;
        let mut x = std::mem::take(&mut self.x);
        x.clear();
        x.extend_from_slice(&self.history);
        x.extend(input.iter().map(|s| f32::from(*s)));
        // Output pair for input position i (delayed by n): the sample itself, then the
        // point between it and the next. x holds 2n + len samples, so i - k >= 1 and
        // i + 1 + k <= 2n + len - 1 for every tap.
        for i in n..n + input.len() {
            out.push(x[i]);
            let mut acc = 0.0f32;
            for (k, tap) in self.taps.iter().enumerate() {
                acc += tap * (x[i - k] + x[i + 1 + k]);
            }
            out.push(acc);
        }
        self.x = x;
        self.skip(input);
    }
}

/// 16 kHz → 8 kHz. Streaming, with the same delay as [`Upsampler`] at the output rate.
#[derive(Clone)]
struct Downsampler {
    taps: [f32; HALF_BAND_TAPS],
    history: Vec<f32>,
    x: Vec<f32>,
}

impl Downsampler {
    fn new(taps: [f32; HALF_BAND_TAPS]) -> Downsampler {
        Downsampler {
            taps,
            history: vec![0.0; 4 * HALF_BAND_TAPS],
            x: Vec::new(),
        }
    }

    /// `input` (an even number of samples) → half as many samples appended to `out`.
    fn process(&mut self, input: &[f32], out: &mut Vec<i16>) {
        let n = 2 * HALF_BAND_TAPS;
        let mut x = std::mem::take(&mut self.x);
        x.clear();
        x.extend_from_slice(&self.history);
        x.extend_from_slice(input);
        let mut i = n;
        while i + n <= x.len() && i < n + input.len() {
            let mut acc = 0.5 * x[i];
            for (k, tap) in self.taps.iter().enumerate() {
                acc += 0.5 * tap * (x[i - 1 - 2 * k] + x[i + 1 + 2 * k]);
            }
            out.push(saturate(acc));
            i += 2;
        }
        let keep = self.history.len();
        let total = x.len();
        self.history.clear();
        self.history.extend_from_slice(&x[total - keep..]);
        self.x = x;
    }
}

fn saturate(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// A participant's audio to and from the mixing rate.
enum Converter {
    /// Already at 16 kHz.
    Same,
    /// 8 kHz, half-band filters.
    HalfBand { up: Upsampler, down: Downsampler },
    /// Another rate (48 kHz Opus): the general resampler both ways. Its output comes in
    /// blocks that do not always match a tick, so it is queued.
    General {
        up: Box<StreamResampler>,
        down: Box<StreamResampler>,
        queued: std::collections::VecDeque<i16>,
        /// Per-tick scratch, kept for its allocation.
        scratch: Vec<i16>,
    },
}

struct Participant {
    id: String,
    input: Arc<PcmPipe>,
    output: Arc<PcmPipe>,
    rate: u32,
    /// Input samples per tick at its rate.
    frame: usize,
    converter: Converter,
    capability: AudioCapability,
    muted: bool,
    /// Smoothed mean square level of its input: fast attack, slow release, so the pauses
    /// between words do not drop a talker from the mix.
    level: f64,
    /// This tick's input frame (at its rate) and, when mixed, at 16 kHz.
    pcm: Vec<i16>,
    mixed: Vec<f32>,
    selected: bool,
}

impl Participant {
    fn may_send(&self) -> bool {
        self.capability.send && !self.muted
    }
}

/// One meeting's participants.
#[derive(Default)]
struct Room {
    participants: Vec<Participant>,
    /// The shared mix's conversion state per output rate (continuity across ticks).
    shared_down: HashMap<u32, Downsampler>,
    shared_general: HashMap<u32, StreamResampler>,
    /// Per-tick scratch, kept for its allocations: the talkers chosen, and the shared mix
    /// at each listener rate.
    talkers: Vec<usize>,
    shared: Vec<(u32, Vec<i16>)>,
    /// The mix as samples, for the general resampler's shared conversion.
    general_pcm: Vec<i16>,
}

/// What one tick did, for the clock's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub meetings: usize,
    pub participants: usize,
    /// Participants whose audio was mixed (talking, at most `loudest` per meeting).
    pub mixed: usize,
}

/// Every meeting's mixer, sans-IO: [`Mixer::tick`] is called every 20 ms by the clock.
pub struct Mixer {
    config: ConferenceConfig,
    /// Mean square level at the silence threshold.
    threshold: f64,
    taps: [f32; HALF_BAND_TAPS],
    rooms: HashMap<String, Room>,
    /// Scratch for the mix at 16 kHz and conversions.
    total: Vec<f32>,
    own: Vec<f32>,
    shared_out: Vec<i16>,
    out: Vec<i16>,
    limit: usize,
}

impl Mixer {
    /// A mixer; `limit` is the most participants one meeting may hold.
    pub fn new(config: ConferenceConfig, limit: usize) -> Mixer {
        let amplitude = 32768.0 * 10f64.powf(config.silence_dbfs / 20.0);
        Mixer {
            config,
            threshold: amplitude * amplitude,
            taps: half_band(),
            rooms: HashMap::new(),
            total: vec![0.0; MIX_FRAME],
            own: Vec::with_capacity(MIX_FRAME),
            shared_out: Vec::new(),
            out: Vec::new(),
            limit,
        }
    }

    /// `id` joins `meeting`: `input` is what it says (filled by its leg, at the leg's rate),
    /// `output` what it hears (at the same rate).
    pub fn join(
        &mut self,
        meeting: &str,
        id: &str,
        input: Arc<PcmPipe>,
        output: Arc<PcmPipe>,
        capability: AudioCapability,
    ) -> Result<(), ConferenceError> {
        let rate = input.sample_rate;
        let converter = match rate {
            MIX_RATE => Converter::Same,
            8000 => Converter::HalfBand {
                up: Upsampler::new(self.taps),
                down: Downsampler::new(self.taps),
            },
            48_000 => {
                let frame = (rate / 50) as usize;
                let up = StreamResampler::new(rate, MIX_RATE, frame)
                    .map_err(|_| ConferenceError::UnsupportedRate(rate))?;
                let down = StreamResampler::new(MIX_RATE, rate, MIX_FRAME)
                    .map_err(|_| ConferenceError::UnsupportedRate(rate))?;
                Converter::General {
                    up: Box::new(up),
                    down: Box::new(down),
                    queued: std::collections::VecDeque::new(),
                    scratch: Vec::with_capacity(2 * MIX_FRAME),
                }
            }
            other => return Err(ConferenceError::UnsupportedRate(other)),
        };
        let room = self.rooms.entry(meeting.to_owned()).or_default();
        if room.participants.iter().any(|p| p.id == id) {
            return Err(ConferenceError::AlreadyJoined(id.into(), meeting.into()));
        }
        if room.participants.len() >= self.limit {
            return Err(ConferenceError::Full {
                meeting: meeting.into(),
                limit: self.limit,
            });
        }
        room.participants.push(Participant {
            id: id.to_owned(),
            input,
            output,
            rate,
            frame: (rate / 50) as usize,
            converter,
            capability,
            muted: false,
            level: 0.0,
            pcm: Vec::new(),
            mixed: Vec::new(),
            selected: false,
        });
        Ok(())
    }

    /// `id` leaves `meeting` (the meeting goes when its last participant does), if it is
    /// still the session whose `input` this is: an attendee who joined again from another
    /// call replaced that session, and the old one's leaving must not remove the new one.
    /// Whether it was there.
    pub fn leave(&mut self, meeting: &str, id: &str, input: &Arc<PcmPipe>) -> bool {
        self.remove_where(meeting, |p| p.id == id && Arc::ptr_eq(&p.input, input))
    }

    /// `id` leaves `meeting` whichever session it is in (an attendee joining again takes
    /// over from its earlier session). Whether it was there.
    pub fn remove(&mut self, meeting: &str, id: &str) -> bool {
        self.remove_where(meeting, |p| p.id == id)
    }

    fn remove_where(&mut self, meeting: &str, gone: impl Fn(&Participant) -> bool) -> bool {
        let Some(room) = self.rooms.get_mut(meeting) else {
            return false;
        };
        let before = room.participants.len();
        room.participants.retain(|p| !gone(p));
        let left = room.participants.len() < before;
        if room.participants.is_empty() {
            self.rooms.remove(meeting);
        }
        left
    }

    /// Everyone leaves `meeting`; their ids.
    pub fn end(&mut self, meeting: &str) -> Vec<String> {
        self.rooms
            .remove(meeting)
            .map(|r| r.participants.into_iter().map(|p| p.id).collect())
            .unwrap_or_default()
    }

    fn participant(&mut self, meeting: &str, id: &str) -> Option<&mut Participant> {
        self.rooms
            .get_mut(meeting)?
            .participants
            .iter_mut()
            .find(|p| p.id == id)
    }

    /// Server-side mute: the participant is not mixed (it still hears the others).
    pub fn set_muted(&mut self, meeting: &str, id: &str, muted: bool) -> bool {
        self.participant(meeting, id)
            .map(|p| p.muted = muted)
            .is_some()
    }

    pub fn is_muted(&self, meeting: &str, id: &str) -> Option<bool> {
        self.rooms
            .get(meeting)?
            .participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.muted)
    }

    pub fn set_capability(&mut self, meeting: &str, id: &str, capability: AudioCapability) -> bool {
        self.participant(meeting, id)
            .map(|p| p.capability = capability)
            .is_some()
    }

    /// Participants of `meeting`.
    pub fn participants(&self, meeting: &str) -> Vec<String> {
        self.rooms
            .get(meeting)
            .map(|r| r.participants.iter().map(|p| p.id.clone()).collect())
            .unwrap_or_default()
    }

    pub fn meetings(&self) -> usize {
        self.rooms.len()
    }

    /// One 20 ms step of every meeting.
    pub fn tick(&mut self) -> TickReport {
        let mut report = TickReport {
            meetings: self.rooms.len(),
            ..TickReport::default()
        };
        for room in self.rooms.values_mut() {
            report.participants += room.participants.len();
            report.mixed += mix_room(
                room,
                &self.config,
                self.threshold,
                self.taps,
                &mut self.total,
                &mut self.own,
                &mut self.shared_out,
                &mut self.out,
            );
        }
        report
    }
}

#[allow(clippy::too_many_arguments)]
fn mix_room(
    room: &mut Room,
    config: &ConferenceConfig,
    threshold: f64,
    taps: [f32; HALF_BAND_TAPS],
    total: &mut [f32],
    own: &mut Vec<f32>,
    shared_out: &mut Vec<i16>,
    out: &mut Vec<i16>,
) -> usize {
    // 1. One frame from everyone, and its level.
    for p in &mut room.participants {
        p.pcm.clear();
        p.input.take(p.frame, &mut p.pcm);
        p.pcm.resize(p.frame, 0);
        let energy = p
            .pcm
            .iter()
            .map(|s| i64::from(*s) * i64::from(*s))
            .sum::<i64>() as f64
            / p.frame as f64;
        p.level = if energy > p.level {
            energy
        } else {
            // About 300 ms to fall by 20 dB.
            p.level * 0.74 + energy * 0.26
        };
    }
    // 2. The loudest talkers who may be heard.
    let mut talkers = std::mem::take(&mut room.talkers);
    talkers.clear();
    talkers.extend((0..room.participants.len()).filter(|&i| {
        let p = &room.participants[i];
        p.may_send() && p.level >= threshold
    }));
    talkers.sort_by(|&a, &b| {
        room.participants[b]
            .level
            .total_cmp(&room.participants[a].level)
    });
    talkers.truncate(config.loudest);
    total.fill(0.0);
    for (i, p) in room.participants.iter_mut().enumerate() {
        let chosen = talkers.contains(&i);
        p.mixed.clear();
        match &mut p.converter {
            Converter::Same => {
                if chosen {
                    p.mixed.extend(p.pcm.iter().map(|s| f32::from(*s)));
                }
            }
            Converter::HalfBand { up, .. } => {
                if chosen {
                    up.process(&p.pcm, &mut p.mixed);
                } else {
                    up.skip(&p.pcm);
                }
            }
            Converter::General {
                up,
                queued,
                scratch,
                ..
            } => {
                // The general resampler keeps its own state: it always runs.
                scratch.clear();
                if up.process(&p.pcm, scratch).is_ok() {
                    queued.extend(scratch.iter().copied());
                }
                while queued.len() > 3 * MIX_FRAME {
                    queued.pop_front();
                }
                if queued.len() >= MIX_FRAME {
                    let frame = queued.drain(..MIX_FRAME);
                    if chosen {
                        p.mixed.extend(frame.map(f32::from));
                    }
                }
            }
        }
        p.mixed.resize(if chosen { MIX_FRAME } else { 0 }, 0.0);
        if chosen {
            for (t, s) in total.iter_mut().zip(&p.mixed) {
                *t += s;
            }
        }
        // A talker newly selected continues from the shared mix's conversion state.
        if chosen && !p.selected {
            if let (Converter::HalfBand { down, .. }, Some(shared)) =
                (&mut p.converter, room.shared_down.get(&p.rate))
            {
                *down = shared.clone();
            }
        }
        p.selected = chosen;
    }
    let mixed = talkers.len();
    room.talkers = talkers;
    if mixed == 0 {
        // Nobody talks: nothing is sent to the outputs, which play silence on their own.
        // The shared conversion state forgets the last mix (its tail is silence too).
        room.shared_down.clear();
        room.shared_general.clear();
        return 0;
    }
    // 3. Mix-minus: the listeners not talking share one conversion per rate.
    let mut shared = std::mem::take(&mut room.shared);
    for (_, audio) in &mut shared {
        audio.clear();
    }
    let mut done: [Option<u32>; 4] = [None; 4];
    for p in &mut room.participants {
        if !p.capability.receive {
            continue;
        }
        if p.selected {
            own.clear();
            own.extend(total.iter().zip(&p.mixed).map(|(t, s)| t - s));
            out.clear();
            match &mut p.converter {
                Converter::Same => out.extend(own.iter().map(|s| saturate(*s))),
                Converter::HalfBand { down, .. } => down.process(own, out),
                Converter::General { down, scratch, .. } => {
                    scratch.clear();
                    scratch.extend(own.iter().map(|s| saturate(*s)));
                    let _ = down.process(scratch, out);
                }
            }
            p.output.push(out);
            continue;
        }
        let rate = p.rate;
        if !done.contains(&Some(rate)) {
            if let Some(slot) = done.iter_mut().find(|d| d.is_none()) {
                *slot = Some(rate);
            }
            shared_out.clear();
            match rate {
                MIX_RATE => shared_out.extend(total.iter().map(|s| saturate(*s))),
                8000 => room
                    .shared_down
                    .entry(rate)
                    .or_insert_with(|| Downsampler::new(taps))
                    .process(total, shared_out),
                _ => {
                    let mut pcm = std::mem::take(&mut room.general_pcm);
                    pcm.clear();
                    pcm.extend(total.iter().map(|s| saturate(*s)));
                    let resampler = match room.shared_general.entry(rate) {
                        std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            StreamResampler::new(MIX_RATE, rate, MIX_FRAME)
                                .ok()
                                .map(|r| v.insert(r))
                        }
                    };
                    if let Some(r) = resampler {
                        let _ = r.process(&pcm, shared_out);
                    }
                    room.general_pcm = pcm;
                }
            }
            match shared.iter_mut().find(|(r, _)| *r == rate) {
                Some((_, audio)) => audio.extend_from_slice(shared_out),
                None => shared.push((rate, shared_out.clone())),
            }
        }
        if let Some((_, audio)) = shared.iter().find(|(r, _)| *r == rate) {
            p.output.push(audio);
        }
    }
    room.shared = shared;
    mixed
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The clock's record since it was last read: for the benchmark and the stats log.
#[derive(Debug, Default)]
pub struct ClockStats {
    window: Mutex<TickWindow>,
}

/// Tick durations over a stretch of time, and what the last of those ticks did.
#[derive(Debug, Default, Clone)]
pub struct TickWindow {
    /// Tick durations (µs); sorted when drained.
    pub durations_us: Vec<u32>,
    pub last: TickReport,
}

impl TickWindow {
    /// The duration (µs) below which `q` of the ticks took; `None` without ticks.
    pub fn quantile_us(&self, q: f64) -> Option<u32> {
        let last = self.durations_us.len().checked_sub(1)?;
        self.durations_us
            .get((last as f64 * q.clamp(0.0, 1.0)).round() as usize)
            .copied()
    }
}

impl ClockStats {
    fn record(&self, took_us: u32, report: TickReport) {
        let mut window = lock(&self.window);
        if window.durations_us.len() < 100_000 {
            window.durations_us.push(took_us);
        }
        window.last = report;
    }

    /// The record since the last call, durations sorted.
    pub fn drain(&self) -> TickWindow {
        let mut window = std::mem::take(&mut *lock(&self.window));
        window.durations_us.sort_unstable();
        window
    }
}

/// The one mixing clock: a thread that ticks the [`Mixer`] every 20 ms.
pub struct ConferenceClock {
    mixer: Arc<Mutex<Mixer>>,
    stats: Arc<ClockStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConferenceClock {
    pub fn start(mixer: Mixer) -> std::io::Result<ConferenceClock> {
        let mixer = Arc::new(Mutex::new(mixer));
        let stats = Arc::new(ClockStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (mixer, stats, stop) = (mixer.clone(), stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("sma-conference".into())
                .spawn(move || {
                    let mut next = Instant::now() + TICK;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let report = lock(&mixer).tick();
                        let took = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                        stats.record(took, report);
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                            next += TICK;
                        } else {
                            // Late: catch up without a burst of ticks.
                            next = now + TICK;
                        }
                    }
                })?
        };
        Ok(ConferenceClock {
            mixer,
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// The mixer, to join, leave, mute.
    pub fn mixer(&self) -> MutexGuard<'_, Mixer> {
        lock(&self.mixer)
    }

    pub fn stats(&self) -> &ClockStats {
        &self.stats
    }
}

impl Drop for ConferenceClock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: AudioCapability = AudioCapability {
        send: true,
        receive: true,
    };

    fn tone(hz: f64, rate: u32, amplitude: f64, from: usize, n: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// The share of `samples`' energy at `hz` (Goertzel).
    fn share(samples: &[i16], hz: f64, rate: u32) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
        for &x in samples {
            let x = f64::from(x);
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
            energy += x * x;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        if energy == 0.0 {
            0.0
        } else {
            2.0 * power / (energy * samples.len() as f64)
        }
    }

    struct Phone {
        id: String,
        hz: f64,
        amplitude: f64,
        rate: u32,
        input: Arc<PcmPipe>,
        output: Arc<PcmPipe>,
        sent: usize,
        heard: Vec<i16>,
    }

    impl Phone {
        fn new(id: &str, hz: f64, amplitude: f64, rate: u32) -> Phone {
            Phone {
                id: id.into(),
                hz,
                amplitude,
                rate,
                input: PcmPipe::new(rate, 200),
                output: PcmPipe::new(rate, 10_000),
                sent: 0,
                heard: Vec::new(),
            }
        }

        fn join(&self, mixer: &mut Mixer, meeting: &str) {
            mixer
                .join(
                    meeting,
                    &self.id,
                    self.input.clone(),
                    self.output.clone(),
                    BOTH,
                )
                .unwrap();
        }

        /// 20 ms of its tone into its input.
        fn speak(&mut self) {
            let n = (self.rate / 50) as usize;
            self.input
                .push(&tone(self.hz, self.rate, self.amplitude, self.sent, n));
            self.sent += n;
        }

        fn listen(&mut self) {
            let n = self.output.len();
            self.output.take(n, &mut self.heard);
        }
    }

    fn run(mixer: &mut Mixer, phones: &mut [Phone], ticks: usize) {
        for _ in 0..ticks {
            for p in phones.iter_mut() {
                p.speak();
            }
            mixer.tick();
            for p in phones.iter_mut() {
                p.listen();
            }
        }
    }

    #[test]
    fn the_half_band_pair_carries_speech_band_audio_through_16_khz_unchanged() {
        let taps = half_band();
        let (mut up, mut down) = (Upsampler::new(taps), Downsampler::new(taps));
        let input = tone(1000.0, 8000, 10_000.0, 0, 8000);
        let mut out = Vec::new();
        for chunk in input.chunks(160) {
            let mut wide = Vec::new();
            up.process(chunk, &mut wide);
            assert_eq!(wide.len(), 320);
            down.process(&wide, &mut out);
        }
        assert_eq!(out.len(), input.len());
        // Same signal, delayed by the two filters (2 x 12 samples at 8 kHz).
        let delay = 2 * HALF_BAND_TAPS;
        let err: f64 = out[delay..]
            .iter()
            .zip(&input)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        let signal: f64 = input.iter().map(|s| f64::from(*s).powi(2)).sum();
        let snr = 10.0 * (signal / err).log10();
        assert!(snr > 40.0, "SNR {snr:.1} dB");
        // At 16 kHz the tone is still one tone: nothing imaged above 4 kHz.
        let mut wide = Vec::new();
        Upsampler::new(taps).process(&input, &mut wide);
        let pcm: Vec<i16> = wide.iter().map(|s| saturate(*s)).collect();
        assert!(share(&pcm[400..], 1000.0, 16_000) > 0.98);
        assert!(share(&pcm[400..], 7000.0, 16_000) < 0.001);
    }

    #[test]
    fn each_participant_hears_the_others_and_not_itself() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 250);
        let mut phones = vec![
            Phone::new("a", 400.0, 6000.0, 8000),
            Phone::new("b", 700.0, 6000.0, 8000),
            // A wideband leg and an Opus one in the same meeting.
            Phone::new("c", 1100.0, 6000.0, 16_000),
            Phone::new("d", 1500.0, 6000.0, 48_000),
        ];
        for p in &phones {
            p.join(&mut mixer, "m1");
        }
        // The loudest three of four talk at once here; make it four.
        mixer.config.loudest = 4;
        run(&mut mixer, &mut phones, 50);
        for p in &phones {
            let heard = &p.heard[p.heard.len() / 2..];
            assert!(
                share(heard, p.hz, p.rate) < 0.01,
                "{} hears itself: {:.3}",
                p.id,
                share(heard, p.hz, p.rate)
            );
            for other in phones.iter().filter(|o| o.id != p.id) {
                let s = share(heard, other.hz, p.rate);
                assert!(s > 0.2, "{} hears {} at {s:.3}", p.id, other.id);
            }
        }
    }

    #[test]
    fn only_the_loudest_talkers_are_mixed_and_silence_is_not() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 250);
        let mut phones: Vec<Phone> = (0..5)
            .map(|i| {
                Phone::new(
                    &format!("t{i}"),
                    300.0 + 200.0 * i as f64,
                    1000.0 * (i + 1) as f64,
                    8000,
                )
            })
            .collect();
        // A listener whose line carries only faint noise (below -50 dBFS).
        phones.push(Phone::new("quiet", 3000.0, 50.0, 8000));
        for p in &phones {
            p.join(&mut mixer, "m1");
        }
        let mut last = TickReport::default();
        for _ in 0..40 {
            for p in phones.iter_mut() {
                p.speak();
            }
            last = mixer.tick();
            for p in phones.iter_mut() {
                p.listen();
            }
        }
        assert_eq!(last.mixed, 3);
        let quiet = &phones[5];
        let heard = &quiet.heard[quiet.heard.len() / 2..];
        for (i, p) in phones[..5].iter().enumerate() {
            let s = share(heard, p.hz, 8000);
            if i >= 2 {
                assert!(s > 0.05, "{} (one of the loudest) at {s:.3}", p.id);
            } else {
                assert!(s < 0.001, "{} (quieter) mixed at {s:.4}", p.id);
            }
        }
        // Everyone silent: nothing is mixed and nothing is sent.
        let mut silent = Mixer::new(ConferenceConfig::default(), 250);
        let mut quiet = vec![
            Phone::new("q1", 500.0, 20.0, 8000),
            Phone::new("q2", 600.0, 20.0, 8000),
        ];
        for p in &quiet {
            p.join(&mut silent, "m2");
        }
        for _ in 0..10 {
            for p in quiet.iter_mut() {
                p.speak();
            }
            assert_eq!(silent.tick().mixed, 0);
        }
        assert!(quiet.iter().all(|p| p.output.is_empty()));
    }

    #[test]
    fn mute_and_capabilities_are_honoured() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 250);
        let mut phones = vec![
            Phone::new("a", 400.0, 6000.0, 8000),
            Phone::new("b", 700.0, 6000.0, 8000),
            Phone::new("c", 1100.0, 6000.0, 8000),
        ];
        for p in &phones {
            p.join(&mut mixer, "m1");
        }
        assert!(mixer.set_muted("m1", "b", true));
        assert_eq!(mixer.is_muted("m1", "b"), Some(true));
        // c may only send.
        mixer.set_capability("m1", "c", AudioCapability::from_model("Send"));
        run(&mut mixer, &mut phones, 30);
        let a = &phones[0].heard[phones[0].heard.len() / 2..];
        assert!(share(a, 700.0, 8000) < 0.001, "muted b is heard");
        assert!(share(a, 1100.0, 8000) > 0.5, "c is not heard");
        assert!(phones[2].heard.is_empty(), "c (send only) received audio");
        // Unmuted, b is heard again; a `Receive` attendee is never mixed.
        mixer.set_muted("m1", "b", false);
        mixer.set_capability("m1", "c", AudioCapability::from_model("Receive"));
        phones[0].heard.clear();
        run(&mut mixer, &mut phones, 30);
        let a = &phones[0].heard[phones[0].heard.len() / 2..];
        assert!(share(a, 700.0, 8000) > 0.5);
        assert!(share(a, 1100.0, 8000) < 0.001);
        assert_eq!(
            AudioCapability::from_model("None"),
            AudioCapability {
                send: false,
                receive: false
            }
        );
    }

    #[test]
    fn joining_and_leaving_do_not_disturb_the_others() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 3);
        let mut phones = vec![
            Phone::new("a", 400.0, 6000.0, 8000),
            Phone::new("b", 700.0, 0.0, 8000),
        ];
        for p in &phones {
            p.join(&mut mixer, "m1");
        }
        run(&mut mixer, &mut phones, 10);
        // A third (silent) joins, then leaves; b keeps hearing a's tone without a step.
        let c = Phone::new("c", 1000.0, 0.0, 8000);
        c.join(&mut mixer, "m1");
        let full = Phone::new("d", 1000.0, 0.0, 8000);
        assert_eq!(
            mixer.join("m1", "d", full.input.clone(), full.output.clone(), BOTH),
            Err(ConferenceError::Full {
                meeting: "m1".into(),
                limit: 3
            })
        );
        assert!(matches!(
            mixer.join("m1", "a", full.input.clone(), full.output.clone(), BOTH),
            Err(ConferenceError::AlreadyJoined(..))
        ));
        run(&mut mixer, &mut phones, 10);
        // Only its own session can take it out; then it is gone.
        assert!(!mixer.leave("m1", "c", &full.input));
        assert!(mixer.leave("m1", "c", &c.input));
        assert!(!mixer.remove("m1", "c"));
        run(&mut mixer, &mut phones, 10);
        let heard = &phones[1].heard[HALF_BAND_TAPS * 2 + 80..];
        // A 400 Hz tone at 6000 moves at most 2*pi*400/8000*6000 ~ 1885 per sample.
        let worst = heard
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0);
        assert!(worst < 2000, "a step of {worst} in b's audio");
        assert_eq!(heard.len() + HALF_BAND_TAPS * 2 + 80, 30 * 160);
        // Ending the meeting releases everyone.
        let mut left = mixer.end("m1");
        left.sort();
        assert_eq!(left, ["a", "b"]);
        assert_eq!(mixer.meetings(), 0);
    }

    #[test]
    fn two_hundred_joining_at_once_and_one_sending_nothing_do_not_disturb_the_talkers() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 250);
        let mut phones = vec![
            Phone::new("a", 400.0, 6000.0, 8000),
            Phone::new("b", 700.0, 6000.0, 8000),
        ];
        for p in &phones {
            p.join(&mut mixer, "m1");
        }
        run(&mut mixer, &mut phones, 5);
        // 200 more join between two ticks; they never send a packet (their pipes stay empty).
        let silent: Vec<Phone> = (0..200)
            .map(|i| Phone::new(&format!("s{i}"), 0.0, 0.0, 8000))
            .collect();
        for p in &silent {
            p.join(&mut mixer, "m1");
        }
        assert_eq!(mixer.participants("m1").len(), 202);
        phones[1].heard.clear();
        run(&mut mixer, &mut phones, 25);
        let report = mixer.tick();
        assert_eq!(report.participants, 202);
        let b = &phones[1].heard[HALF_BAND_TAPS * 2..];
        assert!(share(b, 400.0, 8000) > 0.9, "b still hears a");
        // The silent ones hear both talkers.
        let mut heard = Vec::new();
        silent[0].output.take(silent[0].output.len(), &mut heard);
        assert!(share(&heard[heard.len() / 2..], 400.0, 8000) > 0.2);
        assert!(share(&heard[heard.len() / 2..], 700.0, 8000) > 0.2);
    }

    #[test]
    fn unsupported_rates_are_refused() {
        let mut mixer = Mixer::new(ConferenceConfig::default(), 10);
        let pipe = PcmPipe::new(11_025, 100);
        assert_eq!(
            mixer.join("m", "x", pipe.clone(), pipe, BOTH),
            Err(ConferenceError::UnsupportedRate(11_025))
        );
    }
}
