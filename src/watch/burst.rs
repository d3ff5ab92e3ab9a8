//! Debouncing: a burst of file events ends after a short quiet period, so a
//! write-then-rename save, a delete-and-create or ten quick saves make one
//! sync. Own loop rather than a debouncer crate: a debouncer's tick adds its
//! whole period to every save.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

/// A burst of events ends after this long without a new one. Editors write
/// a save within a few milliseconds; this keeps save-to-synced short.
const QUIET: Duration = Duration::from_millis(40);

/// A burst never waits longer than this before syncing.
const MAX_BURST: Duration = Duration::from_millis(500);

/// The paths of one burst that began with `first`, when it began.
pub(crate) async fn collect(first: PathBuf, events: &mut UnboundedReceiver<PathBuf>) -> (Instant, Vec<PathBuf>) {
    let started = Instant::now();
    let mut paths = vec![first];
    while started.elapsed() < MAX_BURST {
        match tokio::time::timeout(QUIET, events.recv()).await {
            Ok(Some(path)) => paths.push(path),
            _ => break,
        }
    }
    (started, paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quick_events_make_one_burst_and_a_pause_ends_it() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            for i in 0..5 {
                tx.send(PathBuf::from(format!("/p/{i}"))).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(QUIET * 4).await;
            tx.send(PathBuf::from("/p/late")).unwrap();
        });
        let first = rx.recv().await.unwrap();
        let (_, burst) = collect(first, &mut rx).await;
        assert_eq!(burst.len(), 5, "{burst:?}");
        let late = rx.recv().await.unwrap();
        assert_eq!(late, PathBuf::from("/p/late"));
        sender.await.unwrap();
    }
}
