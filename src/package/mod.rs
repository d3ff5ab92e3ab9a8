//! Packaging artifacts for deployment: deterministic zips (the same source
//! always gives the same bytes), sam's content checksums as S3 keys, and
//! uploads that skip objects already in the bucket (sam always re-uploads).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) mod template;

use std::collections::HashSet;

use md5::{Digest, Md5};
use zip::write::SimpleFileOptions;

use crate::aws::error::{CallError, CallResult};

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackageError {
    /// Reading the artifact.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing the archive.
    #[error("{}: {source}", path.display())]
    Zip {
        /// The folder being zipped.
        path: PathBuf,
        /// The error.
        source: zip::result::ZipError,
    },
    /// An S3 call.
    #[error("s3://{bucket}/{key}: {source}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The failed call.
        source: CallError,
    },
    /// A packaging task panicked or was cancelled.
    #[error("an upload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Files below `dir` (symlinks followed) as `/`-separated relative paths,
/// sorted as strings, which is the order sam's checksum uses.
pub(crate) fn files(dir: &Path) -> io::Result<Vec<String>> {
    let mut out: Vec<String> =
        crate::files::walk(dir, &|_| false)?.iter().map(|rel| crate::files::slash_path(rel)).collect();
    out.sort();
    Ok(out)
}

/// md5 hex of a file's bytes (sam's `file_checksum`).
pub(crate) fn file_md5(path: &Path) -> io::Result<String> {
    let bytes = std::fs::read(path)?;
    crate::work::hashed(1);
    Ok(hex::encode(Md5::digest(bytes)))
}

/// sam's `dir_checksum`: md5 over each file's relative path followed by the
/// md5 hex of its contents, in sorted order. sam names a folder's S3 object
/// after it, so accel's keys match sam's for the same content.
pub(crate) fn dir_checksum(dir: &Path) -> io::Result<String> {
    let mut md5 = Md5::new();
    for rel in files(dir)? {
        md5.update(rel.as_bytes());
        md5.update(file_md5(&dir.join(&rel))?.as_bytes());
    }
    Ok(hex::encode(md5.finalize()))
}

/// Zips `dir` deterministically: entries sorted, every timestamp 1980-01-01,
/// DEFLATE, and Lambda's permission rule ([`entry_mode`]) so that the same
/// tree always gives the same bytes.
pub(crate) fn zip_dir(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let zip_err = |source| PackageError::Zip { path: dir.to_path_buf(), source };
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Io { path, source }
    };
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut folders_done = std::collections::BTreeSet::new();
    for rel in files(dir).map_err(io_err(dir))? {
        // Folder entries first, each once, in path order.
        let mut prefix = String::new();
        for part in rel.split('/').collect::<Vec<_>>().split_last().map(|(_, dirs)| dirs.to_vec()).unwrap_or_default() {
            prefix = if prefix.is_empty() { part.to_string() } else { format!("{prefix}/{part}") };
            if folders_done.insert(prefix.clone()) {
                let mode = entry_mode(Entry::Folder, mode_of(&dir.join(&prefix)));
                writer.add_directory(format!("{prefix}/"), base.unix_permissions(mode)).map_err(zip_err)?;
            }
        }
        let path = dir.join(&rel);
        let mode = entry_mode(Entry::File, mode_of(&path));
        writer.start_file(rel.as_str(), base.unix_permissions(mode)).map_err(zip_err)?;
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        writer.write_all(&bytes).map_err(io_err(&path))?;
    }
    Ok(writer.finish().map_err(zip_err)?.into_inner())
}

/// A zip holding one file, `name`, with `bytes` (inline code), under the
/// same rules as [`zip_dir`].
pub(crate) fn zip_file(name: &str, bytes: &[u8]) -> Result<Vec<u8>, PackageError> {
    let zip_err = |source| PackageError::Zip { path: PathBuf::from(name), source };
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().last_modified_time(zip::DateTime::default()).unix_permissions(0o644);
    zip.start_file(name, options).map_err(zip_err)?;
    zip.write_all(bytes).map_err(|source| PackageError::Io { path: PathBuf::from(name), source })?;
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// What a zip entry is.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A file.
    File,
    /// A folder.
    Folder,
}

/// The Unix mode of a zip entry, as sam's `make_zip_with_lambda_permissions`
/// sets it: the file's own `mode` with the read bits added (files) or the
/// exec bits added (folders). Without a mode (Windows has no exec bits), sam
/// gives every entry 0755, so that a `bootstrap` or another executable built
/// there runs on Lambda; so does accel.
fn entry_mode(entry: Entry, mode: Option<u32>) -> u32 {
    match (mode, entry) {
        (None, _) => 0o755,
        (Some(mode), Entry::File) => mode & 0o7777 | 0o444,
        (Some(mode), Entry::Folder) => mode & 0o7777 | 0o111,
    }
}

/// A file's Unix mode, `None` where the system has none.
#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

/// A file's Unix mode, `None` where the system has none.
#[cfg(not(unix))]
fn mode_of(_: &Path) -> Option<u32> {
    None
}

/// Where artifacts go and how they are stored.
#[derive(Debug, Clone)]
pub(crate) struct Uploader {
    s3: aws_sdk_s3::Client,
    /// Artifact bucket.
    pub(crate) bucket: String,
    /// `--kms-key-id`: SSE-KMS instead of AES256.
    pub(crate) kms_key_id: Option<String>,
    /// `--metadata`: object metadata.
    pub(crate) metadata: std::collections::HashMap<String, String>,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upload {
    /// The object was already there: nothing sent.
    Skipped,
    /// The object was written: this many bytes.
    Uploaded(u64),
}

impl Uploader {
    /// An uploader for `bucket` through `s3`.
    pub(crate) fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Uploader { s3, bucket: bucket.into(), kms_key_id: None, metadata: Default::default() }
    }

    /// Uploads the body `body` makes (a zip, say) to `key` unless an object
    /// is already there: keys are content hashes, so an existing object holds
    /// these very bytes. `exists` is what a listing already told
    /// ([`Uploader::existing_keys`]); `None` asks HeadObject.
    pub(crate) async fn upload_with(
        &self,
        key: &str,
        exists: Option<bool>,
        body: impl FnOnce() -> Result<Vec<u8>, PackageError>,
    ) -> Result<Upload, PackageError> {
        let fail = |source: CallError| PackageError::S3 { bucket: self.bucket.clone(), key: key.to_string(), source };
        let exists = match exists {
            Some(known) => known,
            None => match self.s3.head_object().bucket(&self.bucket).key(key).send().await.call("S3", "HeadObject") {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(fail(e)),
            },
        };
        if exists {
            return Ok(Upload::Skipped);
        }
        let body = body()?;
        let bytes = body.len() as u64;
        let mut put = self.s3.put_object().bucket(&self.bucket).key(key).body(body.into());
        put = match &self.kms_key_id {
            Some(kms) => put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).ssekms_key_id(kms),
            None => put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256),
        };
        for (k, v) in &self.metadata {
            put = put.metadata(k, v);
        }
        let long = aws_sdk_s3::config::Builder::default().timeout_config(crate::aws::long_call_timeouts());
        put.customize().config_override(long).send().await.call("S3", "PutObject").map_err(fail)?;
        Ok(Upload::Uploaded(bytes))
    }
}

impl Uploader {
    /// The keys under `prefix` (`None`: the whole bucket) when the listing
    /// takes at most `max_pages` calls of 1 000 keys; `None` when it is
    /// longer or fails, and then each upload asks HeadObject instead.
    pub(crate) async fn existing_keys(&self, prefix: Option<&str>, max_pages: usize) -> Option<HashSet<String>> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix(prefix.map(|p| format!("{p}/")))
            .into_paginator()
            .send();
        let mut keys = HashSet::new();
        for _ in 0..max_pages {
            match pages.next().await {
                None => return Some(keys),
                Some(Ok(page)) => keys.extend(page.contents().iter().filter_map(|o| o.key()).map(str::to_string)),
                Some(Err(_)) => return None,
            }
        }
        pages.next().await.is_none().then_some(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("pkg/sub")).unwrap();
        std::fs::write(dir.join("app.py"), "print(1)\n").unwrap();
        std::fs::write(dir.join("pkg/sub/data.txt"), "data").unwrap();
        std::fs::write(dir.join("pkg-extra.txt"), "x").unwrap();
    }

    #[test]
    fn same_tree_same_bytes_wherever_and_whenever() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(b.path());
        assert_eq!(zip_dir(a.path()).unwrap(), zip_dir(b.path()).unwrap());
        assert_eq!(dir_checksum(a.path()).unwrap(), dir_checksum(b.path()).unwrap());
        std::fs::write(b.path().join("app.py"), "print(2)\n").unwrap();
        assert_ne!(zip_dir(a.path()).unwrap(), zip_dir(b.path()).unwrap());
        assert_ne!(dir_checksum(a.path()).unwrap(), dir_checksum(b.path()).unwrap());
    }

    #[test]
    fn zip_entries_sorted_with_lambda_permissions() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("app.py"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let bytes = zip_dir(dir.path()).unwrap();
        let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> =
            (0..archive.len()).map(|i| archive.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(names, ["app.py", "pkg-extra.txt", "pkg/", "pkg/sub/", "pkg/sub/data.txt"]);
        // The mode Lambda reads: the top half of the external attributes,
        // whatever system the entry says made it (zip says DOS on Windows,
        // as Python's zipfile does for sam there; zip's `unix_mode` then
        // ignores the bits). Windows has no mode: 0755 (see below).
        let mode = |file: &zip::read::ZipFile<'_, _>| file.external_attributes() >> 16;
        let app = archive.by_name("app.py").unwrap();
        let want = if cfg!(unix) { 0o644 } else { 0o755 };
        assert_eq!(mode(&app) & 0o777, want, "read bits added to 0600");
        assert_eq!(app.last_modified().map(|t| t.year()), Some(1980));
        drop(app);
        let folder = archive.by_name("pkg/").unwrap();
        assert_eq!(mode(&folder) & 0o111, 0o111, "exec bits on folders");
    }

    #[test]
    fn windows_entries_are_executable_as_sams_and_unix_modes_gain_read_or_exec_bits() {
        // sam on Windows: 0o100755 for every file, whatever it is.
        assert_eq!(entry_mode(Entry::File, None), 0o755);
        assert_eq!(entry_mode(Entry::Folder, None), 0o755);
        // Elsewhere: the file's own mode, read bits added; exec bits kept.
        assert_eq!(entry_mode(Entry::File, Some(0o100600)), 0o644);
        assert_eq!(entry_mode(Entry::File, Some(0o100700)), 0o744);
        assert_eq!(entry_mode(Entry::File, Some(0o100755)), 0o755);
        assert_eq!(entry_mode(Entry::Folder, Some(0o40700)), 0o711);
    }

    #[test]
    fn names_join_components_with_slashes_on_every_system() {
        // Built from components, this is `pkg\sub\data.txt` on Windows.
        let rel: PathBuf = ["pkg", "sub", "data.txt"].iter().collect();
        assert_eq!(crate::files::slash_path(&rel), "pkg/sub/data.txt");
        let up: PathBuf = ["..", "shared", "util.js"].iter().collect();
        assert_eq!(crate::files::slash_path(&up), "../shared/util.js");
        #[cfg(windows)]
        assert_eq!(crate::files::slash_path(Path::new(r"pkg\sub\data.txt")), "pkg/sub/data.txt");
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let names = files(dir.path()).unwrap();
        assert!(names.iter().all(|n| !n.contains('\\')), "{names:?}");
        assert!(names.contains(&"pkg/sub/data.txt".to_string()), "{names:?}");
    }

    #[test]
    fn checksum_matches_sam() {
        // The value SAM CLI 1.170.0's `samcli.lib.utils.hash.dir_checksum` gives
        // for this tree; `b-c` sorts before `b/` as a string, not as a path.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("b-c")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "A").unwrap();
        std::fs::write(dir.path().join("b/c.txt"), "C").unwrap();
        std::fs::write(dir.path().join("b-c/d.txt"), "D").unwrap();
        assert_eq!(dir_checksum(dir.path()).unwrap(), "6f51cb8249a57cb05c994f14f8303f40");
    }
}
