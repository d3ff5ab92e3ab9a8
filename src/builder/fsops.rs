//! File-system work of a build: copying trees with exclusions, linking
//! cached trees into place, hashing source trees, and publishing folders
//! atomically.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::hashes::FileHashes;

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
        hasher.update(rel.to_string_lossy().as_bytes());
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

/// A symbolic link at `link` to the file or folder `target`.
pub(crate) fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    return match target.is_dir() {
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
        match std::fs::remove_file(&dst) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
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

/// Moves a finished `staging` folder to `dest`, replacing what was there. A
/// reader sees the old folder or the new one, never a half-written one.
pub(crate) fn publish(staging: tempfile::TempDir, dest: &Path) -> io::Result<()> {
    let staged = staging.keep();
    // Concurrent builds may swap the same folder: retry a few times rather
    // than fail when another process moved it in between.
    let mut last_error = None;
    for _ in 0..10 {
        // Move the old one aside first: rename cannot replace a non-empty folder.
        let aside = staging_dir(dest)?.keep();
        std::fs::remove_dir(&aside)?;
        let moved = match std::fs::rename(dest, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(e);
            }
        };
        match std::fs::rename(&staged, dest) {
            Ok(()) => {
                if moved {
                    let _ = std::fs::remove_dir_all(&aside);
                }
                return Ok(());
            }
            Err(e) => {
                if moved && !dest.exists() {
                    // Put the previous folder back rather than leave nothing.
                    let _ = std::fs::rename(&aside, dest);
                } else if moved {
                    let _ = std::fs::remove_dir_all(&aside);
                }
                last_error = Some(e);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&staged);
    Err(last_error.unwrap_or_else(|| io::Error::other("could not publish")))
}

/// Moves a finished `staging` folder to `dest` unless `dest` exists: for
/// content-addressed entries, whose existing copy has the same content and
/// may be in use by a concurrent build.
pub(crate) fn publish_if_absent(staging: tempfile::TempDir, dest: &Path) -> io::Result<()> {
    let staged = staging.keep();
    match std::fs::rename(&staged, dest) {
        Err(_) if dest.exists() => std::fs::remove_dir_all(&staged),
        other => other,
    }
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
}
