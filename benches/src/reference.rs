//! Yardsticks beside our protocols: the `negentropy` crate reconciling the same
//! sets, and a raw loopback TCP copy as the throughput ceiling.
//!
//! negentropy (range-based set reconciliation) only *identifies* the ids each side
//! lacks; it moves no entries. Its bytes are therefore reported as they are (ids
//! only) and plus P, the encoded size of the differing entries, which a real
//! transfer would add (with at least one more round trip).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use synctree_primitives::Hash;
use synctree_primitives::limits::MAX_FRAME_BYTES;
use synctree_transport::LENGTH_PREFIX_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::BenchError;
use crate::meter::thread_cpu;

/// Bytes per write and read of the raw copy.
const COPY_CHUNK: usize = 64 * 1024;

/// What a negentropy reconciliation moved and found.
#[derive(Clone, Debug, PartialEq)]
pub struct NegentropyOutcome {
    /// Message bytes both ways, plus a 4-byte length prefix per message as our
    /// framing would add.
    pub bytes: u64,
    /// Messages both ways.
    pub messages: u64,
    /// Round trips (initiator message → responder reply).
    pub rounds: u32,
    /// Wall time of the reconciliation (storages already built and sealed).
    pub wall: Duration,
    /// On-CPU time of the same.
    pub cpu: Option<Duration>,
    /// Ids only the initiator holds.
    pub have: HashSet<Hash>,
    /// Ids only the responder holds.
    pub need: HashSet<Hash>,
}

/// Reconciles `a` (initiator) with `b`: items are `(timestamp, id)`. The frame
/// limit is our [`MAX_FRAME_BYTES`], so no negentropy message exceeds what one of
/// our frames may carry.
pub fn negentropy(a: &[(u64, Hash)], b: &[(u64, Hash)]) -> Result<NegentropyOutcome, BenchError> {
    let limit = MAX_FRAME_BYTES as u64;
    let mut client = Negentropy::owned(storage(a)?, limit).map_err(neg)?;
    let mut server = Negentropy::owned(storage(b)?, limit).map_err(neg)?;
    let started = Instant::now();
    let cpu_before = thread_cpu();
    let framed = |msg: &[u8]| (msg.len() + LENGTH_PREFIX_BYTES) as u64;
    let mut query = client.initiate().map_err(neg)?;
    let (mut bytes, mut messages, mut rounds) = (framed(&query), 1, 0);
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        let reply = server.reconcile(&query).map_err(neg)?;
        bytes += framed(&reply);
        messages += 1;
        rounds += 1;
        match client
            .reconcile_with_ids(&reply, &mut have, &mut need)
            .map_err(neg)?
        {
            Some(next) => {
                bytes += framed(&next);
                messages += 1;
                query = next;
            }
            None => break,
        }
    }
    let wall = started.elapsed();
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let ids = |v: Vec<Id>| v.into_iter().map(|id| Hash(id.to_bytes())).collect();
    Ok(NegentropyOutcome {
        bytes,
        messages,
        rounds,
        wall,
        cpu,
        have: ids(have),
        need: ids(need),
    })
}

fn storage(items: &[(u64, Hash)]) -> Result<NegentropyStorageVector, BenchError> {
    let mut s = NegentropyStorageVector::with_capacity(items.len());
    for (timestamp, id) in items {
        s.insert(*timestamp, Id::from_byte_array(id.0))
            .map_err(neg)?;
    }
    s.seal().map_err(neg)?;
    Ok(s)
}

fn neg(e: negentropy::Error) -> BenchError {
    BenchError::Negentropy(e.to_string())
}

/// Two connected loopback TCP streams (client, server side).
pub async fn loopback_pair() -> Result<(TcpStream, TcpStream), BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, (server, _)) = (client?, accepted?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// Time to copy `bytes` from one end of a loopback TCP connection to the other,
/// in 64 KiB writes and reads, the connection already open: the ceiling for any
/// protocol that moves that many bytes over TCP on this machine.
pub async fn tcp_copy(bytes: u64) -> Result<Duration, BenchError> {
    let (mut tx, mut rx) = loopback_pair().await?;
    let started = Instant::now();
    let writer = async {
        let chunk = vec![0x5a_u8; COPY_CHUNK];
        let mut left = bytes;
        while left > 0 {
            let k = left.min(COPY_CHUNK as u64) as usize;
            tx.write_all(&chunk[..k]).await?;
            left -= k as u64;
        }
        tx.shutdown().await
    };
    let reader = async {
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut got = 0u64;
        loop {
            match rx.read(&mut buf).await? {
                0 => return Ok::<u64, std::io::Error>(got),
                k => got += k as u64,
            }
        }
    };
    let (written, read) = tokio::join!(writer, reader);
    written?;
    let read = read?;
    let wall = started.elapsed();
    if read != bytes {
        let detail = format!("copied {read} of {bytes} bytes");
        return Err(BenchError::NotConverged {
            what: "raw tcp copy".into(),
            detail,
        });
    }
    Ok(wall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Base, Placement, Workload};

    #[test]
    fn negentropy_finds_exactly_the_differing_ids() {
        let w = Workload::new(Base::new(3_000), 25, Placement::Scattered);
        let (a, b) = w.items();
        let out = negentropy(&a, &b).unwrap();
        let only_a: HashSet<Hash> = w.only_a.iter().map(|e| e.key_hash()).collect();
        let only_b: HashSet<Hash> = w.only_b.iter().map(|e| e.key_hash()).collect();
        assert_eq!((out.have, out.need), (only_a, only_b));
        assert!(out.rounds >= 1 && out.bytes > 0);
    }

    #[test]
    fn equal_sets_take_one_round() {
        let w = Workload::new(Base::new(500), 0, Placement::Scattered);
        let (a, b) = w.items();
        let out = negentropy(&a, &b).unwrap();
        assert_eq!(out.rounds, 1);
        assert!(out.have.is_empty() && out.need.is_empty());
    }

    #[test]
    fn a_tcp_copy_moves_every_byte() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(tcp_copy(1_000_003)).unwrap();
    }
}
