//! `SimTransport` over turmoil's simulated network: frames cross unchanged; cuts,
//! stalls and the bandwidth cap behave as planned on the virtual clock; and the
//! same seed gives the same run, byte for byte.

#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{EntryPush, WireEntry};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError};
use synctree_transport::sim::{Fault, FaultPlan, SimFault, SimFaults, SimTransport, sim_fault};
use synctree_transport::{FramedTransport, LENGTH_PREFIX_BYTES};

const PORT: u16 = 7000;

/// A message whose encoding is a little over `len` bytes.
fn payload(i: u64, len: usize) -> StreamMessage {
    StreamMessage::new(Body::EntryPush(EntryPush {
        entries: vec![WireEntry {
            key: format!("k{i}").into_bytes().into(),
            value: vec![(i % 251) as u8; len].into(),
            hlc: i,
            node: 1,
            tombstone: false,
        }],
    }))
}

fn wire_len(message: &StreamMessage) -> u64 {
    (prost::Message::encoded_len(message) + LENGTH_PREFIX_BYTES) as u64
}

/// A server host that echoes every message back over a `SimTransport` with
/// `plan`, until the client closes.
fn echo_server(sim: &mut turmoil::Sim<'_>, plan: FaultPlan) {
    sim.host("server", move || async move {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
        loop {
            let (stream, addr) = listener.accept().await?;
            let mut transport = SimTransport::new(stream, addr.to_string(), plan);
            tokio::spawn(async move {
                while let Ok(Some(message)) = transport.recv().await {
                    if transport.send(&message).await.is_err() {
                        break;
                    }
                }
                let _ = transport.close().await;
            });
        }
    });
}

type Trace = Arc<Mutex<Vec<String>>>;

fn note(trace: &Trace, line: String) {
    trace
        .lock()
        .unwrap()
        .push(format!("{:>6} ms {line}", turmoil::elapsed().as_millis()));
}

/// Sends `count` messages of `len` bytes one at a time and records each echo.
async fn ping_pong(
    plan: FaultPlan,
    count: u64,
    len: usize,
    trace: Trace,
) -> Result<(), TransportError> {
    let addr = format!("server:{PORT}");
    let mut client = SimTransport::connect(&addr, plan).await?;
    for i in 0..count {
        client.send(&payload(i, len)).await?;
        let reply = client.recv_timeout(Duration::from_secs(5)).await?;
        note(
            &trace,
            format!("echo {i} ok={}", reply == Some(payload(i, len))),
        );
    }
    client.close().await?;
    let stats = client.stats();
    note(&trace, format!("stats {stats:?}"));
    Ok(())
}

fn builder(seed: u64) -> turmoil::Builder {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(Duration::from_secs(600))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(20));
    builder
}

/// Runs one client against an echo server and returns the trace and the client's
/// error (as text), if it failed.
fn run(
    seed: u64,
    client_plan: FaultPlan,
    server_plan: FaultPlan,
    count: u64,
    len: usize,
) -> (Vec<String>, Option<String>) {
    let mut sim = builder(seed).build();
    echo_server(&mut sim, server_plan);
    let trace = Trace::default();
    let outcome = Arc::new(Mutex::new(None));
    let (t, o) = (trace.clone(), outcome.clone());
    sim.client("client", async move {
        if let Err(e) = ping_pong(client_plan, count, len, t.clone()).await {
            let fault = sim_fault(&e).cloned();
            note(&t, format!("error {e:?}"));
            *o.lock().unwrap() = Some(format!("{e}|{fault:?}"));
        }
        Ok(())
    });
    sim.run().unwrap();
    let trace = trace.lock().unwrap().clone();
    let outcome = outcome.lock().unwrap().clone();
    (trace, outcome)
}

#[test]
fn frames_cross_the_simulated_network_unchanged() {
    let (trace, error) = run(1, FaultPlan::none(), FaultPlan::none(), 20, 3000);
    assert_eq!(error, None);
    assert_eq!(trace.iter().filter(|l| l.ends_with("ok=true")).count(), 20);
    let sent: u64 = (0..20).map(|i| wire_len(&payload(i, 3000))).sum();
    let stats = trace.last().unwrap();
    assert!(stats.contains(&format!("bytes_sent: {sent}")), "{stats}");
    assert!(
        stats.contains(&format!("bytes_received: {sent}")),
        "{stats}"
    );
}

#[test]
fn a_cut_fails_the_session_with_a_typed_error_after_exactly_its_bytes() {
    let cut = FaultPlan {
        fault: Some((10_000, Fault::Cut)),
        bandwidth: None,
    };
    let (trace, error) = run(2, cut, FaultPlan::none(), 20, 3000);
    let error = error.expect("the session failed");
    assert!(
        error.starts_with("i/o error|Some(Cut { after_bytes: 10000 })"),
        "{error}"
    );
    let echoed = trace.iter().filter(|l| l.ends_with("ok=true")).count();
    // Each round trip moves a little over 6000 bytes through the client's end.
    assert_eq!(echoed, 1, "{trace:#?}");
}

#[test]
fn a_cut_is_seen_by_the_peer_as_a_failed_or_closed_stream() {
    let mut sim = builder(3).build();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    sim.host("server", move || {
        let s = s.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
            let (stream, addr) = listener.accept().await?;
            let mut transport = SimTransport::new(stream, addr.to_string(), FaultPlan::none());
            let mut received = 0;
            let end = loop {
                match transport.recv().await {
                    Ok(Some(_)) => received += 1,
                    Ok(None) => break "closed".to_owned(),
                    Err(e) => break format!("error {e}"),
                }
            };
            *s.lock().unwrap() = Some((received, end));
            Ok(())
        }
    });
    sim.client("client", async move {
        let plan = FaultPlan {
            fault: Some((5_000, Fault::Cut)),
            bandwidth: None,
        };
        let mut client = SimTransport::connect(&format!("server:{PORT}"), plan).await?;
        for i in 0..10 {
            client.send(&payload(i, 1000)).await?;
        }
        // `close` only hands the bytes to the socket; the cut shows on the next read.
        client.close().await?;
        let error = client.recv().await.unwrap_err();
        assert_eq!(
            sim_fault(&error),
            Some(&SimFault::Cut { after_bytes: 5_000 })
        );
        Ok(())
    });
    sim.run().unwrap();
    while seen.lock().unwrap().is_none() {
        sim.step().unwrap();
    }
    let (received, end) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(received, 4, "four whole 1 KiB frames fit in 5000 bytes");
    assert!(end == "closed" || end.starts_with("error"), "{end}");
}

#[test]
fn a_stall_makes_the_receive_timeout_fire_on_the_virtual_clock() {
    let stall = FaultPlan {
        fault: Some((4_000, Fault::Stall)),
        bandwidth: None,
    };
    let (trace, error) = run(4, stall, FaultPlan::none(), 5, 1500);
    assert_eq!(error.as_deref(), Some("no message within 5s|None"));
    assert_eq!(trace.iter().filter(|l| l.ends_with("ok=true")).count(), 1);
    let failed_at: u64 = trace
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((5_000..5_100).contains(&failed_at), "{trace:#?}");
}

#[test]
fn the_bandwidth_cap_delays_transfers_on_the_virtual_clock() {
    let capped = FaultPlan {
        fault: None,
        bandwidth: NonZeroU64::new(10_000),
    };
    // 10 round trips of ~2 KB each way through a 10 KB/s cap: about 4 virtual seconds.
    let (trace, error) = run(5, capped, FaultPlan::none(), 10, 2000);
    assert_eq!(error, None);
    let last_echo: u64 = trace[9].split_whitespace().next().unwrap().parse().unwrap();
    assert!((4_000..5_000).contains(&last_echo), "{trace:#?}");
    let (fast, _) = run(5, FaultPlan::none(), FaultPlan::none(), 10, 2000);
    let fast_echo: u64 = fast[9].split_whitespace().next().unwrap().parse().unwrap();
    assert!(fast_echo < 1_000, "{fast:#?}");
}

#[test]
fn the_same_seed_gives_the_same_run_byte_for_byte() {
    let faults = SimFaults {
        loss: 0.3,
        stall: 0.2,
        fault_window: 40_000,
        bandwidth: NonZeroU64::new(200_000),
    };
    let runs: Vec<_> = (0..3)
        .map(|_| {
            (0..8u64)
                .map(|seed| run(seed, faults.plan(seed), faults.plan(seed + 100), 12, 1800))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
    let failures = runs[0].iter().filter(|(_, e)| e.is_some()).count();
    assert!(
        failures > 0 && failures < 8,
        "faults drawn: {failures} of 8 failed"
    );
}

#[tokio::test(start_paused = true)]
async fn any_byte_stream_can_carry_a_sim_transport() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let cut = FaultPlan {
        fault: Some((2_500, Fault::Cut)),
        bandwidth: NonZeroU64::new(1_000),
    };
    let mut near = SimTransport::new(a, "near", cut);
    let mut far = FramedTransport::new(b, "far");
    let started = tokio::time::Instant::now();
    for i in 0..3 {
        near.send(&payload(i, 1000)).await.unwrap();
    }
    let error = near.close().await.err();
    let closed = near.recv().await.unwrap_err();
    assert!(error.is_none(), "close only hands the bytes to the pipe");
    assert_eq!(
        sim_fault(&closed),
        Some(&SimFault::Cut { after_bytes: 2_500 })
    );
    assert!(
        started.elapsed() >= Duration::from_millis(2_400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(far.recv().await.unwrap(), Some(payload(0, 1000)));
    assert_eq!(far.recv().await.unwrap(), Some(payload(1, 1000)));
    assert!(
        far.recv().await.is_err(),
        "the third frame was cut in the middle"
    );
}
