//! `synctree demo`: two in-memory nodes, diverged data, one sync over real TCP,
//! mutually authenticated TLS 1.3 by default (ephemeral identities that allow
//! each other), QUIC with `--quic`, plaintext with `--insecure-plaintext`.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synctree_cli::generate::{generate, generated_version, value_bytes};
use synctree_manager::{ManagerConfig, ManagerError, ProtocolChoice, SessionReport, SyncManager};
use synctree_primitives::{ContextId, Entry, Hash, Identity, NodeId, Store, SyncTransport, merkle};
use synctree_secure::quic::{self, QuicServer};
use synctree_secure::{AllowList, NodeKey, PeerPolicy, TlsAcceptor, tls};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::net::{TcpListener, TcpStream};

use crate::protocol_arg::ProtocolArg;

/// Entries generated per store batch.
const GENERATE_BATCH: u64 = 10_000;

/// Arguments of `synctree demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Entries both nodes share.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Differing entries: a third only on A, a third only on B, a third on both with
    /// different versions (every tenth of A's is a delete of a shared key).
    #[arg(long, default_value_t = 1_000)]
    diff: u64,
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    protocol: ProtocolArg,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start node A with nothing, as a fresh node joining (auto selects snapshot).
    #[arg(long)]
    empty_a: bool,
    /// Sync over QUIC (UDP on loopback) instead of TLS over TCP.
    #[arg(long, conflicts_with = "insecure_plaintext")]
    quic: bool,
    /// Sync over plain TCP: no encryption, no authentication (to compare the cost).
    #[arg(long)]
    insecure_plaintext: bool,
    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long)]
    json: bool,
}

/// The transport a demo runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Tls,
    Quic,
    Plain,
}

impl Wire {
    fn of(args: &DemoArgs) -> Self {
        match (args.quic, args.insecure_plaintext) {
            (true, _) => Wire::Quic,
            (false, true) => Wire::Plain,
            (false, false) => Wire::Tls,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Wire::Tls => "tls",
            Wire::Quic => "quic",
            Wire::Plain => "plain",
        }
    }
}

const NODE_A: NodeId = NodeId(0xA);
const NODE_B: NodeId = NodeId(0xB);

pub(crate) async fn run(args: DemoArgs) -> Result<ExitCode, Box<dyn Error>> {
    crate::data::check_value_size(args.value_size)?;
    let context = ContextId::new("demo")?;
    let (a, b) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    fill(&args, &context, &a, &b)?;

    let wire = Wire::of(&args);
    let server = Arc::new(SyncManager::new(
        Arc::clone(&b),
        Identity::new(NODE_B),
        ManagerConfig::default(),
    ));
    let client = SyncManager::new(
        Arc::clone(&a),
        Identity::new(NODE_A),
        ManagerConfig::default(),
    );
    let spinner = progress(args.json, None, "syncing");
    let (report, connect) =
        session(wire, server, &client, &context, args.protocol.choice()).await?;
    spinner.finish_and_clear();
    let report = report?;

    let outcome = Outcome::measure(&context, &a, &b)?;
    print(&args, (wire, connect), &report, &outcome)?;
    Ok(if outcome.converged() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What one demo session gave: the report (or the session's error) and the
/// time it took to connect (TCP, plus the TLS or QUIC handshake).
type Session = (Result<SessionReport, ManagerError>, Duration);

/// Serves `server` on a loopback listener of `wire` and syncs `client` with it
/// once; the outer error is the setup's, the inner the session's.
async fn session(
    wire: Wire,
    server: Arc<SyncManager<MemoryStore>>,
    client: &SyncManager<MemoryStore>,
    context: &ContextId,
    choice: ProtocolChoice,
) -> Result<Session, Box<dyn Error>> {
    let (key_a, key_b) = (NodeKey::generate()?, NodeKey::generate()?);
    let allow_a: Arc<dyn PeerPolicy> = AllowList::of([key_a.id()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    if wire == Wire::Quic {
        let endpoint = QuicServer::bind(&key_b, allow_a, "127.0.0.1:0".parse()?)?;
        let addr = endpoint.local_addr()?.to_string();
        let serving = tokio::spawn(endpoint.serve(server, stopped));
        let started = Instant::now();
        let mut transport = quic::connect(&addr, &key_a, key_b.id()).await?;
        let connect = started.elapsed();
        let report = client.sync(&mut transport, context, choice).await;
        let _ = transport.close().await;
        let _ = stop.send(());
        serving.await?;
        return Ok((report, connect));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let report = if wire == Wire::Plain {
        let serving = tokio::spawn(server.serve(listener, stopped));
        let started = Instant::now();
        let mut transport = FramedTransport::tcp(TcpStream::connect(addr).await?)?;
        let connect = started.elapsed();
        let report = client.sync(&mut transport, context, choice).await;
        let _ = stop.send(());
        serving.await??;
        (report, connect)
    } else {
        let acceptor = Arc::new(TlsAcceptor::new(&key_b, allow_a)?);
        let serving = tokio::spawn(server.serve_with(listener, acceptor, stopped));
        let started = Instant::now();
        let mut transport = tls::connect(&addr.to_string(), &key_a, key_b.id()).await?;
        let connect = started.elapsed();
        let report = client.sync(&mut transport, context, choice).await;
        let _ = stop.send(());
        serving.await??;
        (report, connect)
    };
    Ok(report)
}

/// Fills both stores: shared entries, then the differences.
fn fill(
    args: &DemoArgs,
    context: &ContextId,
    a: &MemoryStore,
    b: &MemoryStore,
) -> Result<(), Box<dyn Error>> {
    let bar = progress(
        args.json,
        Some(2 * args.entries + args.diff),
        "generating entries",
    );
    let shared = generated_version(1 << 16, 1);
    let mut start = 0;
    while start < args.entries {
        let end = (start + GENERATE_BATCH).min(args.entries);
        let batch: Vec<Entry> =
            generate(args.seed, "key-", start..end, args.value_size, shared).collect();
        if !args.empty_a {
            a.apply(context, batch.clone())?;
        }
        b.apply(context, batch)?;
        bar.inc(2 * (end - start));
        start = end;
    }
    let (only_a, only_b) = differences(args);
    if !args.empty_a {
        a.apply(context, only_a)?;
    }
    b.apply(context, only_b)?;
    bar.inc(args.diff);
    bar.finish_and_clear();
    Ok(())
}

/// The differing entries of A and B: a third each side only, a third on both with
/// different versions; every tenth on A's side deletes a shared key instead.
fn differences(args: &DemoArgs) -> (Vec<Entry>, Vec<Entry>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let newer = |node: NodeId, j: u64| generated_version((2 << 16) + j, node.0);
    for j in 0..args.diff {
        let i = args.entries + j;
        let key = format!("key-{i:010}");
        let value = |node: NodeId| value_bytes(args.seed ^ node.0, i, args.value_size);
        match j % 3 {
            0 if j % 10 == 9 && args.entries > 0 => {
                let shared_key = format!("key-{:010}", j % args.entries);
                a.push(Entry::delete(shared_key, newer(NODE_A, j)));
            }
            0 => a.push(Entry::put(key, value(NODE_A), newer(NODE_A, j))),
            1 => b.push(Entry::put(key, value(NODE_B), newer(NODE_B, j))),
            _ => {
                let (older, newest) = if j % 2 == 0 {
                    (NODE_A, NODE_B)
                } else {
                    (NODE_B, NODE_A)
                };
                let older_entry = Entry::put(
                    key.clone(),
                    value(older),
                    generated_version(2 << 16, older.0),
                );
                let newer_entry = Entry::put(key, value(newest), newer(newest, j));
                let (for_a, for_b) = if older == NODE_A {
                    (older_entry, newer_entry)
                } else {
                    (newer_entry, older_entry)
                };
                a.push(for_a);
                b.push(for_b);
            }
        }
    }
    (a, b)
}

/// Both stores after the session, with roots recomputed from their entries.
struct Outcome {
    root_a: Hash,
    root_b: Hash,
    verified: bool,
}

impl Outcome {
    fn measure(
        context: &ContextId,
        a: &MemoryStore,
        b: &MemoryStore,
    ) -> Result<Self, Box<dyn Error>> {
        let (root_a, root_b) = (a.summary(context)?.root, b.summary(context)?.root);
        let recomputed = |s: &MemoryStore| merkle::root_of(&s.entries(context));
        let verified = recomputed(a) == root_a && recomputed(b) == root_b;
        Ok(Outcome {
            root_a,
            root_b,
            verified,
        })
    }

    fn converged(&self) -> bool {
        self.verified && self.root_a == self.root_b
    }
}

fn print(
    args: &DemoArgs,
    (wire, connect): (Wire, Duration),
    report: &SessionReport,
    outcome: &Outcome,
) -> Result<(), Box<dyn Error>> {
    let summary = report.json();
    if args.json {
        let mut object = serde_json::to_value(&summary)?;
        if let Some(map) = object.as_object_mut() {
            map.remove("root_local");
            map.remove("root_remote");
            map.insert("converged".into(), outcome.converged().into());
            map.insert("verified".into(), outcome.verified.into());
            map.insert("root_a".into(), outcome.root_a.to_hex().into());
            map.insert("root_b".into(), outcome.root_b.to_hex().into());
            map.insert("entries".into(), args.entries.into());
            map.insert("diff".into(), args.diff.into());
            map.insert("empty_a".into(), args.empty_a.into());
            map.insert("transport".into(), wire.name().into());
            map.insert("connect_ms".into(), (connect.as_secs_f64() * 1e3).into());
        }
        println!("{object}");
        return Ok(());
    }
    println!(
        "synctree demo: {} shared entries, {} differing, values of {} B{}",
        args.entries,
        args.diff,
        args.value_size,
        if args.empty_a { ", A starts empty" } else { "" }
    );
    println!("transport       {}", wire.name());
    println!("protocol        {} ({})", summary.protocol, summary.reason);
    println!("converged       {}", outcome.converged());
    println!("root A          {}", outcome.root_a);
    println!("root B          {}", outcome.root_b);
    println!(
        "round trips     {} (tree depth {})",
        summary.rounds, summary.tree_depth
    );
    println!(
        "messages        {} ({} sent, {} received)",
        summary.messages, summary.messages_sent, summary.messages_received
    );
    println!(
        "bytes           {} sent, {} received",
        summary.bytes_sent, summary.bytes_received
    );
    println!(
        "entries         {} pulled, {} pushed ({} B of entries)",
        summary.entries_pulled, summary.entries_pushed, summary.payload_bytes
    );
    println!(
        "compared        {} nodes, {} leaf buckets",
        summary.nodes_compared, summary.leaves_compared
    );
    println!(
        "time            {:.1} ms (connecting: {:.1} ms more)",
        summary.duration_ms,
        connect.as_secs_f64() * 1e3
    );
    Ok(())
}

/// A progress bar (or spinner when `len` is `None`) on stderr; hidden for `--json`.
fn progress(json: bool, len: Option<u64>, message: &'static str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len}") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}
