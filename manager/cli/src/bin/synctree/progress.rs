//! Progress bars on stderr for long work (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
