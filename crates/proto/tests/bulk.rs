//! Bulk transfers through the pair: the 1 GiB WINDOW_UPDATE budget and the adaptive window on
//! a long-fat link (virtual time).

// Tests read best as "defaults, then the one knob under test".
#![allow(clippy::field_reassign_with_default)]

mod common;

use bytes::Bytes;
use common::*;
use h2mux_proto::pair::Pair;
use h2mux_proto::{Config, StreamId};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Client GETs, server answers with `mib` MiB made of one shared 1 MiB `Bytes`.
fn download(p: &mut Pair, mib: u64) -> StreamId {
    downloads(p, 1, mib)[0]
}

/// `n` such downloads at once.
fn downloads(p: &mut Pair, n: usize, mib: u64) -> Vec<StreamId> {
    p.client.keep_data = false;
    p.server.keep_data = false;
    let ids: Vec<StreamId> = (0..n)
        .map(|_| p.client.conn.open_stream(get("/bulk"), true).unwrap())
        .collect();
    p.run();
    let chunk = Bytes::from(vec![0x5a; MIB as usize]);
    for &id in &ids {
        p.server
            .conn
            .send_headers(id, status("200"), false)
            .unwrap();
        for i in 0..mib {
            p.server
                .conn
                .send_data(id, chunk.clone(), i + 1 == mib)
                .unwrap();
        }
    }
    ids
}

/// 1 GiB through the pair; returns WINDOW_UPDATEs per MiB sent by the receiver.
fn one_gib(latency: Duration, rate: Option<u64>) -> f64 {
    let mut p = Pair::connected();
    p.set_link(latency, rate);
    let id = download(&mut p, 1024);
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(1024 * MIB)));
    assert!(p.client.ended.contains(&id));
    assert!(p.client.error.is_none() && p.server.error.is_none());
    let wu = p.c2s.sent.stream_window_updates + p.c2s.sent.connection_window_updates;
    let per_mib = wu as f64 / 1024.0;
    println!(
        "1 GiB: {} stream + {} connection WINDOW_UPDATEs = {per_mib:.3}/MiB, {} DATA frames, window target {} MiB",
        p.c2s.sent.stream_window_updates,
        p.c2s.sent.connection_window_updates,
        p.s2c.sent.frames[0],
        p.client.conn.stream_window_target() >> 20,
    );
    // "never for a stream that has ended": no WINDOW_UPDATE for the stream after its
    // END_STREAM reached the client.
    assert_eq!(p.c2s.sent.window_updates_after_end, 0);
    // Large frames: 1 MiB each.
    assert_eq!(p.s2c.sent.max_data_frame, 1 << 20);
    assert!(
        p.s2c.sent.frames[0] <= 1100,
        "{} DATA frames",
        p.s2c.sent.frames[0]
    );
    per_mib
}

#[test]
fn one_gib_with_few_window_updates() {
    // Zero latency: the window never needs to grow; a 2 MiB stream window and a 4 MiB
    // connection window credited at half-window thresholds give at most 1.0 per MiB.
    let per_mib = one_gib(Duration::ZERO, None);
    assert!(per_mib <= 1.0, "{per_mib} WINDOW_UPDATE per MiB");
}

#[test]
fn one_gib_over_a_latency_link_grows_windows_and_updates_rarely() {
    // 1 ms one-way at 10 GB/s (BDP 20 MB): the sender is window-limited, the windows grow
    // to their maxima (64 MiB / 128 MiB), credited every 16 MiB (`MAX_UPDATE_THRESHOLD`):
    // measured 0.14 per MiB.
    let per_mib = one_gib(Duration::from_millis(1), Some(10_000_000_000));
    assert!(per_mib <= 0.25, "{per_mib} WINDOW_UPDATE per MiB");
}

#[test]
fn one_gib_without_adaptive_window_stays_within_1_5_updates_per_mib() {
    let mut c = Config::default();
    c.adaptive_window = false;
    let mut p = Pair::new(c, Config::default());
    p.run();
    let id = download(&mut p, 1024);
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(1024 * MIB)));
    let s = p.c2s.sent.stream_window_updates;
    let c = p.c2s.sent.connection_window_updates;
    // 2 MiB stream window credited at most every 1 MiB; 4 MiB connection window at most
    // every 2 MiB: <= 1.5 per MiB (measured: 1.0).
    assert!(s + c <= 1536, "{s} stream, {c} connection updates");
    assert_eq!(p.c2s.sent.window_updates_after_end, 0);
}

#[test]
fn adaptive_window_reaches_the_bdp_of_a_long_fat_link() {
    // 100 ms RTT at 800 Mbit/s: BDP = 10 MB. The initial 2 MiB window would cap the
    // transfer at 2 MiB per RTT = 21 MB/s.
    let rate = 100_000_000u64;
    let bdp = rate / 10;
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(50), Some(rate));
    let id = download(&mut p, 512);
    // Run until 256 MiB arrived, then time the next 200 MiB.
    let mut t_mark = None;
    let mut last = 0u64;
    while p.client.received.get(&id).copied().unwrap_or(0) < 512 * MIB {
        let got = p.client.received.get(&id).copied().unwrap_or(0);
        if got >= 256 * MIB && t_mark.is_none() {
            t_mark = Some((p.now, got));
        }
        assert!(
            p.run_until(Duration::from_secs(5), |p| p
                .client
                .received
                .get(&id)
                .copied()
                .unwrap_or(0)
                > last),
            "stalled at {last}"
        );
        last = p.client.received.get(&id).copied().unwrap_or(0);
    }
    let (t0, b0) = t_mark.unwrap();
    let secs = p.now.duration_since(t0).as_secs_f64();
    let throughput = (512 * MIB - b0) as f64 / secs;
    let target = p.client.conn.stream_window_target();
    println!(
        "long-fat link: window target {} bytes (BDP {bdp}), steady throughput {:.1} MB/s of {} MB/s, rtt {:?}, growths {}",
        target,
        throughput / 1e6,
        rate / 1_000_000,
        p.client.conn.rtt(),
        p.client.conn.stats().window_growths
    );
    assert!(u64::from(target) >= bdp, "window {target} < BDP {bdp}");
    assert!(target <= Config::default().max_stream_window);
    assert!(
        // Measured 1.00 (0.91 with the old 16 MiB maximum). The window ends above the BDP:
        // the samples approach the link rate in steps > 5 % (72, 91, 100 MB/s) as the
        // unbounded link queue of the harness inflates the RTT, so the guard stops it late.
        throughput >= 0.85 * rate as f64,
        "throughput {throughput} B/s"
    );
}

#[test]
fn adaptive_window_stays_put_on_a_slow_link() {
    // 10 ms RTT at 10 MB/s: BDP = 100 KB, far below the 2 MiB initial window. The link's
    // queue inflates the RTT, the rate stays flat: at most one growth.
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(5), Some(10_000_000));
    let id = download(&mut p, 32);
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(32 * MIB)));
    assert!(p.client.conn.stream_window_target() <= 4 << 20);
    assert!(p.client.conn.stats().window_growths <= 1);
}

/// Bytes received on `id` so far.
fn got(p: &Pair, id: StreamId) -> u64 {
    p.client.received.get(&id).copied().unwrap_or(0)
}

#[test]
fn fifty_ms_rtt_at_6_gbit_reaches_ninety_percent_of_the_link_within_two_seconds() {
    // Issue 8 §2 in virtual time: 25 ms each way at 765 MB/s (the TUN link of `h2mux bench
    // --wan 50`: BDP 38 MB = 36.5 MiB). Engine defaults on both sides. The window doubles per
    // RTT from 2 MiB while the sender is window-limited, so the rate reaches 90 % of the link
    // well inside 2 s and stays there; the targets never pass the configured maxima.
    let rate = 765_000_000u64;
    let defaults = Config::default();
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(25), Some(rate));
    p.s2c.tap = false;
    p.c2s.tap = false;
    let id = download(&mut p, 3 * 1024);
    let t0 = p.now;
    let bucket = Duration::from_millis(100);
    let mut rates = Vec::new();
    let mut last = 0u64;
    for i in 1..=30u32 {
        let until = t0 + bucket * i;
        p.run_until(until - p.now, |p| {
            // Checked after every step: the documented ceilings hold at all times.
            let c = &p.client.conn;
            assert!(c.stream_window_target() <= defaults.max_stream_window);
            assert!(c.connection_window_target() <= defaults.max_connection_window);
            false
        });
        let now = got(&p, id);
        rates.push((now - last) as f64 / bucket.as_secs_f64());
        last = now;
    }
    let share: Vec<f64> = rates.iter().map(|r| r / rate as f64).collect();
    println!(
        "50 ms RTT, 765 MB/s: share of link per 100 ms {:?}; window {} MiB / {} MiB, {} growths, rtt {:?}",
        share.iter().map(|s| (s * 100.0).round() as u32).collect::<Vec<_>>(),
        p.client.conn.stream_window_target() >> 20,
        p.client.conn.connection_window_target() >> 20,
        p.client.conn.stats().window_growths,
        p.client.conn.rtt()
    );
    let ramp = share.iter().position(|&s| s >= 0.9).map(|i| i + 1);
    // Measured: 0.7 s (the 7th 100 ms bucket).
    assert!(ramp.is_some_and(|b| b <= 20), "ramp {ramp:?} buckets");
    let ramp = ramp.unwrap();
    // Keeps it: every following half second averages >= 90 % (100 ms buckets swing with
    // the half-window WINDOW_UPDATE cadence).
    for w in share[ramp..].chunks(5) {
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        assert!(mean >= 0.9, "fell to {mean:.3} of the link: {share:?}");
    }
    assert!(p.client.error.is_none() && p.server.error.is_none());
}

#[test]
fn a_reader_that_never_reads_does_not_grow_the_window() {
    // The window grows with what the application consumes, not with what arrives: a peer
    // pushing at a non-reading client on a fast long link gets the initial 2 MiB window and
    // no more, however long it tries.
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(25), Some(765_000_000));
    p.client.auto_release = false;
    let id = download(&mut p, 256);
    p.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(got(&p, id), 2 * MIB);
    assert_eq!(p.client.conn.recv_buffered(id), Some(2 * MIB));
    assert_eq!(p.client.conn.connection_recv_buffered(), 2 * MIB);
    assert_eq!(p.client.conn.stats().window_growths, 0);
    assert_eq!(
        p.client.conn.stream_window_target(),
        Config::default().initial_stream_window
    );
}

#[test]
fn a_reader_that_stops_after_the_ramp_holds_at_most_the_connection_maximum() {
    // Worst case of the memory bound: four downloads ramp the windows to their maxima while
    // the client reads at link speed, then the client stops reading. What the peer can make
    // it buffer is capped by the connection window (128 MiB), each stream by its own (64 MiB).
    let defaults = Config::default();
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(25), Some(765_000_000));
    p.s2c.tap = false;
    p.c2s.tap = false;
    let ids = downloads(&mut p, 4, 1024);
    p.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(
        p.client.conn.stream_window_target(),
        defaults.max_stream_window
    );
    p.client.auto_release = false;
    let mut peak = 0;
    p.run_until(Duration::from_secs(5), |p| {
        peak = peak.max(p.client.conn.connection_recv_buffered());
        false
    });
    let total: u64 = ids.iter().map(|&id| got(&p, id)).sum();
    let buffered = p.client.conn.connection_recv_buffered();
    println!(
        "stopped reader: {} MiB buffered (peak {} MiB)",
        buffered >> 20,
        peak >> 20
    );
    assert!(peak <= u64::from(defaults.max_connection_window), "{peak}");
    for &id in &ids {
        let b = p.client.conn.recv_buffered(id).unwrap();
        assert!(b <= u64::from(defaults.max_stream_window), "{b}");
    }
    // The transfer has stalled: nothing more arrives while nothing is read.
    p.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(ids.iter().map(|&id| got(&p, id)).sum::<u64>(), total);
    assert!(p.client.error.is_none() && p.server.error.is_none());
}
