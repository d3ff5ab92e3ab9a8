//! File-system work of a build: copying trees with exclusions, linking
//! cached trees into place, hashing source trees, and publishing folders
//! atomically without ever needing a delete to succeed at once (Windows).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::hashes::FileHashes;
use crate::held;

/// Whether the file or folder at `rel` (relative to the walk's root) matches
/// one of `patterns`: a name at any depth, `*.ext` suffixes, or `/name` at
/// the root only.
fn excluded(rel: &Path, patterns: &[&str]) -> bool {
    let name = rel.file_name().unwrap_or_default().to_string_lossy();
    patterns.iter().any(|p| match (p.strip_prefix('/'), p.strip_prefix('*')) {
        (Some(top), _) => rel == Path::new(top),
        (None, Some(suffix)) => name.ends_with(suffix),
        (None, None) => name == *p,
    })
}

/// Files below `root` (following symlinks), relative and sorted, skipping
/// names that match `excludes`.
pub(crate) fn list_files(root: &Path, excludes: &[&str]) -> io::Result<Vec<PathBuf>> {
    let mut out = crate::files::walk(root, &|rel| excluded(rel, excludes))?;
    out.sort();
    Ok(out)
}

/// SHA-256 over the sorted relative paths, contents and executable bits of a
/// tree: the same source anywhere on disk gives the same hash. File hashes
/// come from `hashes` (read only when a file's size or time changed).
pub(crate) fn tree_hash(root: &Path, excludes: &[&str], hashes: &FileHashes) -> io::Result<String> {
    let mut files = crate::files::walk_with_metadata(root, &|rel| excluded(rel, excludes))?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (rel, meta) in files {
        let path = if rel.as_os_str().is_empty() { root.to_path_buf() } else { root.join(&rel) };
        // `/` on every system: a Windows machine shares keys with Unix ones.
        hasher.update(crate::files::slash_path(&rel).as_bytes());
        hasher.update([0]);
        hasher.update(hex::decode(hashes.sha256_of(&path, &meta)?).unwrap_or_default());
        hasher.update([u8::from(is_executable(&meta))]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Whether a file's mode lets anyone run it (never, off Unix).
#[cfg(unix)]
pub(crate) fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// Whether a file's mode lets anyone run it (never, off Unix).
#[cfg(not(unix))]
pub(crate) fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Copies one file, creating the parent folder.
pub(crate) fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)?;
    crate::work::written(1);
    Ok(())
}

/// Copies the tree at `from` into `to` (symlinks followed), skipping
/// `excludes`.
pub(crate) fn copy_tree(from: &Path, to: &Path, excludes: &[&str]) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for rel in list_files(from, excludes)? {
        if rel.as_os_str().is_empty() {
            copy_file(from, &to.join(from.file_name().unwrap_or_default()))?;
        } else {
            copy_file(&from.join(&rel), &to.join(&rel))?;
        }
    }
    Ok(())
}

/// A symbolic link at `link` to the file or folder `target` (a relative
/// `target` is from `link`'s folder, as the link reads it).
pub(crate) fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    return match link.parent().unwrap_or(Path::new("")).join(target).is_dir() {
        true => std::os::windows::fs::symlink_dir(target, link),
        false => std::os::windows::fs::symlink_file(target, link),
    };
}

/// Places the tree at `from` into `to` with hard links, falling back to
/// copies (another file system, or no link support); a file `to` already
/// holds is replaced by `from`'s. Returns the number of files placed.
pub(crate) fn link_tree(from: &Path, to: &Path) -> io::Result<usize> {
    let (files, folders) = crate::files::walk_tree(from, &|_| false)?;
    let files: Vec<PathBuf> = files.into_iter().map(|(rel, _)| rel).collect();
    std::fs::create_dir_all(to)?;
    // Empty folders too (a wheel's `pkg.libs/`): the artifact is the tree as built.
    for folder in folders {
        std::fs::create_dir_all(to.join(folder))?;
    }
    for rel in &files {
        let (src, dst) = (from.join(rel), to.join(rel));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A path already placed (one both trees hold) is replaced, never
        // written to: it is a hard link into another cache entry.
        remove_file(&dst)?;
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)?;
        }
    }
    crate::work::written(files.len());
    Ok(files.len())
}

/// A fresh temporary folder beside `dest`, on the same file system so that
/// [`publish`] can rename it into place.
pub(crate) fn staging_dir(dest: &Path) -> io::Result<tempfile::TempDir> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    tempfile::Builder::new().prefix(".accel-tmp-").tempdir_in(parent)
}

/// Name prefix of a folder moved aside to be deleted. Distinct from the
/// staging prefix, which concurrent builds are writing in: a sweep only
/// ever takes folders no build uses.
const ASIDE_PREFIX: &str = ".accel-old-";

/// Folders moved aside this long ago are swept: a younger one may still be
/// put back by the publish that moved it.
const SWEEP_AFTER: Duration = Duration::from_secs(60);

/// A new, unused name beside `dest` for a folder to delete: the prefix, the
/// time (for [`sweep`]), the process and a counter (for uniqueness).
fn aside_path(dest: &Path) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!("{ASIDE_PREFIX}{millis}-{}-{n}", std::process::id()))
}

/// Deletes the folder `path` of a build's own work, waiting out files held
/// for a moment and deletions still pending (Windows); already gone is fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let again = |e: &io::Error| held::is_held(e) || e.kind() == io::ErrorKind::DirectoryNotEmpty;
    match held::retry(again, || std::fs::remove_dir_all(path)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Deletes the file `path` of a build's own work, as [`remove_tree`] does.
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    match held::retry(held::is_held, || std::fs::remove_file(path)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Renames `from` to `to`, waiting out files held for a moment (Windows
/// refuses to rename a folder while anything in it is open).
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    held::retry(held::is_held, || std::fs::rename(from, to))
}

/// Takes the folder `path` out of sight at once (renamed aside), then
/// deletes it with `remove` as far as it can: what a held file keeps is
/// swept by a later run. Returns whether `path` is gone.
fn discard(path: &Path, remove: Remover) -> bool {
    let aside = aside_path(path);
    let gone = rename(path, &aside).is_ok();
    let _ = remove(if gone { aside.as_path() } else { path });
    gone || !path.exists()
}

/// Whether `path` is a folder moved aside to be deleted.
pub(crate) fn is_aside(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(ASIDE_PREFIX))
}

/// Deletes, best effort, the folders [`discard`] and [`publish`] moved
/// aside in `parent` more than [`SWEEP_AFTER`] ago.
pub(crate) fn sweep(parent: &Path) {
    sweep_with(parent, &delete_now);
}

fn sweep_with(parent: &Path, remove: Remover) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(ASIDE_PREFIX)) else {
            continue;
        };
        let made = rest.split('-').next().and_then(|m| m.parse().ok()).map(Duration::from_millis);
        if made.is_none_or(|made| now.saturating_sub(made) > SWEEP_AFTER) {
            let _ = remove(&entry.path());
        }
    }
}

/// One try at deleting a folder: what fails is swept later, never waited for.
fn delete_now(path: &Path) -> io::Result<()> {
    std::fs::remove_dir_all(path)
}

/// How a folder is deleted: `std::fs::remove_dir_all`, or in tests one that
/// fails as a held file makes it fail on Windows.
type Remover<'a> = &'a dyn Fn(&Path) -> io::Result<()>;

/// Moves a finished `staging` folder to `dest`, replacing what was there. A
/// reader sees the old folder or the new one, never a half-written one, and
/// `dest` is never left missing. The old folder is moved aside and deleted
/// best effort: a file in it that another process holds (Windows) leaves it
/// for a later publish to sweep, and fails nothing.
pub(crate) fn publish(staging: tempfile::TempDir, dest: &Path) -> io::Result<()> {
    replace(staging.keep(), dest, &delete_now)
}

fn replace(staged: PathBuf, dest: &Path, remove: Remover) -> io::Result<()> {
    sweep_with(dest.parent().unwrap_or(Path::new(".")), remove);
    // Concurrent builds may swap the same folder: retry a few times rather
    // than fail when another process moved it in between.
    let mut last_error = None;
    for _ in 0..10 {
        // Move the old one aside first: rename cannot replace a non-empty folder.
        let aside = aside_path(dest);
        let moved = match rename(dest, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                discard(&staged, remove);
                return Err(e);
            }
        };
        match rename(&staged, dest) {
            Ok(()) => {
                if moved {
                    let _ = remove(&aside);
                }
                return Ok(());
            }
            Err(e) => {
                // Put the previous folder back rather than leave nothing,
                // unless another build published one meanwhile.
                let restored = moved && !dest.exists() && rename(&aside, dest).is_ok();
                if moved && !restored && dest.exists() {
                    let _ = remove(&aside);
                }
                last_error = Some(e);
            }
        }
    }
    discard(&staged, remove);
    Err(last_error.unwrap_or_else(|| io::Error::other("could not publish")))
}

/// Moves a finished `staging` folder to `dest` unless `dest` exists: for
/// content-addressed entries, whose existing copy has the same content and
/// may be in use by a concurrent build.
pub(crate) fn publish_if_absent(staging: tempfile::TempDir, dest: &Path) -> io::Result<()> {
    let staged = staging.keep();
    match rename(&staged, dest) {
        Err(_) if dest.exists() => {
            discard(&staged, &delete_now);
            Ok(())
        }
        other => other,
    }
}

/// Takes the cache entry `entry` out of use and deletes it as far as it can
/// (see [`discard`]): a half-deleted entry is never seen as a whole one.
pub(crate) fn discard_entry(entry: &Path) -> bool {
    discard(entry, &delete_now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_hash_ignores_location_and_excludes_but_sees_content() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [a.path(), b.path()] {
            std::fs::create_dir_all(dir.join("pkg/__pycache__")).unwrap();
            std::fs::write(dir.join("pkg/app.py"), "x = 1").unwrap();
            std::fs::write(dir.join("pkg/__pycache__/app.pyc"), dir.to_string_lossy().as_bytes()).unwrap();
        }
        let excludes = ["__pycache__"];
        let hashes = FileHashes::default();
        assert_eq!(tree_hash(a.path(), &excludes, &hashes).unwrap(), tree_hash(b.path(), &excludes, &hashes).unwrap());
        std::fs::write(b.path().join("pkg/app.py"), "x = 2").unwrap();
        assert_ne!(tree_hash(a.path(), &excludes, &hashes).unwrap(), tree_hash(b.path(), &excludes, &hashes).unwrap());
    }

    #[test]
    fn copy_skips_excludes_and_publish_replaces() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("node_modules/x")).unwrap();
        std::fs::write(src.path().join("node_modules/x/i.js"), "").unwrap();
        std::fs::write(src.path().join("index.js"), "1").unwrap();
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("stale.js"), "").unwrap();
        let staging = staging_dir(&dest).unwrap();
        copy_tree(src.path(), staging.path(), &["node_modules"]).unwrap();
        publish(staging, &dest).unwrap();
        assert!(dest.join("index.js").is_file());
        assert!(!dest.join("stale.js").exists() && !dest.join("node_modules").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging folders left behind");
    }

    /// A published folder `dest` under a fresh root, holding `file` with `text`.
    fn published(text: &str) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("Function");
        let staging = staging_dir(&dest).unwrap();
        std::fs::write(staging.path().join("app.py"), text).unwrap();
        publish(staging, &dest).unwrap();
        (root, dest)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn publish_succeeds_when_the_old_folder_cannot_be_deleted_and_a_later_one_sweeps_it() {
        let (root, dest) = published("old");
        // What Windows does while a scanner holds a file of the old folder.
        let held = |_: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let staging = staging_dir(&dest).unwrap();
        std::fs::write(staging.path().join("app.py"), "new").unwrap();
        replace(staging.keep(), &dest, &held).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("app.py")).unwrap(), "new");
        let left = names(root.path());
        assert_eq!(left.len(), 2, "the old folder waits aside: {left:?}");
        let aside = left.iter().find(|n| n.starts_with(ASIDE_PREFIX)).expect("an aside folder");
        assert_eq!(std::fs::read_to_string(root.path().join(aside).join("app.py")).unwrap(), "old");

        // A young leftover may still be put back by its publish: kept.
        let staging = staging_dir(&dest).unwrap();
        replace(staging.keep(), &dest, &delete_now).unwrap();
        assert!(root.path().join(aside).is_dir());
        // One an earlier run left is swept by the next publish.
        std::fs::rename(root.path().join(aside), root.path().join(format!("{ASIDE_PREFIX}1000-1-1"))).unwrap();
        let staging = staging_dir(&dest).unwrap();
        std::fs::write(staging.path().join("app.py"), "newer").unwrap();
        publish(staging, &dest).unwrap();
        assert_eq!(names(root.path()), ["Function"]);
        assert_eq!(std::fs::read_to_string(dest.join("app.py")).unwrap(), "newer");
    }

    #[test]
    fn a_failed_publish_puts_the_old_folder_back() {
        let (root, dest) = published("old");
        // A staged folder that vanished (a cleaner, a crash): the rename in fails.
        let gone = root.path().join(".accel-tmp-gone");
        assert!(replace(gone, &dest, &delete_now).is_err());
        assert_eq!(std::fs::read_to_string(dest.join("app.py")).unwrap(), "old");
        assert_eq!(names(root.path()), ["Function"]);
    }

    #[cfg(unix)]
    #[test]
    fn publish_replaces_a_folder_another_process_holds() {
        let (root, dest) = published("old");
        // An editor's or a shell's hold: a file open and the working folder inside.
        let mut holder = std::process::Command::new("tail")
            .args(["-f", "app.py"])
            .current_dir(&dest)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let staging = staging_dir(&dest).unwrap();
        std::fs::write(staging.path().join("app.py"), "new").unwrap();
        let published = publish(staging, &dest);
        let still_running = holder.try_wait().unwrap().is_none();
        holder.kill().unwrap();
        holder.wait().unwrap();
        published.unwrap();
        assert!(still_running, "the holder held the folder throughout");
        assert_eq!(std::fs::read_to_string(dest.join("app.py")).unwrap(), "new");
        assert_eq!(names(root.path()), ["Function"]);
    }

    #[test]
    fn a_discarded_cache_entry_is_out_of_sight_even_when_its_delete_fails() {
        let (root, dest) = published("entry");
        let held = |_: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(discard(&dest, &held));
        assert!(!dest.exists(), "never a half-deleted entry under its key");
        let left = names(root.path());
        assert!(left.len() == 1 && is_aside(&root.path().join(&left[0])), "{left:?}");
    }
}
