//! The two clocks that bound a session, computed from `now` alone (no I/O, no
//! runtime): the session deadline and the idle timeout of the current wait.

use std::time::{Duration, Instant};

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::SESSION_DEADLINE;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{StreamMessage, TransportError};

/// The session deadline ([`SESSION_DEADLINE`] after the start) and the idle timer
/// of the wait for the peer's next message.
///
/// A wait is armed with [`Timers::wait`] once the machine has nothing left to send,
/// and disarmed by [`Timers::on_message`] when a message makes progress; a message
/// that does not ([`makes_progress`]) leaves the wait armed
/// ([`Timers::on_idle_message`]), so a peer trickling no-ops still times out. The errors are the ones a session has
/// always reported: [`SyncErrorKind::Deadline`] when a wait would start after the
/// deadline, and [`TransportError::Timeout`] (with the length of the wait) when
/// nothing arrived in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    deadline: Instant,
    /// When the armed wait expires, and how long it was.
    armed: Option<(Instant, Duration)>,
}

impl Timers {
    /// Timers for a session that starts at `now`.
    pub fn new(now: Instant) -> Self {
        Timers {
            deadline: now + SESSION_DEADLINE,
            armed: None,
        }
    }

    /// Starts waiting at `now` for at most `idle` (cut short by the session
    /// deadline) and returns how long the wait may last. A wait already armed keeps
    /// its expiry: only a message resets the idle timer.
    pub fn wait(&mut self, now: Instant, idle: Duration) -> Result<Duration, SyncErrorKind> {
        if let Some((expiry, _)) = self.armed {
            return Ok(expiry.saturating_duration_since(now));
        }
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(SyncErrorKind::Deadline(SESSION_DEADLINE));
        }
        let wait = left.min(idle);
        self.armed = Some((now + wait, wait));
        Ok(wait)
    }

    /// When the armed wait expires, if one is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.armed.map(|(expiry, _)| expiry)
    }

    /// Fails once the armed wait has expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SyncErrorKind> {
        match self.armed {
            Some((expiry, wait)) if now >= expiry => Err(TransportError::Timeout(wait).into()),
            _ => Ok(()),
        }
    }

    /// A message that makes progress arrived: the wait is over.
    pub fn on_message(&mut self) {
        self.armed = None;
    }

    /// A message arrived that does not make progress: the wait stays armed with its
    /// expiry, so only progress resets the idle timer.
    pub fn on_idle_message(&mut self) {}
}

/// Whether `message` moves a session forward, by its shape alone: an `EntryPush`
/// with no entries carries nothing and is not progress; every other message is (a
/// machine refuses repeats and out-of-phase messages itself, see
/// [`Machine::is_progress`](super::Machine::is_progress)).
pub fn makes_progress(message: &StreamMessage) -> bool {
    !matches!(&message.body, Some(Body::EntryPush(push)) if push.entries.is_empty())
}

#[cfg(test)]
mod tests {
    use synctree_primitives::limits::IDLE_TIMEOUT;

    use super::*;

    fn is_timeout(result: Result<(), SyncErrorKind>, want: Duration) -> bool {
        matches!(result, Err(SyncErrorKind::Transport(TransportError::Timeout(w))) if w == want)
    }

    #[test]
    fn the_idle_timeout_fires_only_after_the_wait_and_a_message_disarms_it() {
        let start = Instant::now();
        let mut timers = Timers::new(start);
        assert_eq!(timers.wait(start, IDLE_TIMEOUT).ok(), Some(IDLE_TIMEOUT));
        assert_eq!(timers.poll_timeout(), Some(start + IDLE_TIMEOUT));
        let almost = start + IDLE_TIMEOUT - Duration::from_millis(1);
        assert!(timers.handle_timeout(almost).is_ok());
        assert!(is_timeout(
            timers.handle_timeout(start + IDLE_TIMEOUT),
            IDLE_TIMEOUT
        ));
        timers.on_message();
        assert_eq!(timers.poll_timeout(), None);
        assert!(timers.handle_timeout(start + SESSION_DEADLINE).is_ok());
    }

    #[test]
    fn a_message_that_makes_no_progress_leaves_the_idle_timer_running() {
        use synctree_primitives::wire::EntryPush;
        let empty = StreamMessage::new(Body::EntryPush(EntryPush { entries: vec![] }));
        assert!(!makes_progress(&empty));
        assert!(makes_progress(&StreamMessage::default()));
        let start = Instant::now();
        let mut timers = Timers::new(start);
        let _ = timers.wait(start, IDLE_TIMEOUT);
        timers.on_idle_message();
        let later = start + IDLE_TIMEOUT / 2;
        assert_eq!(
            timers.wait(later, IDLE_TIMEOUT).ok(),
            Some(IDLE_TIMEOUT / 2)
        );
        assert!(is_timeout(
            timers.handle_timeout(start + IDLE_TIMEOUT),
            IDLE_TIMEOUT
        ));
    }

    #[test]
    fn a_rearmed_wait_keeps_its_expiry() {
        let start = Instant::now();
        let mut timers = Timers::new(start);
        let _ = timers.wait(start, IDLE_TIMEOUT);
        let later = start + Duration::from_secs(10);
        let left = timers.wait(later, IDLE_TIMEOUT).ok();
        assert_eq!(left, Some(IDLE_TIMEOUT - Duration::from_secs(10)));
        assert_eq!(timers.poll_timeout(), Some(start + IDLE_TIMEOUT));
    }

    #[test]
    fn the_session_deadline_cuts_a_wait_short_then_refuses_new_ones() {
        let start = Instant::now();
        let mut timers = Timers::new(start);
        let near = start + SESSION_DEADLINE - Duration::from_secs(1);
        assert_eq!(
            timers.wait(near, IDLE_TIMEOUT).ok(),
            Some(Duration::from_secs(1))
        );
        timers.on_message();
        let result = timers.wait(start + SESSION_DEADLINE, IDLE_TIMEOUT);
        assert!(matches!(result, Err(SyncErrorKind::Deadline(d)) if d == SESSION_DEADLINE));
    }
}
