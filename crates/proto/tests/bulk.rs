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
    p.client.keep_data = false;
    p.server.keep_data = false;
    let id = p.client.conn.open_stream(get("/bulk"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    let chunk = Bytes::from(vec![0x5a; MIB as usize]);
    for i in 0..mib {
        p.server
            .conn
            .send_data(id, chunk.clone(), i + 1 == mib)
            .unwrap();
    }
    id
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
    // to 16 MiB / 32 MiB, and updates drop to about 3 per 16 MiB.
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
    assert!(target <= 16 << 20);
    assert!(
        throughput >= 0.85 * rate as f64, // measured 0.91
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
