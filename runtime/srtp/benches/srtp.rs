//! Protect + unprotect of one 20 ms G.711 packet (12-byte header, 160 bytes of payload), per
//! suite, next to a copy of the packet as the floor.

use criterion::{criterion_group, criterion_main, Criterion};
use sma_srtp::{Context, Direction, MasterKey, Suite};
use std::hint::black_box;

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend((0..160u8).map(|i| i.wrapping_mul(37)));
    p
}

fn srtp(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_g711_20ms");
    if std::env::var_os("SMA_BENCH_QUICK").is_some() {
        group.sample_size(10);
        group.measurement_time(std::time::Duration::from_millis(300));
        group.warm_up_time(std::time::Duration::from_millis(100));
    }
    group.bench_function("copy (floor)", |b| {
        let p = packet(1);
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&p));
            black_box(&out);
        })
    });
    for suite in Suite::ALL {
        let key = MasterKey::generate(suite).expect("key");
        let mut tx = Context::new(&key, Direction::Outbound);
        let mut rx = Context::new(&key, Direction::Inbound);
        let mut seq = 0u16;
        let mut buf = Vec::with_capacity(256);
        group.bench_function(format!("{suite} protect+unprotect"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf.clear();
                buf.extend_from_slice(&packet(seq));
                tx.protect_rtp(&mut buf).expect("protect");
                black_box(rx.unprotect_rtp(&mut buf).expect("unprotect"));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, srtp);
criterion_main!(benches);
