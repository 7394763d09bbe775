//! Progress drawn on stderr for the library's [`Progress`].

use crate::errln;
use crate::text::escape;
use ddb_core::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A progress bar on stderr for the library's [`Progress`]: drawn when stderr is a terminal and
/// `quiet` is off, hidden otherwise. Notes go to stderr either way, escaped (they quote items).
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `total` items.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if !quiet && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} items, {per_sec}, ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Bar(bar)
    }

    /// Runs `f` with the bar out of the way (for a prompt).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }

    /// Takes the bar off the screen.
    pub fn clear(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(escape(name).into_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn note(&self, text: &str) {
        self.0.suspend(|| errln!("note: {}", escape(text)));
    }
}
