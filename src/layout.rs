//! Every path accel reads or writes under a project's `.aws-sam` folder, in
//! one place: sam's own (`build`, `auto-dependency-layer`, `cache`,
//! `build.toml`, `sync.toml`) and accel's (`deps`, `accel-*.json`).

use std::path::{Path, PathBuf};

/// `--build-dir`'s default.
pub(crate) const DEFAULT_BUILD_DIR: &str = ".aws-sam/build";

/// `--cache-dir`'s default.
pub(crate) const DEFAULT_CACHE_DIR: &str = ".aws-sam/cache";

/// The `.aws-sam` folder of a project and what lives in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProjectLayout {
    /// The folder commands run in (sam's working directory).
    root: PathBuf,
    /// `--build-dir`, absolute.
    build_dir: PathBuf,
    /// `--cache-dir`, absolute.
    cache_dir: PathBuf,
}

impl ProjectLayout {
    /// The layout of the project in `root`, with `--build-dir` and
    /// `--cache-dir` (relative to `root`) when given.
    pub(crate) fn new(root: &Path, build_dir: Option<&Path>, cache_dir: Option<&Path>) -> ProjectLayout {
        ProjectLayout {
            root: root.to_path_buf(),
            build_dir: root.join(build_dir.unwrap_or(Path::new(DEFAULT_BUILD_DIR))),
            cache_dir: root.join(cache_dir.unwrap_or(Path::new(DEFAULT_CACHE_DIR))),
        }
    }

    /// The project folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where `accel build` writes artifacts and the built template.
    pub(crate) fn build_dir(&self) -> &Path {
        &self.build_dir
    }

    /// Whether `--build-dir` is sam's default.
    pub(crate) fn default_build_dir(&self) -> bool {
        self.build_dir == self.root.join(DEFAULT_BUILD_DIR)
    }

    /// Where `accel sync` builds with the auto dependency layer (sam's name).
    pub(crate) fn adl_build_dir(&self) -> PathBuf {
        self.root.join(".aws-sam/auto-dependency-layer")
    }

    /// The built-code cache (`--cache-dir`).
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// accel's installed-dependency cache.
    pub(crate) fn deps_dir(&self) -> PathBuf {
        self.root.join(".aws-sam/deps")
    }

    /// sam's `sync.toml`.
    pub(crate) fn sync_state(&self) -> PathBuf {
        self.root.join(".aws-sam/sync.toml")
    }

    /// Folder fingerprint → zip hash, so unchanged folders are not re-zipped.
    pub(crate) fn zip_memo(&self) -> PathBuf {
        self.root.join(".aws-sam/accel-zips.json")
    }

    /// What was hotswapped and not deployed through CloudFormation since.
    pub(crate) fn drift(&self) -> PathBuf {
        self.root.join(".aws-sam/accel-hotswap.json")
    }

    /// What each resource's last build read outside its folder (watch
    /// follows these files too).
    pub(crate) fn build_inputs(&self) -> PathBuf {
        self.root.join(".aws-sam/accel-inputs.json")
    }

    /// sam's `build.toml`, beside the build folder `build_dir`.
    pub(crate) fn build_toml(build_dir: &Path) -> PathBuf {
        Self::beside(build_dir, "build.toml")
    }

    /// accel's record of the artifacts in `build_dir` (one per build folder).
    pub(crate) fn build_state(build_dir: &Path) -> PathBuf {
        let name = build_dir.file_name().map_or("build".into(), |n| n.to_string_lossy().into_owned());
        Self::beside(build_dir, &format!("accel-{name}.json"))
    }

    /// Whether `path` lies inside `folder`, judged on the names alone (no
    /// `..`, no root, no prefix below `folder`): accel replaces and deletes
    /// only such paths.
    pub(crate) fn within(folder: &Path, path: &Path) -> bool {
        path.strip_prefix(folder).is_ok_and(|rest| {
            rest.components().next().is_some()
                && rest.components().all(|c| matches!(c, std::path::Component::Normal(_)))
        })
    }

    fn beside(build_dir: &Path, name: &str) -> PathBuf {
        build_dir.parent().unwrap_or(build_dir).join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sams_paths() {
        let layout = ProjectLayout::new(Path::new("/p"), None, None);
        assert_eq!(layout.build_dir(), Path::new("/p/.aws-sam/build"));
        assert!(layout.default_build_dir());
        assert_eq!(ProjectLayout::build_toml(layout.build_dir()), Path::new("/p/.aws-sam/build.toml"));
        assert_eq!(
            ProjectLayout::build_state(&layout.adl_build_dir()),
            Path::new("/p/.aws-sam/accel-auto-dependency-layer.json")
        );
        let custom = ProjectLayout::new(Path::new("/p"), Some(Path::new("out/b")), Some(Path::new("/tmp/c")));
        assert_eq!(custom.build_dir(), Path::new("/p/out/b"));
        assert_eq!(custom.cache_dir(), Path::new("/tmp/c"));
        assert!(!custom.default_build_dir());
        assert!(ProjectLayout::within(Path::new("/p/b"), Path::new("/p/b/Fn")));
        assert!(ProjectLayout::within(Path::new("/p/b"), Path::new("/p/b/Child/Fn")));
        assert!(!ProjectLayout::within(Path::new("/p/b"), Path::new("/p/b/../../victim")));
        assert!(!ProjectLayout::within(Path::new("/p/b"), Path::new("/p/b")));
        assert!(!ProjectLayout::within(Path::new("/p/b"), Path::new("/victim")));
    }
}
