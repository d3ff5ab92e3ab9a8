//! The build cache: two content-addressed stores, one for installed
//! dependencies (keyed by the manifest and lock files) and one for built code
//! (keyed by the source tree), each entry published atomically. Keys never
//! depend on where the project lives, so a moved checkout keeps its cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::graph::{BuildUnit, WorkingDir};
use super::hashes::FileHashes;
use super::workflow::Workflow;
use super::{fsops, inputs};

/// Version of the key scheme and entry layout: a change starts a new bucket.
const BUCKET: &str = "accel-v2";

/// Entries no build has used for this long are removed after a full build.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The two stores, and the file hashes their keys are made of.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    deps_root: PathBuf,
    code_root: PathBuf,
    /// Shared by every unit of a build.
    pub(crate) hashes: std::sync::Arc<FileHashes>,
}

impl Cache {
    /// Dependencies under `<deps_dir>/<BUCKET>`, code under `<cache_dir>/<BUCKET>`.
    pub(crate) fn new(deps_dir: &Path, cache_dir: &Path) -> Self {
        let hashes = std::sync::Arc::new(FileHashes::load(&cache_dir.join(BUCKET).join("file-hashes.json")));
        Cache { deps_root: deps_dir.join(BUCKET), code_root: cache_dir.join(BUCKET), hashes }
    }

    /// Where build tools keep their own caches across builds (uv's
    /// downloads): beside the code store, never cleaned by accel.
    pub(crate) fn tool_cache(&self) -> PathBuf {
        self.code_root.parent().unwrap_or(&self.code_root).join("tools")
    }

    /// Where the dependencies with `key` live.
    pub(crate) fn deps_entry(&self, key: &str) -> PathBuf {
        self.deps_root.join(key)
    }

    /// Where the inputs of the code builds of `base` are recorded.
    pub(crate) fn inputs_file(&self, base: &str) -> PathBuf {
        self.code_root.join(format!("{base}.inputs.json"))
    }

    /// The files outside its folder that the last code build of `base`
    /// read, relative to `source_dir` (none recorded: none read).
    pub(crate) fn recorded_inputs(&self, base: &str, source_dir: &Path) -> Vec<PathBuf> {
        let file = self.inputs_file(base);
        let relative: Vec<PathBuf> =
            std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        relative.iter().map(|rel| inputs::normalize(&source_dir.join(rel))).collect()
    }

    /// Records what a code build of `base` read outside `source_dir`.
    pub(crate) fn record_inputs(&self, base: &str, source_dir: &Path, read: &[PathBuf]) -> std::io::Result<()> {
        let relative: Vec<PathBuf> =
            read.iter().map(|p| pathdiff::diff_paths(p, source_dir).unwrap_or_else(|| p.clone())).collect();
        let bytes = serde_json::to_vec(&relative).unwrap_or_default();
        crate::files::write_atomic(&self.inputs_file(base), &bytes)
    }

    /// Where the code with `key` lives.
    pub(crate) fn code_entry(&self, key: &str) -> PathBuf {
        self.code_root.join(key)
    }

    /// Marks an entry as used now, so that cleaning keeps it.
    pub(crate) fn touch(entry: &Path) {
        if let Ok(dir) = std::fs::File::open(entry) {
            let _ = dir.set_modified(SystemTime::now());
        }
    }

    /// Removes entries that are not in `keep` and that no build has used
    /// for a day: other templates built from the same folder keep theirs.
    pub(crate) fn clean(&self, keep: &[PathBuf]) -> usize {
        let keep: std::collections::HashSet<&std::ffi::OsStr> = keep.iter().map(|p| p.as_os_str()).collect();
        let mut removed = 0;
        for root in [&self.deps_root, &self.code_root] {
            fsops::sweep(root);
            let Ok(entries) = std::fs::read_dir(root) else {
                continue;
            };
            // Entries are folders (the hash memo and input records are
            // files); folders moved aside are the sweep's.
            let entries = entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
            for entry in entries.filter(|e| !fsops::is_aside(&e.path())) {
                let path = entry.path();
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_AFTER);
                if !keep.contains(path.as_os_str()) && stale && fsops::discard_entry(&path) {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// The key of a unit's dependencies: manifest and lock files (npm's without
/// the fields only describing the package: [`Workflow::install_key`]),
/// runtime, architecture, workflow and build properties. `None` without a
/// manifest.
/// `inputs`: what the install reads besides the manifest and lock files
/// ([`inputs::manifest_inputs`]).
pub(crate) fn deps_key(unit: &BuildUnit, inputs: &[PathBuf], hashes: &FileHashes) -> std::io::Result<Option<String>> {
    let Some(manifest) = &unit.manifest else {
        return Ok(None);
    };
    let mut h = Sha256::new();
    field(&mut h, "deps");
    exec_bits(&mut h);
    field(&mut h, unit.workflow.key_name());
    field(&mut h, &unit.runtime);
    field(&mut h, &unit.architecture);
    field(&mut h, &unit.build_properties().to_string());
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let names = unit.workflow.lockfiles().iter().chain(unit.workflow.install_configs());
    let (manifest_digest, files): (Vec<u8>, Vec<(&str, Vec<u8>)>) = if unit.workflow.keys_install_as_read() {
        // Through the memo: unchanged files are not read again.
        let digest = |path: &Path| hashes.sha256(path).map(|hex| hex::decode(hex).unwrap_or_default());
        (digest(manifest)?, names.filter_map(|name| digest(&dir.join(name)).ok().map(|d| (*name, d))).collect())
    } else {
        let files: Vec<_> =
            names.filter_map(|name| std::fs::read(dir.join(name)).ok().map(|bytes| (*name, bytes))).collect();
        crate::work::hashed(1 + files.len());
        let (keyed, files) = unit.workflow.install_key(std::fs::read(manifest)?, files);
        (
            Sha256::digest(keyed).to_vec(),
            files.into_iter().map(|(name, bytes)| (name, Sha256::digest(bytes).to_vec())).collect(),
        )
    };
    h.update(manifest_digest);
    for tool in unit.workflow.install_tools(unit) {
        field(&mut h, &tool);
    }
    for (name, digest) in files {
        field(&mut h, name);
        h.update(digest);
    }
    // `-r` includes, local packages and the like: an install reads them too.
    inputs::hash_into(&mut h, dir, inputs, hashes);
    if unit.build_in_source {
        // The install writes into this folder: one install per folder.
        field(&mut h, "in-source");
        field(&mut h, &dir.to_string_lossy());
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// The key of a unit's built code: the source tree (without excluded files),
/// runtime, architecture, metadata, the make target for makefile builds, and
/// the dependencies' key when the code step reads them (esbuild bundles).
pub(crate) fn code_key(unit: &BuildUnit, deps_key: Option<&str>, hashes: &FileHashes) -> std::io::Result<String> {
    let mut h = Sha256::new();
    field(&mut h, "code");
    exec_bits(&mut h);
    field(&mut h, unit.workflow.key_name());
    field(&mut h, &unit.runtime);
    field(&mut h, &unit.architecture);
    field(&mut h, &unit.metadata.to_string());
    field(&mut h, unit.handler.as_deref().unwrap_or_default());
    if unit.workflow == Workflow::Makefile {
        // The make target is named after the resource.
        field(&mut h, &unit.logical_ids[0]);
    }
    if let Some(make) = &unit.make {
        // Which Makefile (`-m`) and where make runs: the source's contents
        // alone do not say. One outside the source is a recorded input.
        let place = pathdiff::diff_paths(&make.makefile, &unit.source_dir).unwrap_or_else(|| make.makefile.clone());
        field(&mut h, &crate::files::slash_path(&place));
        if let WorkingDir::Scratch(inside) = &make.working_dir {
            field(&mut h, &crate::files::slash_path(inside));
        }
    }
    field(&mut h, &fsops::tree_hash(&unit.source_dir, unit.workflow.excludes(), hashes)?);
    if unit.workflow.code_uses_dependencies() {
        field(&mut h, deps_key.unwrap_or_default());
    }
    if unit.build_in_source {
        // esbuild sees the source's node_modules, make its own leftovers.
        field(&mut h, "in-source");
    }
    let source = inputs::normalize(&unit.source_dir);
    let manifest = unit.manifest.as_deref().map(inputs::normalize);
    if let Some(manifest) = manifest.filter(|m| unit.workflow == Workflow::Npm && m.parent() != Some(&source)) {
        // `-m`: npm packs the manifest's folder into the artifact.
        let place = pathdiff::diff_paths(&manifest, &source).unwrap_or(manifest);
        field(&mut h, &crate::files::slash_path(&place));
    }
    Ok(hex::encode(h.finalize()))
}

/// The key of built code whose base key is `base` and that read `read`
/// outside its folder: `base` itself when it read nothing else.
pub(crate) fn with_inputs(base: &str, source_dir: &Path, read: &[PathBuf], hashes: &FileHashes) -> String {
    if read.is_empty() {
        return base.to_string();
    }
    let mut h = Sha256::new();
    field(&mut h, base);
    inputs::hash_into(&mut h, source_dir, read, hashes);
    hex::encode(h.finalize())
}

/// Entries made where files have no exec bits (Windows) carry none: they
/// are keyed apart, so that a Unix machine sharing the remote cache never
/// takes a `bootstrap` that cannot run. Unix keys are unchanged.
fn exec_bits(h: &mut Sha256) {
    if cfg!(not(unix)) {
        field(h, "no-exec-bits");
    }
}

fn field(h: &mut Sha256, value: &str) {
    h.update(value.len().to_le_bytes());
    h.update(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_keys_leave_out_what_only_describes_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let hashes = FileHashes::load(&dir.path().join("file-hashes.json"));
        let key = |folder: &str, manifest: &str, lock: Option<&str>| {
            let source = dir.path().join(folder);
            std::fs::create_dir_all(&source).unwrap();
            std::fs::write(source.join("package.json"), manifest).unwrap();
            if let Some(lock) = lock {
                std::fs::write(source.join("package-lock.json"), lock).unwrap();
            }
            let mut unit = BuildUnit::function(Workflow::Npm, "nodejs20.x", "x86_64", &source);
            unit.manifest = Some(source.join("package.json"));
            deps_key(&unit, &[], &hashes).unwrap().unwrap()
        };
        let manifest = |name: &str, version: &str, rest: &str| {
            format!(r#"{{"name": "{name}", "version": "{version}", {rest}"dependencies": {{"is-number": "7.0.0"}}}}"#)
        };
        let lock = |name: &str, version: &str, is_number: &str| {
            let root = format!(r#""name": "{name}", "version": "{version}", "license": "MIT""#);
            format!(
                r#"{{{root}, "lockfileVersion": 3, "packages": {{"": {{{root}, "dependencies": {{"is-number": "7.0.0"}}}}, "node_modules/is-number": {{"version": "{is_number}"}}}}}}"#
            )
        };
        let a = key("a", &manifest("a", "1.0.0", ""), None);
        // Name, version, description, license, whitespace: one install.
        let pretty = "{\n  \"name\": \"b\",\n  \"version\": \"2.0.0\",\n  \"description\": \"B\",\n  \"license\": \"MIT\",\n  \"dependencies\": {\n    \"is-number\": \"7.0.0\"\n  }\n}\n";
        assert_eq!(key("b", pretty, None), a);
        // What npm installs from: another install.
        assert_ne!(key("c", &manifest("c", "1.0.0", "").replace("7.0.0", "7.0.1"), None), a);
        assert_ne!(key("d", &manifest("d", "1.0.0", r#""devDependencies": {"is-odd": "3.0.1"}, "#), None), a);
        assert_ne!(key("e", &manifest("e", "1.0.0", r#""private": true, "#), None), a, "only the listed fields");
        // A root install script may read any field: the manifest as read.
        let scripted = |name| manifest(name, "1.0.0", r#""scripts": {"postinstall": "node setup.js"}, "#);
        assert_ne!(key("f", &scripted("f"), None), key("g", &scripted("g"), None));
        let tested = |name| manifest(name, "1.0.0", r#""scripts": {"test": "node test.js"}, "#);
        assert_eq!(key("h", &tested("h"), None), key("i", &tested("i"), None), "npm install runs no test script");
        // Lock files: the root's name and version are left out, not what it pins.
        let locked = key("j", &manifest("j", "1.0.0", ""), Some(&lock("j", "1.0.0", "7.0.0")));
        assert_ne!(locked, a);
        assert_eq!(key("k", &manifest("k", "3.0.0", ""), Some(&lock("k", "3.0.0", "7.0.0"))), locked);
        assert_ne!(key("l", &manifest("l", "1.0.0", ""), Some(&lock("l", "1.0.0", "7.0.1"))), locked);
    }
}
