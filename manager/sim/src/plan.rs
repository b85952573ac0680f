//! The seeded script of a simulation: writes, partitions and restarts at virtual
//! times. Drawn up front from the seed alone, so the script never depends on how
//! the run goes.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::config::SimConfig;

/// One scripted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A put (`delete == false`) or delete of `key` in context number `context`,
    /// written on `node`.
    Write {
        node: usize,
        context: usize,
        key: u32,
        delete: bool,
    },
    /// Cut every link between `group` and the other nodes.
    Partition { group: Vec<usize> },
    /// Repair every link.
    Heal,
    /// Restart `node`: drop its manager and scheduler, reopen over the same store.
    Restart { node: usize },
}

/// Events in time order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Script {
    pub(crate) events: Vec<(Duration, Event)>,
}

impl Script {
    /// Draws the script of `config`.
    pub(crate) fn draw(config: &SimConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(crate::seed::mix(config.seed, 0x5c21));
        let mut events = writes(config, &mut rng);
        events.extend(partitions(config, &mut rng));
        events.extend(restarts(config, &mut rng));
        // Stable: events drawn for the same instant keep their drawing order.
        events.sort_by_key(|(at, _)| *at);
        Script { events }
    }

    /// Events due at or before `now`, removed from the script.
    pub(crate) fn due(&mut self, now: Duration) -> Vec<Event> {
        let n = self.events.partition_point(|(at, _)| *at <= now);
        self.events.drain(..n).map(|(_, e)| e).collect()
    }
}

fn at(rng: &mut SmallRng, span: Duration) -> Duration {
    let millis = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rng.random_range(0..millis))
}

fn writes(config: &SimConfig, rng: &mut SmallRng) -> Vec<(Duration, Event)> {
    (0..config.writes)
        .map(|_| {
            let event = Event::Write {
                node: rng.random_range(0..config.nodes),
                context: rng.random_range(0..config.contexts.max(1)) as usize,
                key: rng.random_range(0..config.keys.max(1)),
                delete: rng.random_bool(config.delete_ratio.clamp(0.0, 1.0)),
            };
            (at(rng, config.fault_phase), event)
        })
        .collect()
}

/// Partitions of `config.partition` each, separated by healthy gaps of half that,
/// from a random start in the first fifth of the fault phase; all healed by its end.
fn partitions(config: &SimConfig, rng: &mut SmallRng) -> Vec<(Duration, Event)> {
    let mut events = Vec::new();
    if config.partition.is_zero() || config.nodes < 2 {
        return events;
    }
    let mut start = at(rng, config.fault_phase / 5);
    while start < config.fault_phase {
        let mut nodes: Vec<usize> = (0..config.nodes).collect();
        nodes.shuffle(rng);
        let size = rng.random_range(1..config.nodes);
        nodes.truncate(size);
        nodes.sort_unstable();
        let end = (start + config.partition).min(config.fault_phase);
        events.push((start, Event::Partition { group: nodes }));
        events.push((end, Event::Heal));
        start = end + config.partition / 2 + Duration::from_millis(1);
    }
    events
}

fn restarts(config: &SimConfig, rng: &mut SmallRng) -> Vec<(Duration, Event)> {
    (0..config.restarts)
        .map(|_| {
            let node = rng.random_range(0..config.nodes);
            (at(rng, config.fault_phase), Event::Restart { node })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_follow_the_seed_and_heal_within_the_fault_phase() {
        let config = SimConfig {
            partition: Duration::from_millis(700),
            restarts: 3,
            ..SimConfig::new(10, 3)
        };
        let a = Script::draw(&config);
        assert_eq!(a.events, Script::draw(&config).events);
        assert_ne!(
            a.events,
            Script::draw(&SimConfig {
                seed: 4,
                ..config.clone()
            })
            .events
        );
        assert!(a.events.windows(2).all(|w| w[0].0 <= w[1].0));
        let count = |f: fn(&Event) -> bool| a.events.iter().filter(|(_, e)| f(e)).count();
        assert_eq!(
            count(|e| matches!(e, Event::Write { .. })),
            config.writes as usize
        );
        assert_eq!(count(|e| matches!(e, Event::Restart { .. })), 3);
        let partitions = count(|e| matches!(e, Event::Partition { .. }));
        assert!(partitions >= 2 && partitions == count(|e| matches!(e, Event::Heal)));
        let last_heal = a.events.iter().rev().find(|(_, e)| *e == Event::Heal);
        assert!(last_heal.is_some_and(|(t, _)| *t <= config.fault_phase));
    }

    #[test]
    fn due_takes_events_in_order_once() {
        let mut script = Script::draw(&SimConfig::new(3, 1));
        let total = script.events.len();
        let first = script.due(Duration::from_millis(500));
        let rest = script.due(Duration::from_secs(3600));
        assert_eq!(first.len() + rest.len(), total);
        assert!(script.due(Duration::from_secs(3600)).is_empty());
    }
}
