//! One clock for every outgoing stream.
//!
//! A call does not get its own timer: all outgoing streams live in one pacing thread that
//! keeps them in a deadline heap and sends each stream's next frame when it is due, keeping the
//! stream's own cadence (due += ptime, never now + ptime, so lateness does not accumulate).
//! Streams start at their own phase, so packets spread over the 20 ms period instead of
//! bursting at one tick. The thread measures each send's error against its deadline.
//!
//! One wake-up sends every packet due within the next [`COALESCE`]: sleeping until each
//! packet's own deadline meant one context switch per packet (100,000 a second for 2,000
//! calls), which cost more than the sends themselves. A packet therefore leaves up to
//! `COALESCE` early, far inside what any jitter buffer absorbs, and that earliness counts as
//! send-time error in the statistics like lateness does.
//!
//! Streams are spread over the phases of their period ([`PhasePlan`]): a stream starts at the
//! least-loaded phase within one period of the time it asked for. Calls answered at a regular
//! rate otherwise share a handful of phases (200 calls a second, one every 5 ms, give every
//! 20 ms stream one of four phases), and each of those wake-ups then has a quarter of all the
//! packets to send: with 2,000 calls the last packet of such a burst left 2.6 ms late. Spread,
//! a wake-up carries its share and no more. The first packet of a stream leaves at most one
//! period after the requested start, which a listener cannot tell from call set-up time.
//!
//! Time-shared, the thread asks for a short time slice ([`PacerSettings::time_slice`], Linux
//! 6.12's per-task slice for the EEVDF scheduler; older kernels ignore it): a woken thread
//! with a short slice gets an early deadline, so the pacer runs soon after its timer fires
//! even when both cores are busy. It needs no privilege, and measured here it kept the send
//! error p99 of a playout run on two fully loaded cores at 0.6-0.8 ms instead of 2.7-3.2 ms,
//! with no cost to call set-up.
//!
//! The thread can instead ask the OS for real-time scheduling ([`PacerSettings::realtime_priority`]):
//! a woken pacer then runs at once instead of waiting for a time-sharing thread's slice to end.
//! That trims the rarest send delays, but every wake-up then preempts whatever runs, call
//! set-up included, so it is off unless configured.
//!
//! Each stream sends from its call leg's own socket (symmetric RTP: the far end expects our
//! packets from the port in our SDP), so `sendmmsg` batching applies only within one socket;
//! one `send_to` per packet is what the kernel allows across legs.

use crate::rtp::RtpSender;
use crate::srtp;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Packets due within this much of a wake-up are sent in it (see the module documentation).
pub const COALESCE: Duration = Duration::from_micros(250);

/// A leg's outbound SRTP context, shared by everything that sends on the leg (the pacer, a
/// bridge's relay, RTCP reports) so they keep one rollover counter and one SRTCP index.
pub type SharedSrtp = Arc<Mutex<srtp::Context>>;

/// Protects `packet` in place with `srtp`; false if it must not be sent.
pub(crate) fn protect_rtp(srtp: &SharedSrtp, packet: &mut Vec<u8>) -> bool {
    // Nothing is left half-written under this lock: recover from a poisoned one.
    let mut context = srtp.lock().unwrap_or_else(|p| p.into_inner());
    context.protect_rtp(packet).is_ok()
}

/// One frame for the pacer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Audio (or comfort noise): payload type, payload, samples it covers.
    Audio {
        payload_type: u8,
        marker: bool,
        samples: u32,
    },
    /// A telephone-event packet: carries the event's start timestamp, moves the clock by
    /// `samples` when `advance` is set.
    Event {
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        samples: u32,
        advance: bool,
    },
    /// Nothing to send this period (the clock still advances by `samples`).
    Skip { samples: u32 },
    /// Nothing to send this period nor any later one until the source's [`StreamWaker`]
    /// wakes the stream: the pacer stops calling the source until then, and the clock
    /// advances by `samples` per period meanwhile, as if each period had been a `Skip`.
    /// A leg whose audio is relayed by the bridge (or that sends nothing between prompts)
    /// would otherwise cost a wake-up every period for nothing.
    Park { samples: u32 },
    /// The source is finished; the stream is removed.
    End,
}

/// What a stream plays: prompts, tones, bridged audio. Called on the pacing thread once per
/// period; must not block.
pub trait FrameSource: Send {
    /// Writes the payload into `payload` (cleared by the caller) and says what it is.
    /// `next_timestamp` is the RTP timestamp the next audio packet will carry.
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame;

    /// Called once when the stream is added, with what wakes it after a [`Frame::Park`].
    /// A source that never parks ignores it.
    fn set_waker(&mut self, waker: StreamWaker) {
        let _ = waker;
    }
}

/// Wakes a parked stream: its source is asked for frames again from the next period.
#[derive(Clone)]
pub struct StreamWaker {
    id: u64,
    commands: mpsc::Sender<Command>,
}

impl StreamWaker {
    pub fn wake(&self) {
        let _ = self.commands.send(Command::Wake(self.id));
    }
}

impl std::fmt::Debug for StreamWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWaker").field("id", &self.id).finish()
    }
}

/// Send statistics of the pacing thread.
#[derive(Debug)]
pub struct PacerStats {
    /// Streams the pacer is sending.
    pub active: AtomicU64,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// Histogram of send-time error, late or early: bucket i counts sends off their
    /// deadline by [i·100 µs, (i+1)·100 µs), the last bucket everything beyond.
    pub lateness: [AtomicU64; 64],
}

impl Default for PacerStats {
    fn default() -> PacerStats {
        PacerStats {
            active: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            lateness: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl PacerStats {
    /// The lateness below which `quantile` of sends fell, in µs (bucket resolution).
    pub fn lateness_quantile_us(&self, quantile: f64) -> u64 {
        let counts: Vec<u64> = self
            .lateness
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let target = (total as f64 * quantile).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (i as u64 + 1) * 100;
            }
        }
        counts.len() as u64 * 100
    }

    pub fn reset(&self) {
        for c in &self.lateness {
            c.store(0, Ordering::Relaxed);
        }
        self.sent.store(0, Ordering::Relaxed);
        self.send_errors.store(0, Ordering::Relaxed);
    }
}

/// Spreads streams over the phases of their period, in slots [`COALESCE`] wide (what one
/// wake-up sends). Pure bookkeeping, no clock of its own: tested with made-up instants.
#[derive(Debug)]
pub struct PhasePlan {
    origin: Instant,
    slot: Duration,
    /// Per period (in ns): streams per slot.
    counts: HashMap<u128, Vec<u32>>,
}

/// Where a stream was placed: what [`PhasePlan::release`] needs back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    period_ns: u128,
    slot: usize,
}

impl PhasePlan {
    /// Phases are measured from `origin`; `slot` is their granularity.
    pub fn new(origin: Instant, slot: Duration) -> PhasePlan {
        PhasePlan {
            origin,
            slot: slot.max(Duration::from_micros(1)),
            counts: HashMap::new(),
        }
    }

    /// The first send time of a stream of `period` that asks to start at `start`: the earliest
    /// time within one period whose slot holds no more than its share of this period's streams.
    pub fn place(&mut self, start: Instant, period: Duration) -> (Instant, Placement) {
        let period_ns = period.as_nanos().max(1);
        let slot_ns = self.slot.as_nanos();
        let slots = period_ns.div_ceil(slot_ns).max(1) as usize;
        let phase = self.phase_ns(start, period_ns);
        let counts = self
            .counts
            .entry(period_ns)
            .or_insert_with(|| vec![0; slots]);
        let total: u64 = counts.iter().map(|c| u64::from(*c)).sum();
        let share = total / slots as u64;
        let first = (phase / slot_ns) as usize;
        // Candidate k starts k slots later (the first candidate is `start` itself). There is
        // always a slot at or below the floor of the average, so the search ends.
        let k = (0..slots)
            .find(|k| u64::from(counts[(first + k) % slots]) <= share)
            .unwrap_or(0);
        let index = (first + k) % slots;
        counts[index] = counts[index].saturating_add(1);
        let delay = if k == 0 {
            Duration::ZERO
        } else {
            // To the start of the chosen slot, within one period.
            let target = index as u128 * slot_ns;
            Duration::from_nanos(((target + period_ns - phase) % period_ns) as u64)
        };
        (
            start + delay,
            Placement {
                period_ns,
                slot: index,
            },
        )
    }

    /// A stream placed at `placement` has ended.
    pub fn release(&mut self, placement: Placement) {
        if let Some(count) = self
            .counts
            .get_mut(&placement.period_ns)
            .and_then(|c| c.get_mut(placement.slot))
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Streams in each slot of `period`.
    pub fn load(&self, period: Duration) -> Vec<u32> {
        self.counts
            .get(&period.as_nanos().max(1))
            .cloned()
            .unwrap_or_default()
    }

    fn phase_ns(&self, at: Instant, period_ns: u128) -> u128 {
        match at.checked_duration_since(self.origin) {
            Some(since) => since.as_nanos() % period_ns,
            None => {
                let before = (self.origin - at).as_nanos() % period_ns;
                (period_ns - before) % period_ns
            }
        }
    }
}

/// How the pacing thread runs.
#[derive(Debug, Clone)]
pub struct PacerSettings {
    /// Ask for `SCHED_FIFO` at this priority (1–99). When the OS refuses (no
    /// `CAP_SYS_NICE`, or not Linux), the pacer logs why and runs time-shared.
    pub realtime_priority: Option<u8>,
    /// Time-shared, ask for this scheduler time slice (see the module documentation).
    pub time_slice: Option<Duration>,
}

/// The time slice a time-shared pacer asks for: the shortest the kernel accepts.
pub const PACER_TIME_SLICE: Duration = Duration::from_micros(100);

impl Default for PacerSettings {
    fn default() -> PacerSettings {
        PacerSettings {
            realtime_priority: None,
            time_slice: Some(PACER_TIME_SLICE),
        }
    }
}

struct Stream {
    placement: Placement,
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    sender: RtpSender,
    source: Box<dyn FrameSource>,
    period: Duration,
    due: Instant,
    stopped: Arc<AtomicBool>,
    /// Parked ([`Frame::Park`]): out of the heap, with the clock advance per period.
    parked: Option<u32>,
    /// SRTP: packets are protected with it before they leave.
    srtp: Option<SharedSrtp>,
}

enum Command {
    Add(u64, Box<Stream>),
    Retarget(u64, SocketAddr),
    /// Put a parked stream back on the clock (a stopped one is then removed).
    Wake(u64),
}

/// A stream added to the pacer. Dropping it does not stop the stream; [`StreamHandle::stop`]
/// does, and the pacer removes it at its next period.
#[derive(Clone)]
pub struct StreamHandle {
    id: u64,
    stopped: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
}

impl StreamHandle {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        // A parked stream is off the clock: wake it so the pacer sees the stop and drops it.
        let _ = self.commands.send(Command::Wake(self.id));
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Sends to a new address from the next packet (symmetric RTP latching, re-INVITE).
    pub fn retarget(&self, destination: SocketAddr) {
        let _ = self.commands.send(Command::Retarget(self.id, destination));
    }
}

/// The pacing thread.
pub struct Pacer {
    commands: mpsc::Sender<Command>,
    next_id: Arc<AtomicU64>,
    pub stats: Arc<PacerStats>,
    shutdown: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Pacer {
    /// A pacer at normal (time-shared) priority.
    pub fn start() -> Pacer {
        Pacer::with_settings(PacerSettings::default())
    }

    pub fn with_settings(settings: PacerSettings) -> Pacer {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(PacerStats::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = {
            let stats = stats.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("sma-pacer".into())
                .spawn(move || {
                    let realtime = settings.realtime_priority.is_some_and(request_realtime);
                    if let (false, Some(slice)) = (realtime, settings.time_slice) {
                        if let Err(error) = set_time_slice(slice) {
                            tracing::debug!(%error, "pacer keeps the default time slice");
                        }
                    }
                    run(rx, stats, shutdown)
                })
                .ok()
        };
        Pacer {
            commands: tx,
            next_id: Arc::new(AtomicU64::new(1)),
            stats,
            shutdown,
            thread: Mutex::new(thread),
        }
    }

    /// Starts a stream: its first frame is sent at the least-loaded phase within one `period`
    /// of `start` (see [`PhasePlan`]), then one every `period`.
    pub fn add(
        &self,
        socket: Arc<UdpSocket>,
        destination: SocketAddr,
        sender: RtpSender,
        source: Box<dyn FrameSource>,
        period: Duration,
        start: Instant,
    ) -> StreamHandle {
        self.add_protected(socket, destination, sender, source, period, start, None)
    }

    /// [`Pacer::add`] for an SRTP leg: each packet is protected with `srtp` before it is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn add_protected(
        &self,
        socket: Arc<UdpSocket>,
        destination: SocketAddr,
        sender: RtpSender,
        source: Box<dyn FrameSource>,
        period: Duration,
        start: Instant,
        srtp: Option<SharedSrtp>,
    ) -> StreamHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stopped = Arc::new(AtomicBool::new(false));
        let mut source = source;
        source.set_waker(StreamWaker {
            id,
            commands: self.commands.clone(),
        });
        let stream = Stream {
            placement: Placement {
                period_ns: 0,
                slot: 0,
            },
            socket,
            destination,
            sender,
            source,
            period,
            due: start,
            stopped: stopped.clone(),
            parked: None,
            srtp,
        };
        let _ = self.commands.send(Command::Add(id, Box::new(stream)));
        StreamHandle {
            id,
            stopped,
            commands: self.commands.clone(),
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Ok(mut t) = self.thread.lock() {
            if let Some(t) = t.take() {
                let _ = t.join();
            }
        }
    }
}

/// Switches the calling thread to `SCHED_FIFO` at `priority` (clamped to 1–99).
pub fn set_realtime_priority(priority: u8) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        set_scheduler(libc::SCHED_FIFO, i32::from(priority.clamp(1, 99)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = priority;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "real-time scheduling is only supported on Linux",
        ))
    }
}

/// Switches the calling thread back to time-shared (`SCHED_OTHER`) scheduling.
pub fn set_time_shared() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        set_scheduler(libc::SCHED_OTHER, 0)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

/// `sched_setscheduler` for the calling thread.
#[cfg(target_os = "linux")]
fn set_scheduler(policy: i32, priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 names the calling
    // thread, and the call only changes its scheduling policy.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    os_result(rc == 0)
}

/// A system call's outcome as a result: on failure the call left the reason in errno.
#[cfg(target_os = "linux")]
fn os_result(succeeded: bool) -> std::io::Result<()> {
    if succeeded {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Asks for a `slice` time slice for the calling time-shared thread (`sched_setattr` with
/// `sched_runtime`, honoured by Linux 6.12 and later, accepted and ignored before).
pub fn set_time_slice(slice: Duration) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
            ..SchedAttr::default()
        };
        // SAFETY: `attr` is a correctly sized `struct sched_attr` (its `size` says so) that
        // outlives the call; pid 0 is the calling thread and flags are 0. The call only sets
        // the thread's scheduling attributes.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        os_result(rc == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = slice;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "per-thread time slices are a Linux feature",
        ))
    }
}

/// The kernel's `struct sched_attr` (include/uapi/linux/sched/types.h), which the libc
/// crate does not define.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Debug, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// The pacing thread's request for real-time priority, logged either way; true if granted.
fn request_realtime(priority: u8) -> bool {
    match set_realtime_priority(priority) {
        Ok(()) => {
            tracing::info!(priority, "pacer runs with real-time priority (SCHED_FIFO)");
            true
        }
        Err(error) => {
            // Info, not a warning: unprivileged is the usual way to try sma out.
            tracing::info!(
                priority,
                %error,
                "pacer cannot get real-time priority; it runs time-shared, and send times may \
                 wander under load (grant CAP_SYS_NICE, or set [media] pacer_realtime_priority = 0)"
            );
            false
        }
    }
}

fn run(commands: mpsc::Receiver<Command>, stats: Arc<PacerStats>, shutdown: Arc<AtomicBool>) {
    let mut plan = PhasePlan::new(Instant::now(), COALESCE);
    let mut streams: HashMap<u64, Stream> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut payload = Vec::with_capacity(1500);
    let mut packet = Vec::with_capacity(1500);
    while !shutdown.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Add(id, mut s) => {
                    let (due, placement) = plan.place(s.due, s.period);
                    s.due = due;
                    s.placement = placement;
                    heap.push(Reverse((s.due, id)));
                    streams.insert(id, *s);
                }
                Command::Retarget(id, addr) => {
                    if let Some(s) = streams.get_mut(&id) {
                        s.destination = addr;
                    }
                }
                Command::Wake(id) => {
                    if let Some(s) = streams.get_mut(&id) {
                        if let Some(samples) = s.parked.take() {
                            let due = unpark(s.due, s.period, Instant::now());
                            let periods = periods_between(s.due, due, s.period);
                            s.sender.skip(samples.wrapping_mul(periods));
                            s.due = due;
                            heap.push(Reverse((due, id)));
                        }
                    }
                }
            }
        }
        let horizon = Instant::now() + COALESCE;
        while let Some(Reverse((due, id))) = heap.peek().copied() {
            if due > horizon {
                break;
            }
            heap.pop();
            let Some(stream) = streams.get_mut(&id) else {
                continue;
            };
            if stream.stopped.load(Ordering::Relaxed) {
                plan.release(stream.placement);
                streams.remove(&id);
                continue;
            }
            payload.clear();
            let frame = stream
                .source
                .next_frame(stream.sender.next_timestamp(), &mut payload);
            let send = match frame {
                Frame::Audio {
                    payload_type,
                    marker,
                    samples,
                } => {
                    stream
                        .sender
                        .packet(payload_type, marker, &payload, samples, &mut packet);
                    true
                }
                Frame::Event {
                    payload_type,
                    marker,
                    timestamp,
                    samples,
                    advance,
                } => {
                    stream
                        .sender
                        .packet_at(payload_type, marker, &payload, timestamp, &mut packet);
                    if advance {
                        stream.sender.skip(samples);
                    }
                    true
                }
                Frame::Skip { samples } => {
                    stream.sender.skip(samples);
                    false
                }
                Frame::Park { samples } => {
                    // Off the clock until woken; `due` stays the period it parked in.
                    stream.sender.skip(samples);
                    stream.parked = Some(samples);
                    stream.due = due + stream.period;
                    continue;
                }
                Frame::End => {
                    stream.stopped.store(true, Ordering::Relaxed);
                    plan.release(stream.placement);
                    streams.remove(&id);
                    continue;
                }
            };
            let send = send
                && !packet.is_empty()
                && stream
                    .srtp
                    .as_ref()
                    .is_none_or(|srtp| protect_rtp(srtp, &mut packet));
            if send {
                let sent_at = Instant::now();
                let error = sent_at
                    .saturating_duration_since(due)
                    .max(due.saturating_duration_since(sent_at));
                let bucket = ((error.as_micros() / 100) as usize).min(63);
                stats.lateness[bucket].fetch_add(1, Ordering::Relaxed);
                match stream.socket.send_to(&packet, stream.destination) {
                    Ok(_) => stats.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => stats.send_errors.fetch_add(1, Ordering::Relaxed),
                };
            }
            stream.due = due + stream.period;
            heap.push(Reverse((stream.due, id)));
        }
        stats.active.store(streams.len() as u64, Ordering::Relaxed);
        let next = heap.peek().map(|Reverse((due, _))| *due);
        // Wake when the next packet comes within the coalescing window.
        let wait = match next {
            Some(due) => due.saturating_duration_since(Instant::now() + COALESCE),
            None => Duration::from_millis(5),
        };
        // Wake at least every 5 ms to take new streams and commands.
        let wait = wait.min(Duration::from_millis(5));
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// When a stream parked with its next period at `next` wakes at `now`: its first period
/// at or after `now`, so it keeps its phase (and its place in the [`PhasePlan`]).
fn unpark(next: Instant, period: Duration, now: Instant) -> Instant {
    if now <= next || period.is_zero() {
        return next;
    }
    let missed = now
        .duration_since(next)
        .as_nanos()
        .div_ceil(period.as_nanos());
    next + period * u32::try_from(missed).unwrap_or(u32::MAX)
}

/// Whole periods from `from` to `to` (`to` is `from` plus a whole number of periods).
fn periods_between(from: Instant, to: Instant, period: Duration) -> u32 {
    if period.is_zero() {
        return 0;
    }
    u32::try_from(to.saturating_duration_since(from).as_nanos() / period.as_nanos())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_woken_stream_keeps_its_phase_and_its_clock() {
        let next = Instant::now();
        let period = Duration::from_millis(20);
        // Woken before its next period: nothing was missed.
        assert_eq!(unpark(next, period, next - Duration::from_millis(5)), next);
        assert_eq!(periods_between(next, next, period), 0);
        // Woken 45 ms later: two periods passed unsent, the third is next.
        let due = unpark(next, period, next + Duration::from_millis(45));
        assert_eq!(due, next + Duration::from_millis(60));
        assert_eq!(periods_between(next, due, period), 3);
        // Exactly on a period boundary.
        assert_eq!(
            unpark(next, period, next + Duration::from_millis(40)),
            next + Duration::from_millis(40)
        );
    }

    const PERIOD: Duration = Duration::from_millis(20);

    fn slots() -> usize {
        (PERIOD.as_nanos() / COALESCE.as_nanos()) as usize
    }

    #[test]
    fn streams_asking_for_one_instant_are_spread_over_the_period() {
        let origin = Instant::now();
        let mut plan = PhasePlan::new(origin, COALESCE);
        let start = origin + Duration::from_secs(1);
        let mut firsts = Vec::new();
        for _ in 0..2 * slots() {
            let (first, _) = plan.place(start, PERIOD);
            assert!(first >= start && first < start + PERIOD, "{first:?}");
            firsts.push(first);
        }
        // Two streams in every slot, none anywhere else.
        assert_eq!(plan.load(PERIOD), vec![2; slots()]);
        // The first stream of each slot starts at the slot's own beginning.
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), slots());
    }

    #[test]
    fn calls_answered_at_a_regular_rate_do_not_share_a_few_phases() {
        // 200 calls a second: one every 5 ms, so without a plan every 20 ms stream would
        // have one of four phases, 500 streams each.
        let origin = Instant::now();
        let mut plan = PhasePlan::new(origin, COALESCE);
        for call in 0..2000u32 {
            let answered = origin + Duration::from_millis(5) * call;
            let (first, _) = plan.place(answered, PERIOD);
            assert!(first - answered < PERIOD);
        }
        let load = plan.load(PERIOD);
        let most = load.iter().copied().max().unwrap_or(0);
        let fewest = load.iter().copied().min().unwrap_or(0);
        assert_eq!(load.iter().sum::<u32>(), 2000);
        assert!(
            most - fewest <= 1,
            "slots hold {fewest}..{most} streams: {load:?}"
        );
    }

    #[test]
    fn a_balanced_plan_keeps_the_asked_start() {
        let origin = Instant::now();
        let mut plan = PhasePlan::new(origin, COALESCE);
        // One stream per slot, each asking for its own slot: nobody moves.
        for i in 0..slots() as u32 {
            let start = origin + COALESCE * i + Duration::from_micros(10);
            let (first, _) = plan.place(start, PERIOD);
            assert_eq!(first, start);
        }
    }

    #[test]
    fn released_slots_are_reused_and_periods_are_planned_apart() {
        let origin = Instant::now();
        let mut plan = PhasePlan::new(origin, COALESCE);
        let start = origin + Duration::from_millis(3);
        let (_, a) = plan.place(start, PERIOD);
        let (second, _) = plan.place(start, PERIOD);
        assert_eq!(second, origin + Duration::from_micros(3250), "next slot");
        plan.release(a);
        let (third, _) = plan.place(start, PERIOD);
        assert_eq!(third, start, "the released slot is free again");
        // A 30 ms stream has a plan of its own, empty so far.
        let (other, _) = plan.place(start, Duration::from_millis(30));
        assert_eq!(other, start);
        assert_eq!(plan.load(Duration::from_millis(30)).iter().sum::<u32>(), 1);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let origin = Instant::now();
        let mut plan = PhasePlan::new(origin, Duration::ZERO);
        let before = origin
            .checked_sub(Duration::from_millis(7))
            .unwrap_or(origin);
        for period in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(7),
        ] {
            let (first, p) = plan.place(before, period);
            assert!(first >= before);
            plan.release(p);
            plan.release(p);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn realtime_priority_is_granted_or_refused_with_the_reason() {
        let outcome = std::thread::spawn(|| {
            // SAFETY: sched_getscheduler only reads the calling thread's policy.
            let policy = || unsafe { libc::sched_getscheduler(0) };
            match set_realtime_priority(1) {
                Ok(()) => {
                    assert_eq!(policy(), libc::SCHED_FIFO);
                    set_time_shared().expect("back to time-shared");
                    assert_eq!(policy(), libc::SCHED_OTHER);
                    None
                }
                Err(e) => {
                    assert_eq!(policy(), libc::SCHED_OTHER, "a refusal changes nothing");
                    Some(e.kind())
                }
            }
        })
        .join()
        .expect("thread");
        if let Some(kind) = outcome {
            assert_eq!(kind, std::io::ErrorKind::PermissionDenied);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_time_shared_thread_gets_the_short_slice_it_asks_for() {
        std::thread::spawn(|| {
            set_time_slice(PACER_TIME_SLICE).expect("sched_setattr");
            let mut attr = SchedAttr::default();
            // SAFETY: `attr` is a writable, correctly sized sched_attr; pid 0 is this thread.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_sched_getattr,
                    0,
                    &mut attr as *mut SchedAttr,
                    std::mem::size_of::<SchedAttr>() as u32,
                    0,
                )
            };
            assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
            assert_eq!(attr.policy, libc::SCHED_OTHER as u32, "still time-shared");
            // Kernels before 6.12 report no slice; later ones report the one asked for.
            assert!(
                attr.runtime == 0 || attr.runtime == PACER_TIME_SLICE.as_nanos() as u64,
                "slice {} ns",
                attr.runtime
            );
        })
        .join()
        .expect("thread");
    }
}
