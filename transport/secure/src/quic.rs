//! QUIC: later.
