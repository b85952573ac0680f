//! Progress bars on stderr for long work (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synctree_primitives::StreamMessage;
use synctree_primitives::tap::TransportHook;
use synctree_primitives::wire::SnapshotPage;
use synctree_primitives::wire::stream_message::Body;

/// A bar counting `len` items.
pub(crate) fn bar(len: u64, message: &'static str) -> ProgressBar {
    styled(
        ProgressBar::new(len),
        "{spinner} {msg} {bar:30} {pos}/{len} ({per_sec}, {eta} left)",
        message,
    )
}

/// A spinner for work of unknown length; `hidden` keeps it off the screen.
pub(crate) fn spinner(message: String, hidden: bool) -> ProgressBar {
    let spinner = styled(ProgressBar::new_spinner(), "{spinner} {msg} {elapsed}", "");
    spinner.set_message(message);
    if hidden {
        spinner.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    spinner
}

/// Applies `template` (falling back to the default style) and `message`.
fn styled(bar: ProgressBar, template: &str, message: &'static str) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}

/// Watches a sync session's received messages: once a snapshot begins, the
/// spinner becomes a bar of the snapshot's entries, with the bytes received,
/// the rate and the time left. Entries are estimated from each page's cursor
/// (pages come in key-hash order, which spreads keys evenly), so compressed and
/// resumed snapshots move the bar the same way; the last page fills it.
pub(crate) struct SessionMeter {
    bar: ProgressBar,
    total: u64,
    bytes: u64,
}

impl SessionMeter {
    /// Drives `bar` (a [`spinner`], hidden or not).
    pub(crate) fn new(bar: ProgressBar) -> Self {
        SessionMeter {
            bar,
            total: 0,
            bytes: 0,
        }
    }

    fn begin(&mut self, entries: u64) {
        self.total = entries;
        self.bar.set_length(entries);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg} {bar:30} {pos}/{len} entries ({per_sec}, {eta} left)",
        ) {
            self.bar.set_style(style);
        }
    }

    fn page(&mut self, page: &SnapshotPage) {
        self.bytes += prost::Message::encoded_len(page) as u64;
        let done = if page.last {
            self.total
        } else {
            let at = page
                .cursor
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok());
            let fraction = at.map_or(0.0, |b| u64::from_be_bytes(b) as f64 / u64::MAX as f64);
            (fraction * self.total as f64) as u64
        };
        self.bar
            .set_position(done.max(self.bar.position()).min(self.total));
        let mib = self.bytes as f64 / (1024.0 * 1024.0);
        self.bar.set_message(format!("snapshot, {mib:.1} MiB"));
    }
}

impl TransportHook for SessionMeter {
    fn after_recv(&mut self, message: Option<&StreamMessage>) {
        match message.and_then(|m| m.body.as_ref()) {
            Some(Body::SnapshotBegin(begin)) => self.begin(begin.entry_count),
            Some(Body::SnapshotPage(page)) => self.page(page),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::wire::SnapshotBegin;

    fn page(cursor_top: u8, last: bool) -> StreamMessage {
        let mut cursor = vec![0u8; 32];
        cursor[0] = cursor_top;
        StreamMessage::new(Body::SnapshotPage(SnapshotPage {
            cursor: cursor.into(),
            last,
            ..SnapshotPage::default()
        }))
    }

    #[test]
    fn a_snapshot_moves_the_bar_by_its_cursors_and_fills_it_at_the_end() {
        let bar = spinner("syncing".to_owned(), true);
        let mut meter = SessionMeter::new(bar.clone());
        meter.after_recv(Some(&StreamMessage::new(Body::SnapshotBegin(
            SnapshotBegin {
                entry_count: 1_000,
                ..SnapshotBegin::default()
            },
        ))));
        assert_eq!((bar.position(), bar.length()), (0, Some(1_000)));
        meter.after_recv(Some(&page(0x80, false)));
        assert!((495..=505).contains(&bar.position()), "{}", bar.position());
        meter.after_recv(Some(&page(0x40, false)));
        assert!(bar.position() >= 495, "never moves back");
        meter.after_recv(Some(&page(0, true)));
        assert_eq!(bar.position(), 1_000);
        assert!(bar.message().starts_with("snapshot, "), "{}", bar.message());
    }
}
