//! The initiator of the tree protocols: descends from the root into subtrees whose
//! hashes differ, reconciles differing leaf buckets, pulls what it lacks or holds
//! older, pushes what the peer lacks or holds older, then finishes with both roots.
//!
//! The descent covers two tree levels per round trip. The initiator sends its own
//! children of a node X (a *compare item*); the responder answers only for X's
//! children that differ, with *their* children. The initiator compares those
//! grandchildren locally and sends compare items for the ones that differ:
//!
//! ```text
//!  round 1  compare(root)                ◄── L2 hashes under each differing L1 node
//!  round 2  compare(each differing L2)   ◄── leaf hashes under each differing L3 node
//!  round 3  positions(differing leaves)  ◄── leaf summaries
//!  round 4  entry requests (+ pushes)    ◄── entries
//!           + finish                     ◄── finish ack
//! ```
//!
//! The finish goes out in the same flight as the last entry requests, once no
//! node answer is owed (nothing can bring more work); the responder sends their
//! answers before its `FinishAck`, so `Finish.root` is our root before they were
//! applied and only this side compares the final roots. Local entries are read
//! through [`Store::visit_range`] (lent, not copied) when a leaf is joined, and
//! pushes are named by key hash until their frame is built.
//!
//! Child hashes travel truncated to
//! [`NODE_HASH_BYTES`](synctree_primitives::limits::NODE_HASH_BYTES), salted by the
//! session key in [`TreeConfig::key`]; the full roots in the finish exchange decide
//! whether the session converged.
//!
//! HashComparison and LevelWise share this machine and differ only in [`Schedule`]:
//! when node requests are sent.

mod ask;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use synctree_primitives::WallClock;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_ENTRIES_PER_PREFIX, MAX_LEAF_ENTRIES, MAX_REQUESTS_PER_SESSION,
    MAX_SUBTREES_PER_REQUEST,
};
use synctree_primitives::merkle::{FANOUT, TREE_DEPTH};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    EntryBatch, EntryPush, EntryRequest, Finish, FinishAck, NodeRequest, NodeResponse,
};
use synctree_primitives::{
    ContextId, Hash, NodePos, ProtocolError, ProtocolKind, Role, Store, StreamMessage, SyncStats,
};

use super::config::{DEEP_DESCENT_SPREAD, Schedule, TreeConfig};
use super::leaf::reconcile_leaf;
use super::wire::{
    EMPTY, KeyPrefix, RemoteSummary, ShortChildren, check_prefix_runs, decode_children,
    decode_leaf, encode_children, is_empty, short_children,
};
use crate::entries::{EntryBatcher, EntrySource, SubtreeCursor, apply_received, decode_entries};
use crate::machine::{Machine, unexpected};
use ask::{NodeAsk, Work};

/// Something the peer may lack.
#[derive(Debug)]
enum Push {
    /// The local entry under this key hash, read when its frame is built.
    Key(Hash),
    Subtree(SubtreeCursor),
}

/// Pushes go out in the order they were found; a subtree a chunk at a time.
impl<S: Store + ?Sized> EntrySource<S> for VecDeque<Push> {
    fn feed(
        &mut self,
        store: &S,
        context: &ContextId,
        batch: &mut EntryBatcher<'_>,
    ) -> Result<bool, SyncErrorKind> {
        match self.front_mut() {
            None => return Ok(false),
            Some(Push::Key(key_hash)) => {
                if let Some(entry) = store.get(context, key_hash)? {
                    batch.push_owned(entry);
                }
            }
            Some(Push::Subtree(cursor)) => {
                if !batch.push_subtree(store, context, cursor)? {
                    return Ok(true);
                }
            }
        }
        self.pop_front();
        Ok(true)
    }
}

/// An unanswered request.
#[derive(Debug)]
enum Asked {
    Nodes(NodeAsk),
    Entries {
        /// Entries received so far for each prefix asked for.
        prefixes: HashMap<KeyPrefix, usize>,
        subtrees: Vec<NodePos>,
    },
}

/// A node response that passed the checks against its request.
#[derive(Debug, Default)]
struct Admitted {
    children: Vec<(NodePos, ShortChildren)>,
    leaves: Vec<LeafPart>,
}

/// One part of a peer's leaf summary.
#[derive(Debug)]
struct LeafPart {
    pos: NodePos,
    entries: Vec<RemoteSummary>,
    partial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Comparing,
    Finishing,
    Done,
}

/// Initiator state machine shared by the tree protocols.
#[derive(Debug)]
pub struct TreeInitiator {
    context: ContextId,
    config: TreeConfig,
    schedule: Schedule,
    init: Option<StreamMessage>,
    state: State,
    work: VecDeque<Work>,
    level_open: bool,
    pulls: VecDeque<KeyPrefix>,
    subtree_pulls: VecDeque<NodePos>,
    pushes: VecDeque<Push>,
    asked: HashMap<u32, (u32, Asked)>,
    partial_leaves: HashMap<NodePos, Vec<RemoteSummary>>,
    next_request: u32,
    round_seen: u32,
    clock: WallClock,
    stats: SyncStats,
}

impl TreeInitiator {
    /// An initiator that opens the session with `init` and then compares from the root.
    pub fn new(
        context: ContextId,
        protocol: ProtocolKind,
        schedule: Schedule,
        config: TreeConfig,
        init: StreamMessage,
        root_before: Hash,
    ) -> Self {
        TreeInitiator {
            context,
            config: config.clamped(),
            schedule,
            init: Some(init),
            state: State::Opening,
            work: VecDeque::from([Work::Compare(NodePos::ROOT)]),
            level_open: false,
            pulls: VecDeque::new(),
            subtree_pulls: VecDeque::new(),
            pushes: VecDeque::new(),
            asked: HashMap::new(),
            partial_leaves: HashMap::new(),
            next_request: 0,
            round_seen: 0,
            clock: WallClock::System,
            stats: SyncStats::new(protocol, Role::Initiator, root_before),
        }
    }

    /// Checks received versions against `clock` instead of the system clock
    /// (deterministic tests and simulations).
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// What the session did so far.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Consumes the machine, returning its stats.
    pub fn into_stats(self) -> SyncStats {
        self.stats
    }

    fn ask(&mut self, asked: Asked) -> Result<u32, ProtocolError> {
        let id = self.next_request;
        self.next_request += 1;
        ProtocolError::check_limit(
            "requests per session",
            MAX_REQUESTS_PER_SESSION,
            id as usize + 1,
        )?;
        self.asked.insert(id, (self.round_seen + 1, asked));
        Ok(id)
    }

    fn answered(&mut self, request_id: u32) -> Result<&mut Asked, ProtocolError> {
        let (round, asked) = self
            .asked
            .get_mut(&request_id)
            .ok_or(ProtocolError::Unsolicited("answer to an unknown request"))?;
        self.round_seen = self.round_seen.max(*round);
        Ok(asked)
    }

    /// Whether the schedule lets a node request go out now.
    fn may_send_nodes(&self) -> bool {
        let slots_free = self.asked.len() < self.config.max_in_flight;
        let nodes_in_flight = self
            .asked
            .values()
            .any(|(_, a)| matches!(a, Asked::Nodes(_)));
        match self.schedule {
            Schedule::Eager => slots_free,
            Schedule::LevelByLevel => slots_free && (self.level_open || !nodes_in_flight),
        }
    }

    /// Takes one request's worth of work: positions to fetch, nodes to compare.
    fn take_work(&mut self) -> (Vec<NodePos>, Vec<NodePos>) {
        let take = self.work.len().min(self.config.nodes_per_request);
        let (mut positions, mut compared) = (Vec::new(), Vec::new());
        for work in self.work.drain(..take) {
            match work {
                Work::Fetch(pos) => positions.push(pos),
                Work::Compare(pos) => compared.push(pos),
            }
        }
        self.level_open = self.schedule == Schedule::LevelByLevel && !self.work.is_empty();
        (positions, compared)
    }

    fn node_request<S: Store + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<Body>, SyncErrorKind> {
        if self.work.is_empty() || !self.may_send_nodes() {
            return Ok(None);
        }
        let (positions, compared) = self.take_work();
        let mut compare = Vec::with_capacity(compared.len());
        for &pos in &compared {
            let children = store.children(&self.context, pos)?;
            compare.push(encode_children(&self.config.key, pos, &children));
        }
        // Each compared node is compared once, by the responder.
        self.stats.nodes_compared += compared.len() as u64;
        let request_id = self.ask(Asked::Nodes(NodeAsk::new(&positions, &compared)))?;
        Ok(Some(Body::NodeRequest(NodeRequest {
            request_id,
            positions: positions.iter().map(|p| p.raw()).collect(),
            compare,
        })))
    }

    fn entry_request(&mut self) -> Result<Option<Body>, ProtocolError> {
        let slots_free = self.asked.len() < self.config.max_in_flight;
        if !slots_free || (self.pulls.is_empty() && self.subtree_pulls.is_empty()) {
            return Ok(None);
        }
        let prefixes: Vec<KeyPrefix> = self
            .pulls
            .drain(..self.pulls.len().min(self.config.keys_per_request))
            .collect();
        let take = self.subtree_pulls.len().min(MAX_SUBTREES_PER_REQUEST);
        let subtrees: Vec<NodePos> = self.subtree_pulls.drain(..take).collect();
        let request = EntryRequest {
            request_id: 0,
            key_hashes: vec![],
            subtrees: subtrees.iter().map(|p| p.raw()).collect(),
            key_prefixes: prefixes
                .iter()
                .map(|p| p.as_slice().to_vec().into())
                .collect(),
        };
        let request_id = self.ask(Asked::Entries {
            prefixes: prefixes.into_iter().map(|p| (p, 0)).collect(),
            subtrees,
        })?;
        Ok(Some(Body::EntryRequest(EntryRequest {
            request_id,
            ..request
        })))
    }

    fn push_frame<S: Store + ?Sized>(&mut self, store: &S) -> Result<Option<Body>, SyncErrorKind> {
        let batch = EntryBatcher::new(self.config.push_bytes, &mut self.stats);
        let entries = batch.fill(store, &self.context, &mut self.pushes)?;
        Ok((!entries.is_empty()).then_some(Body::EntryPush(EntryPush { entries })))
    }

    /// Compares the peer's children of `pos` with ours and queues what follows from
    /// each difference.
    fn compare_children<S: Store + ?Sized>(
        &mut self,
        store: &S,
        pos: NodePos,
        remote: &ShortChildren,
    ) -> Result<(), SyncErrorKind> {
        let local = short_children(&self.config.key, &store.children(&self.context, pos)?);
        self.stats.nodes_compared += 1;
        if self.one_sided(pos, is_empty(&local), is_empty(remote)) {
            return Ok(());
        }
        let differing: Vec<NodePos> = (0..local.len())
            .filter(|&c| local[c] != remote[c])
            .map(|c| pos.child(c))
            .filter(|&child| {
                let c = child.index() as usize % FANOUT;
                !self.one_sided(child, local[c] == EMPTY, remote[c] == EMPTY)
            })
            .collect();
        let deep = self.config.deep() && differing.len() >= DEEP_DESCENT_SPREAD;
        for child in differing {
            if child.is_leaf() {
                self.work.push_back(Work::Fetch(child));
            } else if deep {
                self.work.extend(twigs_under(child).map(Work::Compare));
            } else {
                self.work.push_back(Work::Compare(child));
            }
        }
        Ok(())
    }

    /// When one side holds nothing under `pos`, moves the whole subtree at once (a
    /// push when the peer lacks it, a pull when we do) and returns true.
    fn one_sided(&mut self, pos: NodePos, local_empty: bool, remote_empty: bool) -> bool {
        match (local_empty, remote_empty) {
            (false, false) => return false,
            (false, true) => self
                .pushes
                .push_back(Push::Subtree(SubtreeCursor::new(pos))),
            (true, false) => self.subtree_pulls.push_back(pos),
            (true, true) => {}
        }
        true
    }

    fn on_node_response<S: Store + ?Sized>(
        &mut self,
        store: &S,
        resp: NodeResponse,
    ) -> Result<(), SyncErrorKind> {
        let admitted = self.admit_node_response(&resp)?;
        for (pos, remote) in admitted.children {
            self.compare_children(store, pos, &remote)?;
        }
        for leaf in admitted.leaves {
            let Some(remote) = self.collect_leaf(leaf.pos, leaf.entries, leaf.partial)? else {
                continue;
            };
            let plan = reconcile_leaf(store, &self.context, leaf.pos, &remote, KEY_PREFIX_BYTES)?;
            self.stats.leaves_compared += 1;
            self.pulls.extend(plan.pulls);
            self.pushes.extend(plan.pushes.into_iter().map(Push::Key));
        }
        Ok(())
    }

    /// Decodes a node response and checks it against its request, before anything in
    /// it is acted on; the request is closed on its last frame.
    fn admit_node_response(&mut self, resp: &NodeResponse) -> Result<Admitted, ProtocolError> {
        let Asked::Nodes(ask) = self.answered(resp.request_id)? else {
            return Err(ProtocolError::Unsolicited(
                "node response to an entry request",
            ));
        };
        let mut admitted = Admitted::default();
        for children in &resp.children {
            let (pos, remote) = decode_children(children)?;
            ask.admit_children(pos)?;
            admitted.children.push((pos, remote));
        }
        for leaf in &resp.leaves {
            let (pos, entries) = decode_leaf(leaf, KEY_PREFIX_BYTES)?;
            ask.admit_leaf(pos, leaf.partial)?;
            admitted.leaves.push(LeafPart {
                pos,
                entries,
                partial: leaf.partial,
            });
        }
        if resp.last {
            ask.check_complete()?;
            self.asked.remove(&resp.request_id);
        }
        Ok(admitted)
    }

    /// Gathers the parts of a large leaf summary; returns the whole summary once its
    /// last part has arrived.
    fn collect_leaf(
        &mut self,
        pos: NodePos,
        part: Vec<RemoteSummary>,
        partial: bool,
    ) -> Result<Option<Vec<RemoteSummary>>, ProtocolError> {
        let mut whole = self.partial_leaves.remove(&pos).unwrap_or_default();
        let in_order = match (whole.last(), part.first()) {
            (Some(prev), Some(next)) => prev.prefix <= next.prefix,
            _ => true,
        };
        if !in_order {
            return Err(ProtocolError::Malformed("leaf summary parts out of order"));
        }
        whole.extend(part);
        ProtocolError::check_limit("entries per leaf", MAX_LEAF_ENTRIES, whole.len())?;
        if partial {
            self.partial_leaves.insert(pos, whole);
            return Ok(None);
        }
        check_prefix_runs(&whole)?;
        Ok(Some(whole))
    }

    fn on_entry_batch<S: Store + ?Sized>(
        &mut self,
        store: &S,
        batch: EntryBatch,
    ) -> Result<(), SyncErrorKind> {
        let entries = decode_entries(batch.entries)?;
        let Asked::Entries { prefixes, subtrees } = self.answered(batch.request_id)? else {
            return Err(ProtocolError::Unsolicited("entry batch for a node request").into());
        };
        for entry in &entries {
            let key_hash = entry.key_hash();
            let prefix = KeyPrefix::of(&key_hash, KEY_PREFIX_BYTES);
            if let Some(received) = prefixes.get_mut(&prefix) {
                *received += 1;
                let limit = MAX_ENTRIES_PER_PREFIX;
                ProtocolError::check_limit("entries per key prefix", limit, *received)?;
            } else if !subtrees.iter().any(|p| p.contains(&key_hash)) {
                return Err(ProtocolError::Unsolicited("entry that was not asked for").into());
            }
        }
        self.stats.record_received(&entries);
        apply_received(store, &self.context, &self.clock, &mut self.stats, entries)?;
        // Prefixes the peer no longer holds are simply absent from the answer.
        if batch.last {
            self.asked.remove(&batch.request_id);
        }
        Ok(())
    }

    /// Sends the init payload; with the peer's top level known, compares it here
    /// instead of over the wire.
    fn open<S: Store + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        self.state = State::Comparing;
        if let Some(top) = self.config.remote_top.take() {
            self.work.clear();
            self.compare_children(store, NodePos::ROOT, &top)?;
        }
        Ok(self.init.take())
    }

    /// The next frame while comparing: pushes first, then entry requests, then
    /// node requests.
    fn next_body<S: Store + ?Sized>(&mut self, store: &S) -> Result<Option<Body>, SyncErrorKind> {
        if let Some(body) = self.push_frame(store)? {
            return Ok(Some(body));
        }
        if let Some(body) = self.entry_request()? {
            return Ok(Some(body));
        }
        self.node_request(store)
    }

    /// Ends the comparison with our root.
    fn finish<S: Store + ?Sized>(&mut self, store: &S) -> Result<StreamMessage, SyncErrorKind> {
        self.state = State::Finishing;
        self.stats.rounds = self.round_seen + 1;
        let root = store.summary(&self.context)?.root;
        Ok(StreamMessage::new(Body::Finish(Finish {
            root: root.0.to_vec().into(),
        })))
    }

    /// Nothing is left to ask or push, and no node answer can bring more work:
    /// the finish goes out, in the same flight as the last entry requests, whose
    /// answers the responder sends before its `FinishAck`.
    fn may_finish(&self) -> bool {
        let nodes_in_flight = self
            .asked
            .values()
            .any(|(_, a)| matches!(a, Asked::Nodes(_)));
        !nodes_in_flight
            && self.work.is_empty()
            && self.pulls.is_empty()
            && self.subtree_pulls.is_empty()
            && self.pushes.is_empty()
    }

    /// The responder's `FinishAck`: every answer must have been read before it.
    fn on_finish_ack<S: Store + ?Sized>(
        &mut self,
        store: &S,
        ack: &FinishAck,
    ) -> Result<(), SyncErrorKind> {
        if !self.asked.is_empty() {
            return Err(ProtocolError::Malformed("finish ack before every answer").into());
        }
        self.stats.remote_root = Hash::from_wire(&ack.root, "root")?;
        self.stats.local_root = store.summary(&self.context)?.root;
        self.state = State::Done;
        Ok(())
    }
}

/// Every level-3 node under internal node `pos` (`pos` itself at level 3): the
/// deep descent compares them all at once, whether or not they differ, so the
/// answers are leaf summaries (an equal one is answered with nothing).
fn twigs_under(pos: NodePos) -> impl Iterator<Item = NodePos> {
    let twig_level = TREE_DEPTH - 1;
    let below = u32::from(twig_level.saturating_sub(pos.level()));
    let width = (FANOUT as u32).pow(below);
    let first = pos.index() * width;
    (first..first + width).map(move |i| NodePos::new(twig_level, i))
}

impl<S: Store + ?Sized> Machine<S> for TreeInitiator {
    fn handle(
        &mut self,
        store: &S,
        _now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        match (self.state, message.body) {
            (State::Comparing, Some(Body::NodeResponse(resp))) => {
                self.on_node_response(store, resp)
            }
            (State::Comparing | State::Finishing, Some(Body::EntryBatch(batch))) => {
                self.on_entry_batch(store, batch)
            }
            (State::Finishing, Some(Body::FinishAck(ack))) => self.on_finish_ack(store, &ack),
            (State::Finishing, body) => Err(unexpected(
                "entry batch or finish ack",
                &StreamMessage { body },
            )),
            (_, body) => Err(unexpected(
                "node response or entry batch",
                &StreamMessage { body },
            )),
        }
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        _now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        match self.state {
            State::Opening => self.open(store),
            State::Comparing => match self.next_body(store)? {
                Some(body) => Ok(Some(StreamMessage::new(body))),
                None if self.may_finish() => self.finish(store).map(Some),
                None => Ok(None),
            },
            State::Finishing | State::Done => Ok(None),
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn phase(&self) -> &'static str {
        match self.state {
            State::Opening => "opening",
            State::Comparing => "comparing trees",
            State::Finishing => "finish ack",
            State::Done => "done",
        }
    }
}
