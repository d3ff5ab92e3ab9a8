//! Files another process holds for a moment. On Windows an editor, a virus
//! scanner or the search indexer opening a file makes a rename or delete of
//! it (or of its folder) fail with "access denied" or a sharing violation,
//! and a deleted file lingers until its last handle closes; an editor's save
//! can also leave a file missing for an instant. These pass by themselves:
//! the operation is tried again after a short, growing wait.

use std::io;
use std::time::Duration;

/// The first wait before trying again; each further wait doubles.
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// Tries in all: the waits add up to about 2.5 s, longer than a scanner
/// or an indexer usually holds a file.
const TRIES: u32 = 9;

/// Whether `e` is what a file held by another process gives: access denied
/// (Windows' answer for a rename or delete of something open, and for a
/// file whose deletion is pending), or a sharing or lock violation.
pub(crate) fn is_held(e: &io::Error) -> bool {
    // ERROR_SHARING_VIOLATION and ERROR_LOCK_VIOLATION; elsewhere these
    // numbers mean other things (EPIPE, EDOM).
    const SHARING_VIOLATION: i32 = 32;
    const LOCK_VIOLATION: i32 = 33;
    e.kind() == io::ErrorKind::PermissionDenied
        || (cfg!(windows) && matches!(e.raw_os_error(), Some(SHARING_VIOLATION | LOCK_VIOLATION)))
}

/// Whether `e` may pass by itself while a file is being saved: held, or
/// missing for the instant between an editor's delete and create.
pub(crate) fn is_passing(e: &io::Error) -> bool {
    is_held(e) || e.kind() == io::ErrorKind::NotFound
}

/// Runs `op` until it succeeds, fails in a way `again` does not accept, or
/// has failed [`TRIES`] times; the last error is returned.
pub(crate) fn retry<T>(again: fn(&io::Error) -> bool, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut wait = FIRST_WAIT;
    for _ in 1..TRIES {
        match op() {
            Err(e) if again(&e) => std::thread::sleep(wait),
            done => return done,
        }
        wait *= 2;
    }
    op()
}

/// Whether an io error that [`is_passing`] caused `error`, at any depth of
/// its chain of sources.
pub(crate) fn caused_by_passing(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(error);
    while let Some(e) = at {
        if e.downcast_ref::<io::Error>().is_some_and(is_passing) {
            return true;
        }
        at = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_failure_is_tried_again_until_it_passes() {
        let mut calls = 0;
        let done = retry(is_held, || {
            calls += 1;
            if calls < 3 { Err(io::Error::from(io::ErrorKind::PermissionDenied)) } else { Ok(calls) }
        });
        assert_eq!(done.unwrap(), 3);
    }

    #[test]
    fn other_failures_are_not_tried_again_and_a_lasting_hold_ends() {
        let mut calls = 0;
        let done: io::Result<()> = retry(is_held, || {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::NotFound))
        });
        assert_eq!((done.unwrap_err().kind(), calls), (io::ErrorKind::NotFound, 1));
        calls = 0;
        let held: io::Result<()> = retry(is_held, || {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        });
        assert!(held.is_err());
        assert_eq!(calls, TRIES);
    }

    #[test]
    fn a_passing_cause_is_found_below_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("build failed")]
        struct Wrapper(#[source] io::Error);
        let missing = Wrapper(io::Error::new(io::ErrorKind::NotFound, "app.py: gone"));
        assert!(caused_by_passing(&missing));
        let bad = Wrapper(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        assert!(!caused_by_passing(&bad));
    }
}
