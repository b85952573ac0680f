//! Messages of every kind cross in both directions over memory pipes and TCP, with
//! counters that agree on both ends.

mod common;

use common::{TestResult, guard, recv_all, recv_n, samples, wire_len};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError};
use synctree_transport::FramedTransport;
use tokio::net::{TcpListener, TcpStream};

/// Each side sends its messages and closes while the other does the same, then
/// both read to the end; checks contents and counters.
async fn exchange<T: SyncTransport>(a: &mut T, b: &mut T) -> TestResult {
    let from_a = samples();
    let from_b: Vec<StreamMessage> = samples().into_iter().rev().collect();
    let (at_a, at_b) =
        guard(async { tokio::join!(send_close_read(a, &from_a), send_close_read(b, &from_b)) })
            .await?;
    assert_eq!(at_b?, from_a);
    assert_eq!(at_a?, from_b);

    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.bytes_sent, sb.bytes_received);
    assert_eq!(sb.bytes_sent, sa.bytes_received);
    assert_eq!(sa.messages_sent, sb.messages_received);
    assert_eq!(sb.messages_sent, sa.messages_received);
    assert_eq!(sa.bytes_sent, wire_len(&from_a));
    assert_eq!(sb.bytes_sent, wire_len(&from_b));
    assert_eq!(sa.messages_sent, from_a.len() as u64);
    Ok(())
}

/// Sends `outgoing`, closes, and reads until the peer closes too.
async fn send_close_read<T: SyncTransport>(
    t: &mut T,
    outgoing: &[StreamMessage],
) -> Result<Vec<StreamMessage>, TransportError> {
    for message in outgoing {
        t.send(message).await?;
    }
    t.close().await?;
    recv_all(t).await
}

#[tokio::test]
async fn messages_round_trip_over_memory_with_agreeing_counters() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(256);
    assert_eq!((a.peer(), b.peer()), ("memory-a", "memory-b"));
    exchange(&mut a, &mut b).await
}

#[tokio::test]
async fn the_free_memory_pair_function_connects_the_two_ends() -> TestResult {
    let (mut a, mut b) = synctree_transport::memory_pair(0);
    exchange(&mut a, &mut b).await
}

#[tokio::test]
async fn messages_round_trip_over_tcp_with_agreeing_counters() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, server) = (connected?, accepted?.0);
    let client_addr = client.local_addr()?;
    let mut a = FramedTransport::tcp(client)?;
    let mut b = FramedTransport::tcp(server)?;
    assert_eq!(a.peer(), addr.to_string());
    assert_eq!(b.peer(), client_addr.to_string());
    exchange(&mut a, &mut b).await
}

#[tokio::test]
async fn waiting_in_recv_flushes_what_send_queued() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(64);
    let messages = samples();
    let echo = async {
        for _ in 0..messages.len() {
            let Some(request) = b.recv().await? else {
                break;
            };
            b.send(&request).await?;
        }
        // The last reply is only queued: closing writes it.
        b.close().await
    };
    let ask = async {
        let mut replies = Vec::new();
        for message in &messages {
            // Neither side closes or flushes explicitly: recv must push the bytes out.
            a.send(message).await?;
            replies.extend(a.recv().await?);
        }
        Ok::<_, TransportError>(replies)
    };
    let (echoed, replies) = guard(async { tokio::join!(echo, ask) }).await?;
    echoed?;
    assert_eq!(replies?, messages);
    Ok(())
}

#[tokio::test]
async fn close_writes_everything_queued_then_refuses_sends() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    let messages: Vec<StreamMessage> = (0..200).map(|i| common::push(300, i)).collect();
    let writer = async {
        for message in &messages {
            a.send(message).await?;
        }
        a.close().await?;
        let refused = a.send(&messages[0]).await;
        assert!(
            matches!(refused, Err(TransportError::Closed)),
            "{refused:?}"
        );
        a.close().await // a second close is a no-op
    };
    let (closed, received) = guard(async { tokio::join!(writer, recv_all(&mut b)) }).await?;
    closed?;
    assert_eq!(received?, messages);
    assert_eq!(a.stats().messages_sent, 200);
    Ok(())
}

#[tokio::test]
async fn receiving_keeps_working_after_close() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    a.close().await?;
    let reply = samples().remove(0);
    b.send(&reply).await?;
    b.close().await?;
    assert_eq!(guard(a.recv()).await??, Some(reply));
    assert_eq!(guard(a.recv()).await??, None);
    assert_eq!(guard(b.recv()).await??, None);
    Ok(())
}

#[tokio::test]
async fn a_write_failure_does_not_hide_what_the_peer_said_before_leaving() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    let farewell = samples().remove(5);
    b.send(&farewell).await?;
    b.close().await?;
    drop(b);
    // The peer is gone: writing this fails, whether `recv` tries before or after it
    // reads the farewell.
    a.send(&samples()[0]).await?;
    assert_eq!(guard(recv_n(&mut a, 1)).await??, vec![farewell]);
    assert_eq!(guard(a.recv()).await??, None);
    // Whether `recv` already met the failure or not, `close` must report it.
    let closed = a.close().await;
    assert!(
        matches!(&closed, Err(TransportError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe),
        "{closed:?}"
    );
    assert!(matches!(
        a.send(&samples()[0]).await,
        Err(TransportError::Io(_))
    ));
    Ok(())
}
