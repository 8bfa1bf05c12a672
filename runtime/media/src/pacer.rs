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
//! Each stream sends from its call leg's own socket (symmetric RTP: the far end expects our
//! packets from the port in our SDP), so `sendmmsg` batching applies only within one socket;
//! one `send_to` per packet is what the kernel allows across legs.

use crate::rtp::RtpSender;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Packets due within this much of a wake-up are sent in it (see the module documentation).
pub const COALESCE: Duration = Duration::from_micros(250);

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
    /// The source is finished; the stream is removed.
    End,
}

/// What a stream plays: prompts, tones, bridged audio. Called on the pacing thread once per
/// period; must not block.
pub trait FrameSource: Send {
    /// Writes the payload into `payload` (cleared by the caller) and says what it is.
    /// `next_timestamp` is the RTP timestamp the next audio packet will carry.
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame;
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

struct Stream {
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    sender: RtpSender,
    source: Box<dyn FrameSource>,
    period: Duration,
    due: Instant,
    stopped: Arc<AtomicBool>,
}

enum Command {
    Add(u64, Box<Stream>),
    Retarget(u64, SocketAddr),
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
    pub fn start() -> Pacer {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(PacerStats::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = {
            let stats = stats.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("sma-pacer".into())
                .spawn(move || run(rx, stats, shutdown))
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

    /// Starts a stream: its first frame is sent at `start`, then one every `period`.
    pub fn add(
        &self,
        socket: Arc<UdpSocket>,
        destination: SocketAddr,
        sender: RtpSender,
        source: Box<dyn FrameSource>,
        period: Duration,
        start: Instant,
    ) -> StreamHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stopped = Arc::new(AtomicBool::new(false));
        let stream = Stream {
            socket,
            destination,
            sender,
            source,
            period,
            due: start,
            stopped: stopped.clone(),
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

fn run(commands: mpsc::Receiver<Command>, stats: Arc<PacerStats>, shutdown: Arc<AtomicBool>) {
    let mut streams: HashMap<u64, Stream> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut payload = Vec::with_capacity(1500);
    let mut packet = Vec::with_capacity(1500);
    while !shutdown.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Add(id, s) => {
                    heap.push(Reverse((s.due, id)));
                    streams.insert(id, *s);
                }
                Command::Retarget(id, addr) => {
                    if let Some(s) = streams.get_mut(&id) {
                        s.destination = addr;
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
                Frame::End => {
                    stream.stopped.store(true, Ordering::Relaxed);
                    streams.remove(&id);
                    continue;
                }
            };
            if send && !packet.is_empty() {
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
