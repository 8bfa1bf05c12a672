//! Load tool: how many concurrent G.711 playout streams the pacer carries on this machine.
//!
//! For each N: N legs (one socket each) play 20 ms PCMU packets through one [`Pacer`] to
//! loopback receivers that record every packet's kernel arrival time. A run passes when the
//! p99 send-time error (late or early) is ≤ 1 ms and no packet arrives more than 5 ms later
//! than its stream's cadence says. Next to it, in the same run, a raw-UDP baseline sends the
//! same packet rate from a minimal loop (prebuilt packets, no RTP state, no sources), so CPU
//! use can be read as a ratio. Prints a table; `SMA_BENCH_QUICK=1` runs two small sizes only (CI).

use sma_media::codec::AudioCodec;
use sma_media::pacer::{
    set_realtime_priority, set_time_shared, set_time_slice, Pacer, PacerSettings, PACER_TIME_SLICE,
};
use sma_media::rtp::RtpSender;
use sma_media::source::PcmSource;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PERIOD: Duration = Duration::from_millis(20);

/// The pacer's scheduling: `sma serve`'s default (`[media] pacer_realtime_priority = 0`,
/// time-shared), or the priority in `SMA_PACER_PRIORITY`. The raw sender gets the same.
fn realtime() -> Option<u8> {
    std::env::var("SMA_PACER_PRIORITY")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|p| *p > 0)
}

fn quick() -> bool {
    std::env::var_os("SMA_BENCH_QUICK").is_some()
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    (ticks(11) + ticks(12)) / 100.0
}

/// A receiving socket that stamps each datagram with its kernel arrival time
/// (`SO_TIMESTAMPNS`), so the receiver can read in batches without blurring arrival times.
fn receiver_socket() -> UdpSocket {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    let _ = socket.set_recv_buffer_size(8 << 20);
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .expect("bind");
    let socket: UdpSocket = socket.into();
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::ReceiveTimestampns,
        &true,
    )
    .expect("SO_TIMESTAMPNS");
    socket.set_nonblocking(true).expect("nonblocking");
    socket
}

struct Arrivals {
    /// Per SSRC: (first sequence, offsets of arrival minus cadence, in µs from start).
    streams: HashMap<u32, (u16, Vec<i64>)>,
    received: u64,
}

/// Drains the socket every millisecond (a receiver woken per packet would cost more CPU than
/// the senders it measures, on the same two cores); arrival times come from the kernel's
/// timestamps, in µs since `start`.
fn receive(socket: UdpSocket, start: SystemTime, stop: Arc<AtomicBool>) -> Arrivals {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 1500];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut a = Arrivals {
        streams: HashMap::new(),
        received: 0,
    };
    let start_ns = start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    while !stop.load(Ordering::Relaxed) {
        let (n, arrival_ns) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<SockaddrIn>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => {
                    let stamp = msg.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::ScmTimestampns(t) => {
                                Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec())
                            }
                            _ => None,
                        })
                    });
                    (msg.bytes, stamp)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            }
        };
        let Some(arrival_ns) = arrival_ns else {
            continue;
        };
        let now = (arrival_ns - start_ns) / 1000;
        if n < 12 {
            continue;
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let entry = a.streams.entry(ssrc).or_insert((seq, Vec::new()));
        let k = i64::from(seq.wrapping_sub(entry.0));
        entry.1.push(now - k * PERIOD.as_micros() as i64);
        a.received += 1;
    }
    a
}

struct Outcome {
    n: usize,
    cpu_percent: f64,
    p99_lateness_us: u64,
    late_over_5ms: u64,
    received: u64,
    expected: u64,
}

/// Runs N streams for `seconds`; `raw` selects the baseline sender.
fn run(n: usize, seconds: u64, raw: bool) -> Outcome {
    let priority = realtime();
    let receivers: Vec<UdpSocket> = (0..2).map(|_| receiver_socket()).collect();
    let targets: Vec<SocketAddr> = receivers.iter().map(|r| r.local_addr().unwrap()).collect();
    let senders: Vec<Arc<UdpSocket>> = (0..n)
        .map(|_| Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind sender")))
        .collect();
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = receivers
        .into_iter()
        .map(|r| {
            let stop = stop.clone();
            std::thread::spawn(move || receive(r, start_wall, stop))
        })
        .collect();
    let first = start + Duration::from_millis(200);
    let phase = |i: usize| first + PERIOD.mul_f64(i as f64 / n as f64);
    let warmup = Duration::from_secs(1);
    let audio: Arc<[i16]> = vec![1000i16; 8000 * (seconds as usize + 3)].into();
    let mut lateness_p99 = 0;
    let cpu_before;
    let measured_from;
    if raw {
        // Baseline: prebuilt packets, a deadline loop, nothing else.
        let packets: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut p = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0];
                p.extend_from_slice(&(i as u32).to_be_bytes());
                p.extend(std::iter::repeat_n(0xFFu8, 160));
                p
            })
            .collect();
        // The pacer's phase plan puts streams at the starts of COALESCE-wide slots, spread
        // evenly over the period, so each wake-up finds its share of packets due together.
        let coalesce = sma_media::pacer::COALESCE;
        let slots = (PERIOD.as_nanos() / coalesce.as_nanos()).max(1) as usize;
        let slot_phase = |i: usize| first + coalesce * ((i * slots / n) as u32);
        let mut due: Vec<Instant> = (0..n).map(|i| slot_phase(i) + warmup).collect();
        let mut seq = vec![0u16; n];
        let end = first + warmup + Duration::from_secs(seconds);
        std::thread::sleep(first + warmup - Instant::now().min(first + warmup));
        cpu_before = cpu_seconds();
        measured_from = Instant::now();
        // The same scheduling as the pacer gets: SCHED_FIFO when asked for, else the
        // pacer's short time slice (kept by this thread afterwards; it only sleeps then).
        match priority {
            Some(p) => {
                if let Err(e) = set_realtime_priority(p) {
                    eprintln!("raw sender runs time-shared: {e}");
                }
            }
            None => {
                let _ = set_time_slice(PACER_TIME_SLICE);
            }
        }
        let mut packet = vec![0u8; 172];
        let mut late = Vec::new();
        while Instant::now() < end {
            let now = Instant::now();
            // The pacer's schedule: everything due within its coalescing window goes out in
            // one wake-up, so the two differ only in the work done per packet.
            let horizon = now + sma_media::pacer::COALESCE;
            let mut next = now + Duration::from_millis(1);
            for i in 0..n {
                if due[i] <= horizon {
                    packet.copy_from_slice(&packets[i]);
                    packet[2..4].copy_from_slice(&seq[i].to_be_bytes());
                    let sent_at = Instant::now();
                    let error = sent_at
                        .saturating_duration_since(due[i])
                        .max(due[i].saturating_duration_since(sent_at));
                    late.push(error.as_micros() as u64);
                    let _ = senders[i].send_to(&packet, targets[i % 2]);
                    seq[i] = seq[i].wrapping_add(1);
                    due[i] += PERIOD;
                }
                next = next.min(due[i]);
            }
            let wait = next.saturating_duration_since(Instant::now() + sma_media::pacer::COALESCE);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        late.sort_unstable();
        lateness_p99 = late.get(late.len() * 99 / 100).copied().unwrap_or(0);
        if priority.is_some() {
            let _ = set_time_shared();
        }
    } else {
        let pacer = Pacer::with_settings(PacerSettings {
            realtime_priority: priority,
            ..PacerSettings::default()
        });
        for (i, socket) in senders.iter().enumerate() {
            pacer.add(
                socket.clone(),
                targets[i % 2],
                RtpSender::new(i as u32, 0, 0),
                Box::new(PcmSource::new(audio.clone(), AudioCodec::Pcmu, 0, 20).unwrap()),
                PERIOD,
                phase(i),
            );
        }
        std::thread::sleep((first + warmup).saturating_duration_since(Instant::now()));
        pacer.stats.reset();
        cpu_before = cpu_seconds();
        measured_from = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        lateness_p99 = lateness_p99.max(pacer.stats.lateness_quantile_us(0.99));
        drop(pacer);
    }
    let wall = measured_from.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut late_over_5ms = 0;
    let mut received = 0;
    for t in threads {
        let a = t.join().expect("receiver");
        for (_, (_, offsets)) in a.streams {
            let Some(min) = offsets.iter().copied().min() else {
                continue;
            };
            // Offsets are arrival minus the stream's cadence; the earliest one is the stream's
            // on-time arrival, anything 5 ms past it is late.
            late_over_5ms += offsets.iter().filter(|o| **o - min > 5_000).count() as u64;
            received += offsets.len() as u64;
        }
    }
    Outcome {
        n,
        cpu_percent: cpu / wall * 100.0,
        p99_lateness_us: lateness_p99,
        late_over_5ms,
        received,
        // The pacer also sends during the warm-up; the raw sender only while measured.
        expected: (n as f64 * (wall + if raw { 0.0 } else { warmup.as_secs_f64() }) * 50.0) as u64,
    }
}

fn print(label: &str, o: &Outcome) {
    let pass = o.p99_lateness_us <= 1_000 && o.late_over_5ms == 0;
    println!(
        "  {label:<8} N={:<6} CPU {:>6.1}%  send p99 error ≤{:>5} µs  arrivals late >5 ms: {:<7} received {}/{}  {}",
        o.n,
        o.cpu_percent,
        o.p99_lateness_us,
        o.late_over_5ms,
        o.received,
        o.expected,
        if pass { "pass" } else { "FAIL" }
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing else is understood.
    let sizes: Vec<usize> = if quick() {
        vec![200, 1000]
    } else {
        vec![500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000]
    };
    let seconds = if quick() { 2 } else { 5 };
    println!(
        "\nConcurrent 20 ms PCMU playout streams on loopback ({seconds} s each, 2 receivers):"
    );
    let mut best = 0;
    for n in sizes {
        let pacer = run(n, seconds, false);
        print("pacer", &pacer);
        let raw = run(n, seconds, true);
        print("raw UDP", &raw);
        println!(
            "           pacer CPU / raw-UDP CPU = {:.2}",
            pacer.cpu_percent / raw.cpu_percent.max(0.1)
        );
        if pacer.p99_lateness_us <= 1_000 && pacer.late_over_5ms == 0 {
            best = n;
        } else {
            break;
        }
    }
    println!("  largest N meeting p99 send error ≤ 1 ms and no arrival late > 5 ms: {best}");
}
