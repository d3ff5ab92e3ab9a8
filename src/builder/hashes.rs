//! Content hashes of source files, remembered with each file's size and
//! modification time (as cargo's fingerprints), so a cached build with
//! nothing changed stats its sources instead of reading them. A file whose
//! modification time is too recent to tell a later same-size edit apart is
//! never remembered.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A file modified this close to now may change again within the same
/// timestamp tick: its hash is not remembered.
const SETTLED: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    len: u64,
    modified_ns: u128,
    sha256: String,
    /// build.toml's manifest hash, taken in the same read.
    #[serde(default)]
    md5: String,
}

/// The remembered hashes of one cache, shared by a build's units.
#[derive(Debug, Default)]
pub(crate) struct FileHashes {
    /// Where they are kept between builds (`None`: this build only).
    file: Option<PathBuf>,
    /// By path as text: hashing and comparing a `Path` walks its components.
    known: Mutex<HashMap<String, Known>>,
    changed: AtomicBool,
}

impl FileHashes {
    /// The hashes kept in `file` (none yet when it is missing or unreadable).
    pub(crate) fn load(file: &Path) -> FileHashes {
        let known = std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        FileHashes { file: Some(file.to_path_buf()), known: Mutex::new(known), changed: AtomicBool::new(false) }
    }

    /// The SHA-256 (hex) of `path`'s content, read only when its size or
    /// modification time differ from what is remembered.
    pub(crate) fn sha256(&self, path: &Path) -> io::Result<String> {
        self.sha256_of(path, &std::fs::metadata(path)?)
    }

    /// [`FileHashes::sha256`] with the file's metadata already at hand.
    pub(crate) fn sha256_of(&self, path: &Path, meta: &std::fs::Metadata) -> io::Result<String> {
        Ok(self.known(path, meta, false)?.sha256)
    }

    /// The MD5 (hex) of `path`'s content (sam's manifest hash in
    /// build.toml), remembered like [`FileHashes::sha256`].
    pub(crate) fn md5(&self, path: &Path) -> io::Result<String> {
        Ok(self.known(path, &std::fs::metadata(path)?, true)?.md5)
    }

    fn known(&self, path: &Path, meta: &std::fs::Metadata, with_md5: bool) -> io::Result<Known> {
        let modified = meta.modified()?;
        let modified_ns = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let key = path.to_str();
        if let (Some(key), Ok(known)) = (key, self.known.lock())
            && let Some(k) = known.get(key)
            && k.len == meta.len()
            && k.modified_ns == modified_ns
            && (!with_md5 || !k.md5.is_empty())
        {
            return Ok(k.clone());
        }
        let bytes = std::fs::read(path)?;
        crate::work::hashed(1);
        let md5 = {
            use md5::Digest;
            hex::encode(md5::Md5::digest(&bytes))
        };
        let found = Known { len: meta.len(), modified_ns, sha256: hex::encode(Sha256::digest(&bytes)), md5 };
        let settled = SystemTime::now().duration_since(modified).is_ok_and(|age| age > SETTLED);
        if settled && let (Some(key), Ok(mut known)) = (key, self.known.lock()) {
            known.insert(key.to_string(), found.clone());
            self.changed.store(true, Ordering::Relaxed);
        }
        Ok(found)
    }

    /// Keeps what this build learnt for the next one (best effort: losing
    /// it only costs reading the files again).
    pub(crate) fn save(&self) {
        let (Some(file), true) = (&self.file, self.changed.load(Ordering::Relaxed)) else { return };
        let Ok(mut known) = self.known.lock() else { return };
        // Forget files that are gone, so the record does not grow forever.
        known.retain(|path, _| Path::new(path).exists());
        let _ = crate::files::write_atomic(file, &serde_json::to_vec(&*known).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_only_when_settled_and_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (file, memo) = (dir.path().join("a.py"), dir.path().join("hashes.json"));
        std::fs::write(&file, "one").unwrap();
        let hashes = FileHashes::load(&memo);
        let first = hashes.sha256(&file).unwrap();
        assert!(hashes.known.lock().unwrap().is_empty(), "a fresh file is not remembered");
        // An old file is remembered, and a same-size edit still seen.
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
        assert_eq!(hashes.sha256(&file).unwrap(), first);
        hashes.save();
        let again = FileHashes::load(&memo);
        assert_eq!(again.known.lock().unwrap().len(), 1);
        std::fs::write(&file, "two").unwrap();
        assert_ne!(again.sha256(&file).unwrap(), first, "same size, new time: read again");
    }
}
