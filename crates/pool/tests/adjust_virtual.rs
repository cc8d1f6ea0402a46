//! The dynamic capacity and interval rule (crate::adjust) driving a real pool pair, in virtual
//! time: tokio's paused clock, the pools connected by in-memory pipes (TLS and HTTP/2 as
//! usual), so rounds of up to 1.6 s pass in no real time and every round is observed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use h2mux_pool::transport::Transport;
use h2mux_pool::{ClientPool, Dialer, Listen, ServerConfig, ServerPool};

/// (capacity, interval in ms) after each round, as the watcher saw them.
type Log = Arc<Mutex<Vec<(usize, u64)>>>;

async fn pools() -> (ServerPool, ClientPool, Log) {
    let certs = certs();
    let (tx, rx) = tokio::sync::mpsc::channel::<Transport>(16);
    let server = ServerPool::new(ServerConfig::new(
        64,
        certs.server.clone(),
        Listen::Incoming(rx),
    ))
    .await
    .unwrap();
    let mut cfg = client_config("memory:1", &certs);
    cfg.min_capacity = 10;
    cfg.max_capacity = 40;
    cfg.min_interval = Duration::from_millis(100);
    cfg.max_interval = Duration::from_millis(1600);
    cfg.keep_alive = Duration::ZERO;
    cfg.dialer = Dialer::custom(move |_addr| {
        let tx = tx.clone();
        async move {
            let (a, b) = tokio::io::duplex(1 << 20);
            tx.send(Transport {
                io: Box::new(b),
                local: None,
                peer: None,
            })
            .await
            .map_err(|_| std::io::Error::other("server gone"))?;
            Ok(Transport {
                io: Box::new(a),
                local: None,
                peer: None,
            })
        }
    });
    let client = ClientPool::new(cfg).unwrap();
    let log: Log = Arc::default();
    let (c2, l2) = (client.clone(), log.clone());
    tokio::spawn(async move {
        let mut seen = c2.rounds();
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let r = c2.rounds();
            if r != seen {
                assert_eq!(r, seen + 1, "the watcher sees every round");
                seen = r;
                l2.lock()
                    .unwrap()
                    .push((c2.capacity(), c2.interval().as_millis() as u64));
            }
        }
    });
    (server, client, log)
}

/// Takes every stream waiting on both sides (the server names them, the client takes them).
async fn take_all(server: &ServerPool, client: &ClientPool) -> usize {
    let mut n = 0;
    while let Ok((id, s)) = server.incoming_get(Duration::ZERO).await {
        if let Ok(c) = client.outgoing_get(id, Duration::from_secs(1)).await {
            n += 1;
            drop(c);
        }
        drop(s);
    }
    n
}

/// Waits (in virtual time) until `n` more rounds have ended.
async fn rounds(client: &ClientPool, n: u64) {
    let target = client.rounds() + n;
    while client.rounds() < target {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn capacity_and_interval_follow_the_rule_round_by_round() {
    let (server, client, log) = pools().await;
    let _ctl = client
        .outgoing_get(h2mux_pool::PoolStreamId::CONTROL, Duration::from_secs(5))
        .await
        .unwrap();
    wait_until(Duration::from_secs(5), "the pool fills", || {
        client.active() >= 10
    })
    .await;
    rounds(&client, 1).await;
    log.lock().unwrap().clear();

    // Heavy use: everything is taken as soon as it is there. Every round sees usage ≥ 80 %:
    // the capacity grows by a quarter per round up to the maximum, and the pool, emptied by
    // every take, keeps the interval at its minimum.
    let start = client.rounds();
    while client.rounds() < start + 9 {
        take_all(&server, &client).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let heavy: Vec<(usize, u64)> = log.lock().unwrap().drain(..).collect();
    let caps: Vec<usize> = heavy.iter().map(|r| r.0).collect();
    assert_eq!(caps[..8], [12, 15, 18, 22, 27, 33, 40, 40], "{heavy:?}");
    assert!(heavy.iter().all(|r| r.1 == 100), "{heavy:?}");

    // Quiet: nothing is taken. Usage ≤ 20 % shrinks the capacity by an eighth per round down
    // to the minimum; a full pool doubles the interval per round up to the maximum.
    wait_until(
        Duration::from_secs(60),
        "the pool shrinks to its minimum",
        || client.capacity() == 10 && client.interval() == Duration::from_millis(1600),
    )
    .await;
    let quiet: Vec<(usize, u64)> = log.lock().unwrap().drain(..).collect();
    let caps: Vec<usize> = quiet.iter().map(|r| r.0).collect();
    let ivls: Vec<u64> = quiet.iter().map(|r| r.1).collect();
    assert_eq!(
        caps,
        [35, 31, 28, 25, 22, 20, 18, 16, 14, 13, 12, 11, 10],
        "{quiet:?}"
    );
    assert_eq!(ivls[..5], [200, 400, 800, 1600, 1600], "{quiet:?}");
    assert_eq!(
        client.active(),
        40,
        "shrinking keeps the streams already made"
    );

    // Running low: right after a round, all but one idle streams are taken at once (so
    // nothing refills early); the round ends with the pool under 20 % full, and the interval
    // halves while the capacity grows.
    rounds(&client, 1).await;
    let mut took = 0;
    while client.active() > 1 {
        let (id, s) = server.incoming_get(Duration::ZERO).await.unwrap();
        let c = client
            .outgoing_get(id, Duration::from_secs(1))
            .await
            .unwrap();
        drop((s, c));
        took += 1;
    }
    assert!(took >= 9);
    log.lock().unwrap().clear();
    rounds(&client, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let low = log.lock().unwrap().clone();
    assert_eq!(low.first().map(|r| r.1), Some(800), "{low:?}");
}
