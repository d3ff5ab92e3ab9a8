//! How much file work this process has done: files read to hash them, and
//! files written (atomic writes, artifact and cache files placed). `--debug`
//! reports it per build and per watch save, and the tests hold a save's cost
//! to what changed rather than to the size of the project.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

static HASHED: AtomicUsize = AtomicUsize::new(0);
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

/// Counts `n` files read to hash their content.
pub(crate) fn hashed(n: usize) {
    HASHED.fetch_add(n, Ordering::Relaxed);
}

/// Counts `n` files written or placed.
pub(crate) fn written(n: usize) {
    WRITTEN.fetch_add(n, Ordering::Relaxed);
}

/// The counts at one moment, or between two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Files read to hash them.
    pub(crate) hashed: usize,
    /// Files written.
    pub(crate) written: usize,
}

impl Tally {
    /// The counts so far.
    pub(crate) fn now() -> Tally {
        Tally { hashed: HASHED.load(Ordering::Relaxed), written: WRITTEN.load(Ordering::Relaxed) }
    }

    /// The work done since `self` was taken.
    pub(crate) fn since(self) -> Tally {
        let now = Tally::now();
        Tally { hashed: now.hashed - self.hashed, written: now.written - self.written }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} files hashed, {} files written", self.hashed, self.written)
    }
}
