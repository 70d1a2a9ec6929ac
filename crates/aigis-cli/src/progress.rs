//! Progress on stderr: shown only when stderr is a terminal and `--quiet` was not given, so
//! pipes, CI logs and `--format json` consumers never see it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no progress display for the rest of the run.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether progress is drawn.
pub fn shown() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// A spinner of bytes processed and their rate.
pub fn bytes() -> indicatif::ProgressBar {
    spinner("{spinner} {bytes} {binary_bytes_per_sec}")
}

/// A spinner drawn with `template` (indicatif's), turning on its own; hidden unless
/// [`shown`].
pub fn spinner(template: &str) -> indicatif::ProgressBar {
    if !shown() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A bar towards `total` drawn with `template`, redrawn on its own; hidden unless [`shown`].
pub fn bar(total: u64, template: &str) -> indicatif::ProgressBar {
    if !shown() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
