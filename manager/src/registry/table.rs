//! [`ProtocolRegistry`]: the registered protocols, looked up by kind or by init.

use synctree_primitives::ProtocolKind;
use synctree_primitives::wire::init_payload::Kind;

use super::protocol::RegisteredProtocol;

/// The protocols a [`crate::SyncManager`] runs, in order of preference.
#[derive(Debug, Default)]
pub struct ProtocolRegistry {
    protocols: Vec<Box<dyn RegisteredProtocol>>,
}

impl ProtocolRegistry {
    /// A registry with no protocol: every init is refused.
    pub fn empty() -> Self {
        ProtocolRegistry::default()
    }

    /// Adds `protocol`, after the ones already registered; one registered
    /// earlier with the same kind is replaced in place.
    pub fn register(&mut self, protocol: impl RegisteredProtocol + 'static) -> &mut Self {
        let protocol: Box<dyn RegisteredProtocol> = Box::new(protocol);
        match self
            .protocols
            .iter_mut()
            .find(|p| p.kind() == protocol.kind())
        {
            Some(slot) => *slot = protocol,
            None => self.protocols.push(protocol),
        }
        self
    }

    /// [`Self::register`], by value.
    pub fn with(mut self, protocol: impl RegisteredProtocol + 'static) -> Self {
        self.register(protocol);
        self
    }

    /// The registry without `kind` (a node that does not run it, or a test that
    /// needs the table to pick among the others).
    pub fn without(mut self, kind: ProtocolKind) -> Self {
        self.protocols.retain(|p| p.kind() != kind);
        self
    }

    /// The registered kinds, in order of preference.
    pub fn kinds(&self) -> Vec<ProtocolKind> {
        self.protocols.iter().map(|p| p.kind()).collect()
    }

    /// The protocol registered for `kind`.
    pub fn get(&self, kind: ProtocolKind) -> Option<&dyn RegisteredProtocol> {
        self.protocols
            .iter()
            .find(|p| p.kind() == kind)
            .map(|p| &**p)
    }

    /// The protocol a stream whose first init carries `init` is for.
    pub fn for_init(&self, init: &Kind) -> Option<&dyn RegisteredProtocol> {
        self.protocols
            .iter()
            .find(|p| p.accepts(init))
            .map(|p| &**p)
    }
}
