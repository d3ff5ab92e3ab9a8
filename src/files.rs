//! Walking the source trees a template names. Symlinks are followed, as sam
//! does, but only regular files and folders are ever read: a link to a
//! device, a FIFO or a socket would hang a build or grow it without end, so
//! it is an error naming the file. A link back up the tree is a cycle, also
//! an error, rather than a walk that never ends. And the one way accel
//! writes a file: atomically.

use std::io;
use std::path::{Path, PathBuf};

/// Files below `root` (following symlinks) as paths relative to it, in the
/// order the walk met them, skipping names `skip` says to. A `root` that is
/// a file gives one empty relative path.
pub(crate) fn walk(root: &Path, skip: &dyn Fn(&Path) -> bool) -> io::Result<Vec<PathBuf>> {
    Ok(walk_with_metadata(root, skip)?.into_iter().map(|(rel, _)| rel).collect())
}

/// [`walk`], with each file's metadata (read once, as the walk stats it).
pub(crate) fn walk_with_metadata(
    root: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
    Ok(walk_tree(root, skip)?.0)
}

/// The files (with metadata) and the folders below `root`, relative to it:
/// what it takes to copy a tree with its empty folders.
pub(crate) fn walk_tree(root: &Path, skip: &dyn Fn(&Path) -> bool) -> io::Result<(Files, Vec<PathBuf>)> {
    let mut out = Walk::default();
    let mut folders = Vec::new();
    visit(root, Path::new(""), skip, &mut folders, &mut out)?;
    Ok((out.files, out.folders))
}

/// Files with their metadata, by path relative to the walk's root.
pub(crate) type Files = Vec<(PathBuf, std::fs::Metadata)>;

#[derive(Default)]
struct Walk {
    files: Files,
    folders: Vec<PathBuf>,
}

fn visit(
    root: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
    folders: &mut Vec<FolderId>,
    out: &mut Walk,
) -> io::Result<()> {
    let path = root.join(rel);
    let meta = std::fs::metadata(&path).map_err(|e| with_path(&path, e))?;
    if meta.is_file() {
        out.files.push((rel.to_path_buf(), meta));
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: not a regular file or folder (a device, FIFO or socket); accel reads only files and folders",
                path.display()
            ),
        ));
    }
    if !rel.as_os_str().is_empty() {
        out.folders.push(rel.to_path_buf());
    }
    let id = identity(&path, &meta)?;
    if folders.contains(&id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: a symlink cycle (this folder is already part of the tree)", path.display()),
        ));
    }
    folders.push(id);
    let mut entries: Vec<_> = std::fs::read_dir(&path).map_err(|e| with_path(&path, e))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let entry_rel = rel.join(entry.file_name());
        if skip(&entry_rel) {
            continue;
        }
        visit(root, &entry_rel, skip, folders, out)?;
    }
    // `folders` holds the folders above: one reached twice through
    // different links is fine; only one inside itself is a cycle.
    folders.pop();
    Ok(())
}

/// A relative path as a zip entry name, an S3 key part or key text: its
/// components joined with `/` whatever the system's separator, so that
/// Windows gives the names and keys Unix does.
pub(crate) fn slash_path(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Writes a file atomically (temp file + rename), readable by all (0644)
/// as sam writes its files: CI and shared setups read them as other users.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mut temp = tempfile::NamedTempFile::new_in(parent)?;
    io::Write::write_all(&mut temp, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    // Kept before the rename: on Windows keeping resets the file's
    // attributes by its path, which the rename took away.
    let temp = temp.into_temp_path().keep().map_err(|e| e.error)?;
    // Replacing a file another process has open is refused for a moment on
    // Windows (an editor, a scanner): wait that out.
    crate::held::retry(crate::held::is_held, || std::fs::rename(&temp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    crate::work::written(1);
    Ok(())
}

/// [`write_atomic`], unless `path` already holds `contents`: a build or a
/// save that changed nothing leaves its outputs (and their times) alone.
/// Returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, contents: &[u8]) -> io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    write_atomic(path, contents).map(|()| true)
}

/// What tells a folder from every other one, however it is reached.
#[cfg(unix)]
type FolderId = (u64, u64);

/// What tells a folder from every other one, however it is reached: its
/// path with every link resolved (std has no stable file index on Windows).
#[cfg(not(unix))]
type FolderId = PathBuf;

#[cfg(unix)]
fn identity(_: &Path, meta: &std::fs::Metadata) -> io::Result<FolderId> {
    use std::os::unix::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path, _: &std::fs::Metadata) -> io::Result<FolderId> {
    std::fs::canonicalize(path).map_err(|e| with_path(path, e))
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_readable_by_all_as_sams() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/build.toml");
        write_atomic(&file, b"x").unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn links_to_files_and_folders_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("src/pkg")).unwrap();
        std::fs::create_dir_all(d.join("shared")).unwrap();
        std::fs::write(d.join("src/app.py"), "x").unwrap();
        std::fs::write(d.join("shared/util.py"), "y").unwrap();
        std::os::unix::fs::symlink(d.join("shared"), d.join("src/pkg/shared")).unwrap();
        std::os::unix::fs::symlink(d.join("shared/util.py"), d.join("src/util.py")).unwrap();
        let files = walk(&d.join("src"), &|_| false).unwrap();
        assert_eq!(files, [PathBuf::from("app.py"), PathBuf::from("pkg/shared/util.py"), PathBuf::from("util.py")]);
    }

    #[test]
    fn devices_fifos_and_cycles_are_errors_not_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("a/zero")).unwrap();
        let error = walk(&d.join("a"), &|_| false).unwrap_err();
        assert!(error.to_string().contains("a/zero: not a regular file or folder"), "{error}");

        std::fs::remove_file(d.join("a/zero")).unwrap();
        let status = std::process::Command::new("mkfifo").arg(d.join("a/pipe")).status().unwrap();
        assert!(status.success());
        let error = walk(&d.join("a"), &|_| false).unwrap_err();
        assert!(error.to_string().contains("a/pipe: not a regular file or folder"), "{error}");

        std::fs::remove_file(d.join("a/pipe")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("a/b/up")).unwrap();
        let error = walk(&d.join("a"), &|_| false).unwrap_err();
        assert!(error.to_string().contains("symlink cycle"), "{error}");
    }
}
