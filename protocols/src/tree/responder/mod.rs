//! The responder of the tree protocols (HashComparison, LevelWise): it answers node
//! requests (positions and compare items, see [`answer`]) and entry requests, applies
//! pushes, and acknowledges the finish. Answers are built one frame at a time in
//! [`Machine::poll_transmit`], so a request for a large subtree never materializes in
//! memory at once.

mod answer;

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use synctree_primitives::WallClock;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    BATCH_BYTE_BUDGET, KEY_PREFIX_BYTES, MAX_ENTRIES_PER_PREFIX, MAX_KEYS_PER_REQUEST,
    MAX_REQUESTS_PER_SESSION, MAX_SUBTREES_PER_REQUEST, MAX_UNANSWERED_REQUESTS,
    SESSION_ENTRY_SLACK,
};
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{EntryBatch, EntryRequest, FinishAck, NodeRequest};
use synctree_primitives::{
    ContextId, Hash, ProtocolError, ProtocolKind, Role, Store, StoredEntry, StreamMessage,
    SyncStats,
};

use super::wire::{KeyPrefix, any_position};
use crate::entries::{EntryBatcher, EntrySource, PushBuffer, SubtreeCursor};
use crate::machine::{Machine, unexpected};
use answer::NodeAnswer;

/// One request still being answered.
#[derive(Debug)]
enum Answer {
    Nodes(NodeAnswer),
    Entries { request_id: u32, wanted: Wanted },
}

/// What an entry request still wants, answered in this order.
#[derive(Debug, Default)]
struct Wanted {
    keys: VecDeque<Hash>,
    prefixes: VecDeque<KeyPrefix>,
    subtrees: VecDeque<SubtreeCursor>,
}

impl Wanted {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.prefixes.is_empty() && self.subtrees.is_empty()
    }
}

/// Keys first, then whole prefix groups while a frame has room for one, then
/// subtrees a chunk at a time.
impl<S: Store + ?Sized> EntrySource<S> for Wanted {
    fn feed(
        &mut self,
        store: &S,
        context: &ContextId,
        batch: &mut EntryBatcher<'_>,
    ) -> Result<bool, SyncErrorKind> {
        if let Some(key) = self.keys.pop_front() {
            if let Some(entry) = store.get(context, &key)? {
                batch.push(&entry);
            }
        } else if batch.room() >= MAX_ENTRIES_PER_PREFIX
            && let Some(prefix) = self.prefixes.pop_front()
        {
            for stored in &prefixed(store, context, &prefix)? {
                batch.push(&stored.entry);
            }
        } else if let Some(cursor) = self.subtrees.front_mut() {
            if batch.push_subtree(store, context, cursor)? {
                self.subtrees.pop_front();
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Every entry whose key hash starts with `prefix`; more than
/// [`MAX_ENTRIES_PER_PREFIX`] is a limit error.
fn prefixed<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    prefix: &KeyPrefix,
) -> Result<Vec<StoredEntry>, SyncErrorKind> {
    let (low, high) = prefix.range();
    let found = store.range(context, &low, &high, MAX_ENTRIES_PER_PREFIX + 1)?;
    ProtocolError::check_limit(
        "entries per key prefix",
        MAX_ENTRIES_PER_PREFIX,
        found.len(),
    )?;
    Ok(found)
}

/// Collects a request's items, refusing one named twice.
fn unique<T: Eq + std::hash::Hash + Clone, E>(
    what: &'static str,
    items: impl Iterator<Item = Result<T, E>>,
) -> Result<VecDeque<T>, ProtocolError>
where
    ProtocolError: From<E>,
{
    let mut seen = HashSet::new();
    let mut out = VecDeque::new();
    for item in items {
        let item = item?;
        if !seen.insert(item.clone()) {
            return Err(ProtocolError::Duplicate(what));
        }
        out.push_back(item);
    }
    Ok(out)
}

fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Serving,
    Acknowledging,
    Done,
}

/// Responder state machine shared by the tree protocols.
#[derive(Debug)]
pub struct TreeResponder {
    context: ContextId,
    answers: VecDeque<Answer>,
    requests: usize,
    state: State,
    /// Entries this session may still send: the context's size plus slack, set at
    /// the first entry request.
    entry_budget: Option<u64>,
    /// The session's key of truncated hashes.
    key: SessionKey,
    pushes: PushBuffer,
    stats: SyncStats,
}

impl TreeResponder {
    /// A responder for `context`, after the session's init message was read.
    pub fn new(context: ContextId, protocol: ProtocolKind, root_before: Hash) -> Self {
        TreeResponder {
            context,
            answers: VecDeque::new(),
            requests: 0,
            state: State::Serving,
            entry_budget: None,
            key: SessionKey::default(),
            pushes: PushBuffer::default(),
            stats: SyncStats::new(protocol, Role::Responder, root_before),
        }
    }

    /// Checks received versions against `clock` instead of the system clock
    /// (deterministic tests and simulations).
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.pushes.set_clock(clock);
        self
    }

    /// Truncates node hashes under the session's `key` (the manager derives it
    /// from the handshake on this stream); by default
    /// [`SessionKey::without_handshake`].
    pub fn with_key(mut self, key: SessionKey) -> Self {
        self.key = key;
        self
    }

    /// What the session did so far.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// True while a request is still being answered (a `Finish` now is held
    /// until the answers are out, or refused while a node answer is owed).
    pub(crate) fn is_answering(&self) -> bool {
        !self.answers.is_empty()
    }

    /// Consumes the machine, returning its stats.
    pub fn into_stats(self) -> SyncStats {
        self.stats
    }

    fn admit_request(&mut self) -> Result<(), ProtocolError> {
        self.requests += 1;
        ProtocolError::check_limit(
            "requests per session",
            MAX_REQUESTS_PER_SESSION,
            self.requests,
        )?;
        ProtocolError::check_limit(
            "unanswered requests",
            MAX_UNANSWERED_REQUESTS,
            self.answers.len() + 1,
        )
    }

    fn on_node_request(&mut self, req: NodeRequest) -> Result<(), ProtocolError> {
        self.admit_request()?;
        self.answers
            .push_back(Answer::Nodes(NodeAnswer::new(&req, &self.key)?));
        Ok(())
    }

    fn on_entry_request<S: Store + ?Sized>(
        &mut self,
        store: &S,
        req: EntryRequest,
    ) -> Result<(), SyncErrorKind> {
        self.admit_request()?;
        if self.entry_budget.is_none() {
            let held = store.summary(&self.context)?.entry_count;
            self.entry_budget = Some(held.saturating_add(SESSION_ENTRY_SLACK));
        }
        let keys = req.key_hashes.len().saturating_add(req.key_prefixes.len());
        ProtocolError::check_limit("keys per request", MAX_KEYS_PER_REQUEST, keys)?;
        ProtocolError::check_limit(
            "subtrees per request",
            MAX_SUBTREES_PER_REQUEST,
            req.subtrees.len(),
        )?;
        let keys = req
            .key_hashes
            .iter()
            .map(|k| Hash::from_wire(k, "key_hashes"));
        let prefixes = req
            .key_prefixes
            .iter()
            .map(|p| KeyPrefix::from_wire(p, KEY_PREFIX_BYTES, "key_prefixes"));
        let subtrees = req.subtrees.iter().map(|&p| any_position(p));
        let wanted = Wanted {
            keys: unique("key hash", keys)?,
            prefixes: unique("key prefix", prefixes)?,
            subtrees: unique("subtree", subtrees)?
                .into_iter()
                .map(SubtreeCursor::new)
                .collect(),
        };
        self.answers.push_back(Answer::Entries {
            request_id: req.request_id,
            wanted,
        });
        Ok(())
    }

    fn entry_frame<S: Store + ?Sized>(
        &mut self,
        store: &S,
        request_id: u32,
        wanted: &mut Wanted,
    ) -> Result<EntryBatch, SyncErrorKind> {
        let batch = EntryBatcher::new(BATCH_BYTE_BUDGET, &mut self.stats);
        let entries = batch.fill(store, &self.context, wanted)?;
        let budget = self.entry_budget.unwrap_or(SESSION_ENTRY_SLACK);
        if self.stats.entries_pushed > budget {
            let (limit, got) = (saturate(budget), saturate(self.stats.entries_pushed));
            return Err(ProtocolError::too_many("entries sent per session", limit, got).into());
        }
        Ok(EntryBatch {
            request_id,
            entries,
            last: wanted.is_empty(),
        })
    }
}

impl<S: Store + ?Sized> Machine<S> for TreeResponder {
    fn handle(
        &mut self,
        store: &S,
        now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        if self.state != State::Serving {
            return Err(unexpected("end of stream", &message));
        }
        match message.body {
            Some(Body::NodeRequest(req)) => self.on_node_request(req)?,
            Some(Body::EntryRequest(req)) => self.on_entry_request(store, req)?,
            Some(Body::EntryPush(push)) => {
                let (context, stats) = (&self.context, &mut self.stats);
                self.pushes.receive(store, context, stats, push, now)?;
            }
            Some(Body::Finish(finish)) => {
                // Entry answers may still be owed (they go out before the ack);
                // a node answer still owed could bring the initiator more work.
                if self.answers.iter().any(|a| matches!(a, Answer::Nodes(_))) {
                    return Err(ProtocolError::Malformed(
                        "finish before every node answer was read",
                    )
                    .into());
                }
                self.stats.remote_root = Hash::from_wire(&finish.root, "root")?;
                self.pushes.flush(store, &self.context, &mut self.stats)?;
                self.state = State::Acknowledging;
            }
            _ => return Err(unexpected("a request, push or finish", &message)),
        }
        Ok(())
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        self.pushes
            .flush_due(store, &self.context, &mut self.stats, now)?;
        if let Some(mut answer) = self.answers.pop_front() {
            let (body, done) = match &mut answer {
                Answer::Nodes(nodes) => {
                    let frame = nodes.frame(store, &self.context, &mut self.stats)?;
                    (Body::NodeResponse(frame), nodes.is_done())
                }
                Answer::Entries { request_id, wanted } => {
                    let frame = self.entry_frame(store, *request_id, wanted)?;
                    let done = frame.last;
                    (Body::EntryBatch(frame), done)
                }
            };
            if !done {
                self.answers.push_front(answer);
            }
            return Ok(Some(StreamMessage::new(body)));
        }
        if self.state == State::Acknowledging {
            let root = store.summary(&self.context)?.root;
            self.stats.local_root = root;
            self.state = State::Done;
            return Ok(Some(StreamMessage::new(Body::FinishAck(FinishAck {
                root: root.0.to_vec().into(),
            }))));
        }
        Ok(None)
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn phase(&self) -> &'static str {
        match self.state {
            State::Serving => "serving requests",
            State::Acknowledging | State::Done => "finishing",
        }
    }
}
