//! Which contexts a peer holds: one `ListContexts` init answered by one
//! `ContextList`, so `sync` without a context can cover every context either side
//! holds. The answer names only contexts the asking peer may read (a peer learns
//! nothing about the others) and at most [`MAX_LISTED_CONTEXTS`].

use synctree_primitives::limits::MAX_LISTED_CONTEXTS;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{ContextList, InitPayload, ListContexts, PROTOCOL_VERSION};
use synctree_primitives::{ContextId, ProtocolError, Store, StreamMessage, SyncTransport};

use crate::access::Access;
use crate::error::ManagerError;
use crate::manager::{Served, SyncManager};

/// What a peer's `ContextList` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerContexts {
    /// The contexts, sorted.
    pub contexts: Vec<ContextId>,
    /// The peer holds more than it listed.
    pub truncated: bool,
}

impl<S: Store + 'static> SyncManager<S> {
    /// Asks the peer at the other end of `transport` which contexts it holds
    /// (those this node may read there), then closes the stream.
    pub async fn list_contexts<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
    ) -> Result<PeerContexts, ManagerError> {
        let peer = transport.peer().to_owned();
        let failed = |source| ManagerError::Transport {
            peer: peer.clone(),
            phase: "listing",
            source,
        };
        let ask = StreamMessage::new(Body::Init(InitPayload {
            protocol_version: PROTOCOL_VERSION,
            context_id: String::new(),
            kind: Some(Kind::ListContexts(ListContexts {})),
        }));
        transport.send(&ask).await.map_err(failed)?;
        let answer = transport
            .recv_timeout(self.config().handshake_timeout)
            .await
            .map_err(failed)?;
        let _ = transport.close().await;
        let refused = |source| ManagerError::Rejected {
            peer: peer.clone(),
            source,
        };
        match answer.and_then(|m| m.body) {
            Some(Body::ContextList(list)) => parse_list(list).map_err(refused),
            Some(Body::Abort(abort)) => Err(refused(abort.into_error())),
            Some(other) => Err(refused(ProtocolError::Unexpected {
                expected: "context list",
                got: StreamMessage::new(other).kind(),
            })),
            None => Err(refused(ProtocolError::PeerClosed("listing"))),
        }
    }

    /// Answers a `ListContexts` init with the readable contexts this node holds.
    pub(crate) async fn answer_listing<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        access: &Access,
    ) -> Result<Served, ManagerError> {
        let peer = transport.peer().to_owned();
        let held = self
            .store()
            .contexts()
            .map_err(|source| ManagerError::Store {
                peer: peer.clone(),
                phase: "listing",
                source,
            })?;
        let readable: Vec<String> = held
            .iter()
            .filter(|c| access.may_read(c))
            .map(ToString::to_string)
            .collect();
        let truncated = readable.len() > MAX_LISTED_CONTEXTS;
        let names: Vec<String> = readable.into_iter().take(MAX_LISTED_CONTEXTS).collect();
        let listed = names.len();
        let answer = StreamMessage::new(Body::ContextList(ContextList { names, truncated }));
        let sent = transport.send(&answer).await;
        let _ = transport.close().await;
        sent.map_err(|source| ManagerError::Transport {
            peer,
            phase: "listing",
            source,
        })?;
        Ok(Served::Listed { contexts: listed })
    }
}

/// Checks a received list: at most [`MAX_LISTED_CONTEXTS`] valid names.
fn parse_list(list: ContextList) -> Result<PeerContexts, ProtocolError> {
    ProtocolError::check_limit("listed contexts", MAX_LISTED_CONTEXTS, list.names.len())?;
    let mut contexts = list
        .names
        .into_iter()
        .map(ContextId::new)
        .collect::<Result<Vec<_>, _>>()?;
    contexts.sort();
    contexts.dedup();
    Ok(PeerContexts {
        contexts,
        truncated: list.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_past_the_limit_or_with_a_bad_name_is_refused() {
        let too_many = ContextList {
            names: vec!["c".to_owned(); MAX_LISTED_CONTEXTS + 1],
            truncated: false,
        };
        assert!(matches!(
            parse_list(too_many),
            Err(ProtocolError::LimitExceeded { .. })
        ));
        let bad = ContextList {
            names: vec![String::new()],
            truncated: false,
        };
        assert!(parse_list(bad).is_err());
        let fine = ContextList {
            names: vec!["b".to_owned(), "a".to_owned(), "b".to_owned()],
            truncated: true,
        };
        let parsed = parse_list(fine).expect("valid");
        let names: Vec<&str> = parsed.contexts.iter().map(ContextId::as_str).collect();
        assert_eq!((names, parsed.truncated), (vec!["a", "b"], true));
    }
}
