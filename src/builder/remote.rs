//! The remote build cache (`--remote-cache s3://bucket/prefix`): the local
//! stores' entries — installed dependencies and built code, under the same
//! content keys, which name no absolute path — shared through S3 by every
//! machine that builds the project, so a fresh CI runner starts warm.
//!
//! An entry travels as one `.tar.gz` whose first member is a manifest of
//! every file's SHA-256 (and every link's target). A download is unpacked
//! into a staging folder and checked against that manifest before it is
//! published locally; an entry that does not match is reported and built
//! locally instead, never used. Uploads are conditional (`If-None-Match: *`):
//! the first writer of a key wins and a concurrent one is fine.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::fsops::is_executable;
use crate::aws::error::{CallError, CallResult};

/// The manifest's name inside an archive.
const MANIFEST: &str = ".accel-manifest.json";

/// Version of the archive layout. v3: empty folders are part of an entry
/// (v2 entries lack them, so they are not read).
const BUCKET: &str = "accel-v3";

/// S3 calls in flight at once: downloads wait on the network, not on the
/// machine's cores, so many go together, but not hundreds.
const REQUESTS_AT_ONCE: usize = 16;

/// What this machine does with the remote cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Download entries, upload none (pull requests: see the README).
    Read,
    /// Upload entries, download none.
    Write,
    /// Both (the default).
    ReadWrite,
}

impl Mode {
    /// `read`, `write` or `read-write`.
    pub(crate) fn parse(text: &str) -> Option<Mode> {
        match text {
            "read" => Some(Mode::Read),
            "write" => Some(Mode::Write),
            "read-write" => Some(Mode::ReadWrite),
            _ => None,
        }
    }
}

/// Which local store an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// Installed dependencies.
    Deps,
    /// Built code.
    Code,
}

/// Why a remote entry could not be used or stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    /// An S3 call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Reading or writing local files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The archive does not match its manifest (or has none).
    #[error("the entry does not match its manifest: {0}")]
    Corrupt(String),
}

/// One manifest line: a file with its digest, or a link with its target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Item {
    /// A regular file: SHA-256 (hex) and whether it is executable.
    File { sha256: String, executable: bool },
    /// A symbolic link (relative, inside the entry).
    Link { target: String },
    /// An empty folder (a wheel's `pkg.libs/`): the entry is the tree as built.
    Folder,
}

/// Where the remote cache lives: `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The bucket.
    pub(crate) bucket: String,
    /// The key prefix (no leading or trailing `/`; may be empty).
    pub(crate) prefix: String,
}

impl Location {
    /// `s3://bucket` or `s3://bucket/prefix`; `None` for anything else.
    pub(crate) fn parse(url: &str) -> Option<Location> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty())
            .then(|| Location { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() })
    }
}

/// The S3 location and mode of the remote cache.
#[derive(Debug, Clone)]
pub(crate) struct RemoteCache {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    mode: Mode,
    requests: Arc<tokio::sync::Semaphore>,
}

impl RemoteCache {
    /// The cache at `location`, used as `mode` says.
    pub(crate) fn new(s3: aws_sdk_s3::Client, location: Location, mode: Mode) -> RemoteCache {
        let requests = Arc::new(tokio::sync::Semaphore::new(REQUESTS_AT_ONCE));
        RemoteCache { s3, bucket: location.bucket, prefix: location.prefix, mode, requests }
    }

    /// Whether entries are downloaded.
    pub(crate) fn reads(&self) -> bool {
        self.mode != Mode::Write
    }

    /// Whether entries are uploaded.
    pub(crate) fn writes(&self) -> bool {
        self.mode != Mode::Read
    }

    fn object_key(&self, store: Store, key: &str) -> String {
        let store = match store {
            Store::Deps => "deps",
            Store::Code => "code",
        };
        let path = format!("{BUCKET}/{store}/{key}.tar.gz");
        if self.prefix.is_empty() { path } else { format!("{}/{path}", self.prefix) }
    }

    /// The record of what the code builds of `base` read outside their
    /// folder (relative paths, JSON), if another machine stored one: it is
    /// part of the code's key.
    pub(crate) async fn fetch_inputs(&self, base: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.object_key(Store::Code, &format!("{base}.inputs"));
        let _turn = self.requests.acquire().await;
        match self.s3.get_object().bucket(&self.bucket).key(key).send().await.call("S3", "GetObject") {
            Ok(object) => {
                let bytes = object.body.collect().await.map_err(|e| RemoteError::Io(std::io::Error::other(e)));
                Ok(Some(bytes?.into_bytes().to_vec()))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the inputs record of `base` (see [`RemoteCache::fetch_inputs`]).
    pub(crate) async fn store_inputs(&self, base: &str, record: Vec<u8>) -> Result<(), RemoteError> {
        let key = self.object_key(Store::Code, &format!("{base}.inputs"));
        let _turn = self.requests.acquire().await;
        let put = self.s3.put_object().bucket(&self.bucket).key(key).body(record.into()).send().await;
        put.call("S3", "PutObject").map(|_| ()).map_err(RemoteError::from)
    }

    /// Downloads entry `key` into `into` (an empty staging folder) and
    /// checks it; `Ok(false)` when the cache does not have it.
    pub(crate) async fn fetch(&self, store: Store, key: &str, into: &Path) -> Result<bool, RemoteError> {
        let object_key = self.object_key(store, key);
        let turn = self.requests.acquire().await;
        let got = self.s3.get_object().bucket(&self.bucket).key(&object_key).send().await.call("S3", "GetObject");
        let body = match got {
            Ok(object) => object.body,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let bytes = body.collect().await.map_err(|e| RemoteError::Io(std::io::Error::other(e)))?.into_bytes();
        drop(turn);
        unpack(&bytes, into)?;
        Ok(true)
    }

    /// Uploads the local entry `entry` as `key`, unless the cache has it.
    pub(crate) async fn store(&self, store: Store, key: &str, entry: &Path) -> Result<(), RemoteError> {
        let bytes = pack(entry)?;
        let _turn = self.requests.acquire().await;
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(store, key))
            .if_none_match("*")
            .body(bytes.into())
            .send()
            .await
            .call("S3", "PutObject");
        match put {
            // Another machine stored the same content first.
            Err(e) if e.is_precondition_failed() => Ok(()),
            other => other.map(|_| ()).map_err(RemoteError::from),
        }
    }
}

/// Every file and link under `dir`, by relative `/` path, with sorted keys.
fn manifest_of(dir: &Path) -> std::io::Result<BTreeMap<String, Item>> {
    let mut items = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for found in std::fs::read_dir(dir.join(&rel))? {
            let found = found?;
            let rel = rel.join(found.file_name());
            let name = crate::files::slash_path(&rel);
            let meta = std::fs::symlink_metadata(dir.join(&rel))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(dir.join(&rel))?.to_string_lossy().replace('\\', "/");
                items.insert(name, Item::Link { target });
            } else if meta.is_dir() {
                if std::fs::read_dir(dir.join(&rel))?.next().is_none() {
                    items.insert(name, Item::Folder);
                }
                pending.push(rel);
            } else {
                let sha256 = hex::encode(Sha256::digest(std::fs::read(dir.join(&rel))?));
                items.insert(name, Item::File { sha256, executable: is_executable(&meta) });
            }
        }
    }
    Ok(items)
}

/// The archive of `dir`: the manifest first, then each item in path order.
fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    let items = manifest_of(dir)?;
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    let manifest = serde_json::to_vec(&items).map_err(std::io::Error::other)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    archive.append_data(&mut header, MANIFEST, manifest.as_slice())?;
    for (name, item) in &items {
        let mut header = tar::Header::new_gnu();
        match item {
            Item::File { executable, .. } => {
                let bytes = std::fs::read(dir.join(name))?;
                header.set_size(bytes.len() as u64);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                archive.append_data(&mut header, name, bytes.as_slice())?;
            }
            Item::Link { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                archive.append_link(&mut header, name, target)?;
            }
            Item::Folder => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                archive.append_data(&mut header, name, std::io::empty())?;
            }
        }
    }
    archive.into_inner()?.finish()
}

/// Whether `name` is a plain relative path: normal components only (no
/// `..`, `.`, root or empty part), so writing it cannot leave the entry.
fn plain(name: &str) -> bool {
    !name.is_empty() && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Whether link `name` with `target` resolves inside the entry when
/// followed as the system follows it: each step is taken from the link's
/// folder, and no step before the last may pass through another link of
/// the entry (a link to `.` would turn a later `..` into an escape).
fn link_stays_inside(name: &str, target: &str, links: &BTreeMap<String, String>) -> bool {
    let mut at: Vec<&str> = name.split('/').collect();
    at.pop();
    let steps: Vec<&str> = target.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if target.starts_with('/') || steps.is_empty() {
        return false;
    }
    for (i, step) in steps.iter().enumerate() {
        if *step == ".." {
            if at.pop().is_none() {
                return false;
            }
        } else {
            at.push(step);
            if i + 1 < steps.len() && links.contains_key(&at.join("/")) {
                return false;
            }
        }
    }
    true
}

/// Unpacks `bytes` into `into`, checking every member against the manifest
/// and the manifest against what arrived: nothing missing, nothing extra,
/// no path or link leading out of the entry. Links are made last, so no
/// file is written through one.
fn unpack(bytes: &[u8], into: &Path) -> Result<(), RemoteError> {
    let corrupt = |why: String| RemoteError::Corrupt(why);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut entries = archive.entries()?;
    let mut first = entries.next().ok_or_else(|| corrupt("empty archive".into()))??;
    if first.path()?.to_string_lossy() != MANIFEST {
        return Err(corrupt("no manifest".into()));
    }
    let mut text = Vec::new();
    first.read_to_end(&mut text)?;
    let mut expected: BTreeMap<String, Item> =
        serde_json::from_slice(&text).map_err(|e| corrupt(format!("manifest: {e}")))?;
    let links: BTreeMap<String, String> = expected
        .iter()
        .filter_map(|(name, item)| match item {
            Item::Link { target } => Some((name.clone(), target.clone())),
            Item::File { .. } | Item::Folder => None,
        })
        .collect();
    for (name, target) in &links {
        if !plain(name) || !link_stays_inside(name, target, &links) {
            return Err(corrupt(format!("{name} links out of the entry")));
        }
    }
    for entry in entries {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().trim_end_matches('/').to_string();
        let item = expected.remove(&name).ok_or_else(|| corrupt(format!("{name} is not in the manifest")))?;
        if !plain(&name) {
            return Err(corrupt(format!("{name} leads out of the entry")));
        }
        match item {
            Item::File { sha256, executable } => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                if hex::encode(Sha256::digest(&bytes)) != sha256 {
                    return Err(corrupt(format!("{name} does not have its digest")));
                }
                let path = into.join(&name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::File::create(&path)?.write_all(&bytes)?;
                crate::work::written(1);
                set_executable(&path, executable)?;
            }
            Item::Link { target } => {
                let link = entry.link_name()?.map(|l| l.to_string_lossy().replace('\\', "/"));
                if link.as_deref() != Some(target.as_str()) {
                    return Err(corrupt(format!("{name} links elsewhere than its manifest says")));
                }
            }
            Item::Folder => std::fs::create_dir_all(into.join(&name))?,
        }
    }
    if let Some(missing) = expected.keys().next() {
        return Err(corrupt(format!("{missing} is missing")));
    }
    for (name, target) in &links {
        let path = into.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        symlink(target, &path)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }))
}

#[cfg(not(unix))]
fn set_executable(_: &Path, _: bool) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &str, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn symlink(target: &str, path: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_modes_parse() {
        let location = |bucket: &str, prefix: &str| Some(Location { bucket: bucket.into(), prefix: prefix.into() });
        assert_eq!(Location::parse("s3://ci-cache"), location("ci-cache", ""));
        assert_eq!(Location::parse("s3://ci-cache/team/app/"), location("ci-cache", "team/app"));
        assert_eq!(Location::parse("https://ci-cache"), None);
        assert_eq!(Location::parse("s3:///x"), None);
        assert_eq!(Mode::parse("read-write"), Some(Mode::ReadWrite));
        assert_eq!(Mode::parse("all"), None);
    }

    fn entry(dir: &Path) {
        std::fs::create_dir_all(dir.join("pkg/bin")).unwrap();
        std::fs::write(dir.join("pkg/__init__.py"), "X = 1\n").unwrap();
        std::fs::write(dir.join("pkg/bin/tool"), "#!/bin/sh\n").unwrap();
        set_executable(&dir.join("pkg/bin/tool"), true).unwrap();
        std::fs::create_dir_all(dir.join(".bin")).unwrap();
        symlink("../pkg/bin/tool", &dir.join(".bin/tool")).unwrap();
        std::fs::create_dir_all(dir.join("pkg.libs")).unwrap();
    }

    #[cfg(unix)] // modes and symlinks
    #[test]
    fn an_entry_round_trips_with_modes_and_links() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        entry(from.path());
        let archive = pack(from.path()).unwrap();
        unpack(&archive, to.path()).unwrap();
        assert_eq!(manifest_of(from.path()).unwrap(), manifest_of(to.path()).unwrap());
        assert_eq!(std::fs::read_link(to.path().join(".bin/tool")).unwrap(), Path::new("../pkg/bin/tool"));
        assert!(to.path().join("pkg.libs").is_dir(), "an empty folder is part of the entry");
    }

    #[test]
    fn a_tampered_entry_is_refused() {
        let from = tempfile::tempdir().unwrap();
        entry(from.path());
        let items = manifest_of(from.path()).unwrap();
        // The same manifest over other content.
        let tampered = {
            std::fs::write(from.path().join("pkg/__init__.py"), "import os; os.system('evil')\n").unwrap();
            let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
            let manifest = serde_json::to_vec(&items).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_size(manifest.len() as u64);
            archive.append_data(&mut header, MANIFEST, manifest.as_slice()).unwrap();
            archive.append_path_with_name(from.path().join("pkg/__init__.py"), "pkg/__init__.py").unwrap();
            archive.into_inner().unwrap().finish().unwrap()
        };
        let to = tempfile::tempdir().unwrap();
        let error = unpack(&tampered, to.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the entry does not match its manifest: pkg/__init__.py does not have its digest"
        );
    }

    #[test]
    fn names_and_links_that_leave_the_entry_are_refused() {
        assert!(plain("pkg/a.py") && !plain("d/../x") && !plain("./x") && !plain("/etc/passwd") && !plain(""));
        let links = BTreeMap::from([("d".to_string(), ".".to_string()), ("bin/t".to_string(), "../pkg/t".to_string())]);
        assert!(link_stays_inside("bin/t", "../pkg/t", &links));
        assert!(!link_stays_inside("x", "../outside", &links));
        assert!(!link_stays_inside("x", "/etc/passwd", &links));
        // Through the link `d` (to `.`), `d/..` is the entry's parent.
        assert!(!link_stays_inside("y", "d/..", &links));
    }
}
