//! Progress of long operations on stderr: at most one line a second, so a large store shows it is moving without
//! flooding a terminal or a log.

use std::time::{Duration, Instant};

/// Counts items of one step and reports now and then.
pub(crate) struct Progress {
    what: &'static str,
    total: Option<u64>,
    done: u64,
    last: Instant,
    quiet: bool,
}

const EVERY: Duration = Duration::from_secs(1);

impl Progress {
    /// A step named `what` ("reading objects"), of `total` items if known; `quiet` silences it (benchmarks).
    pub(crate) fn new(what: &'static str, total: Option<u64>, quiet: bool) -> Self {
        Progress { what, total, done: 0, last: Instant::now(), quiet }
    }

    /// One more item done.
    pub(crate) fn tick(&mut self) {
        self.add(1);
    }

    /// `n` more items done.
    pub(crate) fn add(&mut self, n: u64) {
        self.done += n;
        if !self.quiet && self.last.elapsed() >= EVERY {
            self.last = Instant::now();
            match self.total {
                Some(total) => eprintln!("  {}: {}/{total}", self.what, self.done),
                None => eprintln!("  {}: {}", self.what, self.done),
            }
        }
    }

    /// Items done.
    pub(crate) fn done(&self) -> u64 {
        self.done
    }
}

/// Prints a step line unless quiet.
pub(crate) fn say(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}
