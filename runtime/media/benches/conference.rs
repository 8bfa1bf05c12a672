//! Load tool: what the conference mixer costs, and how many participants one core mixes
//! within the tick budget.
//!
//! Participants are G.711 legs (8 kHz pipes): in each meeting three talk (tones at speech
//! level), the others send faint line noise (below the silence threshold), as dial-in
//! attendees mostly do. Each tick the driver fills every input pipe and empties every output
//! pipe outside the timed section (the legs' receive tasks and the pacer do that work in
//! `sma serve`); what is timed is [`Mixer::tick`], ticks run back to back on this thread.
//!
//! 1. Mixing cost per participant per 20 ms tick, for one meeting of 200 and for 50 meetings
//!    of 10.
//! 2. The largest single meeting, and the most participants across 50 meetings, whose p99
//!    tick time stays ≤ 2 ms (a tenth of the tick).
//!
//! Prints a table; `SMA_BENCH_QUICK=1` runs small sizes only (CI).

use sma_media::bridge::PcmPipe;
use sma_media::conference::{AudioCapability, ConferenceConfig, Mixer};
use std::sync::Arc;
use std::time::Instant;

const FRAME: usize = 160;
const BUDGET_US: f64 = 2000.0;

fn quick() -> bool {
    std::env::var_os("SMA_BENCH_QUICK").is_some()
}

struct Leg {
    input: Arc<PcmPipe>,
    output: Arc<PcmPipe>,
    /// A talker's tone (Hz), or none: line noise.
    tone: Option<f64>,
    sent: usize,
}

struct Load {
    mixer: Mixer,
    legs: Vec<Leg>,
    scratch: Vec<i16>,
    noise: u32,
}

impl Load {
    /// `meetings` meetings of `size` participants, three talking in each.
    fn new(meetings: usize, size: usize) -> Load {
        let mut mixer = Mixer::new(ConferenceConfig::default(), size.max(1));
        let mut legs = Vec::new();
        for m in 0..meetings {
            for i in 0..size {
                let input = PcmPipe::new(8000, 200);
                let output = PcmPipe::new(8000, 200);
                let both = AudioCapability {
                    send: true,
                    receive: true,
                };
                let id = format!("m{m}-p{i}");
                if let Err(e) =
                    mixer.join(&format!("m{m}"), &id, input.clone(), output.clone(), both)
                {
                    panic!("join {id}: {e}");
                }
                legs.push(Leg {
                    input,
                    output,
                    tone: (i < 3).then_some(300.0 + 170.0 * i as f64),
                    sent: 0,
                });
            }
        }
        Load {
            mixer,
            legs,
            scratch: Vec::with_capacity(FRAME * 8),
            noise: 1,
        }
    }

    /// Fills every input with 20 ms and empties every output (not timed).
    fn feed(&mut self) {
        for leg in &mut self.legs {
            self.scratch.clear();
            match leg.tone {
                Some(hz) => self.scratch.extend((leg.sent..leg.sent + FRAME).map(|n| {
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin()) as i16
                })),
                None => {
                    for _ in 0..FRAME {
                        // xorshift: noise of about ±24 (-62 dBFS).
                        self.noise ^= self.noise << 13;
                        self.noise ^= self.noise >> 17;
                        self.noise ^= self.noise << 5;
                        self.scratch.push((self.noise % 49) as i16 - 24);
                    }
                }
            }
            leg.sent += FRAME;
            leg.input.push(&self.scratch);
            let waiting = leg.output.len();
            if waiting > 0 {
                self.scratch.clear();
                // Drain what the mixer sent, as the leg's output would.
                leg.output.take(waiting, &mut self.scratch);
            }
        }
    }

    /// Tick durations (µs) of `ticks` ticks, sorted.
    fn run(&mut self, ticks: usize) -> Vec<f64> {
        let mut durations = Vec::with_capacity(ticks);
        for _ in 0..ticks {
            self.feed();
            let started = Instant::now();
            let report = self.mixer.tick();
            durations.push(started.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(report);
        }
        durations.sort_by(f64::total_cmp);
        durations
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // Criterion passes `--bench`; this tool takes no arguments.
    let ticks = if quick() { 100 } else { 500 };
    println!("== conference mixer: cost per participant per 20 ms tick (3 talkers per meeting)");
    println!(
        "{:>10} {:>6} {:>12} {:>12} {:>12} {:>14}",
        "meetings", "size", "p50_us", "p99_us", "max_us", "ns/participant"
    );
    for (meetings, size) in [(1, 200), (50, 10)] {
        let mut load = Load::new(meetings, size);
        load.run(10);
        let d = load.run(ticks);
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        println!(
            "{meetings:>10} {size:>6} {:>12.1} {:>12.1} {:>12.1} {:>14.0}",
            quantile(&d, 0.5),
            quantile(&d, 0.99),
            d.last().copied().unwrap_or(0.0),
            mean * 1000.0 / (meetings * size) as f64
        );
    }
    let sizes: &[usize] = if quick() {
        &[200, 400]
    } else {
        &[200, 500, 1000, 2000, 4000, 8000]
    };
    println!("== the largest meeting with p99 tick <= 2 ms");
    println!("{:>10} {:>12} {:>12}", "size", "p50_us", "p99_us");
    let mut largest = 0;
    for &size in sizes {
        let mut load = Load::new(1, size);
        load.run(10);
        let d = load.run(ticks);
        let p99 = quantile(&d, 0.99);
        println!("{size:>10} {:>12.1} {p99:>12.1}", quantile(&d, 0.5));
        if p99 > BUDGET_US {
            break;
        }
        largest = size;
    }
    println!("largest single meeting with p99 tick <= 2 ms: {largest}");
    println!("== participants across 50 meetings with p99 tick <= 2 ms");
    println!(
        "{:>10} {:>8} {:>12} {:>12}",
        "total", "each", "p50_us", "p99_us"
    );
    let mut most = 0;
    for &total in sizes {
        let each = total / 50;
        let mut load = Load::new(50, each);
        load.run(10);
        let d = load.run(ticks);
        let p99 = quantile(&d, 0.99);
        println!(
            "{total:>10} {each:>8} {:>12.1} {p99:>12.1}",
            quantile(&d, 0.5)
        );
        if p99 > BUDGET_US {
            break;
        }
        most = total;
    }
    println!("most participants across 50 meetings with p99 tick <= 2 ms: {most}");
}
