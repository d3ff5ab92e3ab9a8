//! What a build reads beyond its CodeUri folder, so that a cached build
//! keys on it too: the files a `requirements.txt` pulls in (`-r`, `-c`,
//! local paths and `--find-links` folders), the local packages of a
//! `package.json` (`file:`/`link:` dependencies, workspaces), the path
//! sources and workspace members of a uv project, and the files an esbuild
//! bundle imported from outside the function's folder.
//!
//! Inputs are recorded relative to the folder they are read from, so a
//! moved checkout keeps its cache.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fsops;
use super::hashes::FileHashes;
use super::workflow::Workflow;

/// Folders never part of a local package's content.
const PACKAGE_EXCLUDES: &[&str] = &[".git", "node_modules", ".aws-sam", "__pycache__", "*.pyc", ".venv"];

/// The files and folders a dependency install reads besides the manifest
/// and lock files, absolute and in a stable order.
pub(crate) fn manifest_inputs(workflow: Workflow, manifest: &Path) -> io::Result<Vec<PathBuf>> {
    let mut inputs = Vec::new();
    match workflow {
        Workflow::Pip => pip_inputs(manifest, &mut inputs, 0)?,
        Workflow::Uv if manifest.extension().is_some_and(|e| e == "txt") => pip_inputs(manifest, &mut inputs, 0)?,
        Workflow::Uv if manifest.file_name().is_some_and(|n| n == "pyproject.toml") => {
            inputs.extend(uv_local_packages(manifest)?)
        }
        // Any other manifest is refused by the install.
        Workflow::Uv => {}
        Workflow::Npm | Workflow::Esbuild => inputs.extend(npm_local_packages(manifest)?),
        Workflow::Bundler => inputs.extend(gemfile_inputs(manifest)?),
        Workflow::Makefile | Workflow::Go | Workflow::CargoLambda | Workflow::Maven => {}
    }
    let mut inputs: Vec<PathBuf> = inputs.iter().map(|p| normalize(p)).collect();
    inputs.sort();
    inputs.dedup();
    Ok(inputs)
}

/// `-r`/`-c` files (followed recursively), local path requirements and
/// local `--find-links` folders of a requirements file. Paths are relative
/// to the file that names them, as pip reads them.
fn pip_inputs(file: &Path, out: &mut Vec<PathBuf>, depth: usize) -> io::Result<()> {
    if depth > 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: -r includes nest too deep", file.display()),
        ));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (option, value) = match line.split_once([' ', '=']) {
            Some((option, value)) if option.starts_with('-') => (option, value.trim()),
            _ => ("", line),
        };
        match option {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                let included = dir.join(value);
                out.push(included.clone());
                pip_inputs(&included, out, depth + 1)?;
            }
            "-f" | "--find-links" | "-e" | "--editable" => {
                if let Some(path) = local_path(dir, value) {
                    out.push(path);
                }
            }
            "" => {
                // `./pkg`, `../pkg`, `/abs/pkg`, `file:…`, or `name @ file:…`.
                let spec = value.rsplit_once(" @ ").map_or(value, |(_, url)| url.trim());
                if let Some(path) = local_path(dir, spec) {
                    out.push(path);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A local path in a requirement or a find-links value.
fn local_path(dir: &Path, spec: &str) -> Option<PathBuf> {
    let spec = spec.split(['[', ';']).next().unwrap_or_default().trim();
    let path = spec.strip_prefix("file://").or_else(|| spec.strip_prefix("file:")).unwrap_or(spec);
    let local = path.starts_with('.') || path.starts_with('/');
    (local && !spec.contains("://") || spec.starts_with("file:")).then(|| dir.join(path))
}

/// What `bundle install` reads besides the Gemfile and its lock: the local
/// gems its `path` options name and Bundler's `.bundle/config`; the whole
/// folder when the Gemfile evaluates more Ruby (`gemspec`, `eval_gemfile`)
/// or computes a `path` (`"#{__dir__}/gems"`, a variable), whose reads
/// cannot be followed. A relative path leading out of the folder is refused:
/// Bundler runs in a copy of the folder (sam's in the build folder, where it
/// fails too), so it would name another place.
fn gemfile_inputs(manifest: &Path) -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(manifest)?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let whole_folder = Ok(vec![dir.to_path_buf()]);
    if text.lines().map(ruby_code).any(|l| l.starts_with("gemspec") || l.starts_with("eval_gemfile")) {
        return whole_folder;
    }
    let Some(paths) = gemfile_paths(&text) else {
        return whole_folder;
    };
    let mut inputs = Vec::new();
    for path in paths {
        let input = normalize(&dir.join(&path));
        if Path::new(&path).is_relative() && !input.starts_with(normalize(dir)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gem path \"{path}\" leads outside the Gemfile's folder, where Bundler cannot see it \
                     (sam's fails as well); use an absolute path, or move the gem into the folder"
                ),
            ));
        }
        inputs.push(input);
    }
    inputs.push(dir.join(".bundle/config"));
    Ok(inputs)
}

/// A line of Ruby without its comment: from the first `#` outside a string
/// (`"#{…}"` interpolates, it is no comment).
fn ruby_code(line: &str) -> &str {
    let mut quote = None;
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return line[..at].trim(),
            _ => {}
        }
    }
    line.trim()
}

/// The local paths a Gemfile names: `path: "…"`, `:path => "…"` and
/// `path "…" do` blocks; `None` when a value is not a plain string literal
/// (interpolated, a variable, a method call).
fn gemfile_paths(text: &str) -> Option<Vec<String>> {
    let mut paths = Vec::new();
    for line in text.lines().map(ruby_code) {
        let mut rest = line;
        while let Some(at) = rest.find("path") {
            let after = &rest[at + "path".len()..];
            rest = after;
            let before = line[..line.len() - after.len() - "path".len()].trim_end();
            let word = (before.is_empty() || before.ends_with([',', ':', '(']))
                && after.starts_with([':', ' ', '\t', '(', '=']);
            if !word {
                continue;
            }
            let value = after
                .trim_start_matches([':', ' ', '\t'])
                .trim_start_matches("=>")
                .trim_start()
                .trim_start_matches('(');
            let literal = value
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .and_then(|quote| Some((quote, value[1..].find(quote)?)))
                .map(|(quote, end)| (quote, &value[1..=end]))
                .filter(|(quote, text)| !(text.contains('\\') || *quote == '"' && text.contains("#{")));
            paths.push(literal?.1.to_string());
        }
    }
    Some(paths)
}

/// The local packages of a `package.json`: `file:`/`link:` dependencies
/// (any section npm installs from) and workspace folders.
pub(crate) fn npm_local_packages(manifest: &Path) -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(manifest)?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", manifest.display())))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for section in ["dependencies", "optionalDependencies", "devDependencies", "peerDependencies"] {
        for spec in json.get(section).and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
            let spec = spec.as_str().unwrap_or_default();
            if let Some(path) = spec.strip_prefix("file:").or_else(|| spec.strip_prefix("link:")) {
                out.push(dir.join(path));
            }
        }
    }
    let workspaces = match json.get("workspaces") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) => map.get("packages").and_then(Value::as_array).cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    out.extend(workspace_members(dir, workspaces.iter().filter_map(Value::as_str), "package.json"));
    Ok(out)
}

/// The folders workspace `patterns` name below `dir`: `parent/*` is each
/// folder of `parent` holding a `manifest`, any other pattern one folder.
fn workspace_members<'a>(dir: &Path, patterns: impl Iterator<Item = &'a str>, manifest: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        match pattern.strip_suffix("/*") {
            Some(parent) => {
                if let Ok(entries) = std::fs::read_dir(dir.join(parent)) {
                    out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.join(manifest).is_file()));
                }
            }
            None => out.push(dir.join(pattern)),
        }
    }
    out
}

/// The local packages a uv project installs (`uv export` of its lock, or
/// `uv pip install -r pyproject.toml`): `path` entries of
/// `[tool.uv.sources]`, `[tool.uv.workspace]` members, and the local
/// sources (`path`, `directory`, `editable`, `virtual`) of `uv.lock`; the
/// project itself is left out (its folder is the code).
fn uv_local_packages(manifest: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let toml_of = |file: &Path| -> io::Result<toml::Table> {
        std::fs::read_to_string(file)?
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", file.display())))
    };
    let project = toml_of(manifest)?;
    let uv = project.get("tool").and_then(|t| t.get("uv"));
    let mut out = Vec::new();
    // A source is a table, or a list of tables chosen by markers.
    for source in uv.and_then(|u| u.get("sources")).and_then(toml::Value::as_table).into_iter().flat_map(|s| s.values())
    {
        let tables = source.as_array().map_or_else(|| vec![source], |list| list.iter().collect());
        out.extend(tables.iter().filter_map(|t| t.get("path")?.as_str()).map(|path| dir.join(path)));
    }
    let members = uv.and_then(|u| u.get("workspace")).and_then(|w| w.get("members")).and_then(toml::Value::as_array);
    out.extend(workspace_members(dir, members.into_iter().flatten().filter_map(toml::Value::as_str), "pyproject.toml"));
    let lock = dir.join("uv.lock");
    if lock.is_file() {
        let packages = toml_of(&lock)?.get("package").and_then(toml::Value::as_array).cloned().unwrap_or_default();
        for source in packages.iter().filter_map(|p| p.get("source")) {
            let local = ["path", "directory", "editable", "virtual"].iter().find_map(|k| source.get(*k)?.as_str());
            out.extend(local.map(|path| dir.join(path)));
        }
    }
    let project_dir = normalize(dir);
    out.retain(|path| normalize(path) != project_dir);
    Ok(out)
}

/// Hashes each input into `hasher`: its path relative to `base`, then its
/// content (a folder's tree hash). A missing input hashes as missing, so
/// its return is a change too.
pub(crate) fn hash_into(hasher: &mut Sha256, base: &Path, inputs: &[PathBuf], hashes: &FileHashes) {
    for input in inputs {
        let rel = pathdiff::diff_paths(input, base).unwrap_or_else(|| input.clone());
        hasher.update(crate::files::slash_path(&rel).as_bytes());
        hasher.update([0]);
        let content = if input.is_dir() {
            fsops::tree_hash(input, PACKAGE_EXCLUDES, hashes).ok()
        } else {
            hashes.sha256(input).ok()
        };
        hasher.update(content.as_deref().unwrap_or("missing").as_bytes());
        hasher.update([0]);
    }
}

/// The files an esbuild `--metafile` lists as inputs that lie outside
/// `source_dir` and outside any `node_modules` (the lock file keys those),
/// absolute. esbuild writes input paths relative to its working directory.
/// `in_source`: the bundle read the source's own `node_modules`, which npm
/// updates and users patch under the same lock file: those are kept too.
pub(crate) fn esbuild_inputs(metafile: &Path, source_dir: &Path, in_source: bool) -> io::Result<Vec<PathBuf>> {
    let meta: Value = serde_json::from_slice(&std::fs::read(metafile)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", metafile.display())))?;
    let mut inputs: Vec<PathBuf> = meta
        .get("inputs")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|path| !path.contains(':'))
        .filter_map(|path| {
            let absolute = normalize(&source_dir.join(path));
            let keep = match path.split('/').any(|part| part == "node_modules") {
                true => in_source,
                false => !absolute.starts_with(source_dir),
            };
            keep.then_some(absolute)
        })
        .collect();
    inputs.sort();
    inputs.dedup();
    Ok(inputs)
}

/// `a/b/../c` → `a/c`, without touching the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_includes_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("fn")).unwrap();
        std::fs::create_dir_all(d.join("wheels")).unwrap();
        std::fs::create_dir_all(d.join("libs/mypkg")).unwrap();
        std::fs::write(d.join("fn/requirements.txt"), "-r ../base.txt\nsix==1.16.0 # pinned\n--find-links ../wheels\n../libs/mypkg\nrequests[socks]; python_version>'3'\n").unwrap();
        std::fs::write(d.join("base.txt"), "-c constraints.txt\nattrs\n").unwrap();
        std::fs::write(d.join("constraints.txt"), "attrs<24\n").unwrap();
        let inputs = manifest_inputs(Workflow::Pip, &d.join("fn/requirements.txt")).unwrap();
        assert_eq!(inputs, [d.join("base.txt"), d.join("constraints.txt"), d.join("libs/mypkg"), d.join("wheels")]);
        std::fs::remove_file(d.join("constraints.txt")).unwrap();
        assert!(
            manifest_inputs(Workflow::Pip, &d.join("fn/requirements.txt")).is_err(),
            "a missing include is an error"
        );
    }

    #[test]
    fn uv_requirements_are_followed_as_pips() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("requirements.txt"), "-r base.txt\n").unwrap();
        std::fs::write(d.join("base.txt"), "six\n").unwrap();
        std::fs::write(d.join("pyproject.toml"), "[project]\nname = 'x'\n").unwrap();
        assert_eq!(manifest_inputs(Workflow::Uv, &d.join("requirements.txt")).unwrap(), [d.join("base.txt")]);
        // pyproject.toml is keyed with uv.lock, the workflow's lock file.
        assert!(manifest_inputs(Workflow::Uv, &d.join("pyproject.toml")).unwrap().is_empty());
    }

    #[test]
    fn gemfile_local_paths_in_every_spelling_and_the_whole_folder_for_gemspec() {
        let dir = tempfile::tempdir().unwrap();
        let gemfile = dir.path().join("Gemfile");
        // An absolute path on this system.
        let opt = if cfg!(windows) { "C:/opt/gems" } else { "/opt/gems" };
        std::fs::write(
            &gemfile,
            format!(
                r#"
source "https://rubygems.org"
gem "greeter", path: "gems/greeter"
gem 'shared', :path => 'vendor/../shared' # a comment with path: "nope"
path "{opt}" do
  gem "other"
end
gem "pathname"
gem "rack", git: "https://example.com/rack.git"
"#
            ),
        )
        .unwrap();
        let d = dir.path();
        assert_eq!(
            manifest_inputs(Workflow::Bundler, &gemfile).unwrap(),
            [PathBuf::from(opt), d.join(".bundle/config"), d.join("gems/greeter"), d.join("shared")]
        );
        std::fs::write(&gemfile, "source \"https://rubygems.org\"\n  gemspec # the gem's own\n").unwrap();
        assert_eq!(manifest_inputs(Workflow::Bundler, &gemfile).unwrap(), [d.to_path_buf()]);
        // A computed path: the whole folder, as Bundler's reads cannot be followed.
        for computed in
            [r##"gem "x", path: "#{__dir__}/gems/x""##, "gem 'x', path: File.join('gems', 'x')", "path GEMS do"]
        {
            std::fs::write(&gemfile, format!("gem 'y', path: 'gems/y' # path: x\n{computed}\n")).unwrap();
            assert_eq!(manifest_inputs(Workflow::Bundler, &gemfile).unwrap(), [d.to_path_buf()], "{computed}");
        }
        // A relative path out of the folder would name another place where Bundler runs.
        std::fs::write(&gemfile, "gem 'shared', path: '../shared'\n").unwrap();
        let refused = manifest_inputs(Workflow::Bundler, &gemfile).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn npm_local_packages_and_workspaces() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("packages/a")).unwrap();
        std::fs::write(d.join("packages/a/package.json"), "{}").unwrap();
        std::fs::write(
            d.join("package.json"),
            r#"{"dependencies": {"shared": "file:../shared", "left-pad": "1.3.0"}, "workspaces": ["packages/*"]}"#,
        )
        .unwrap();
        let inputs = npm_local_packages(&d.join("package.json")).unwrap();
        assert_eq!(inputs, [d.join("../shared"), d.join("packages/a")]);
    }

    #[test]
    fn uv_path_sources_workspace_members_and_lock_sources() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("packages/a")).unwrap();
        std::fs::write(d.join("packages/a/pyproject.toml"), "").unwrap();
        std::fs::write(
            d.join("pyproject.toml"),
            "[project]\nname = 'fn'\n[tool.uv.sources]\nlib = { path = '../lib' }\nreq = { index = 'x' }\n\
             two = [{ path = '../two.whl', marker = \"sys_platform == 'linux'\" }]\n\
             [tool.uv.workspace]\nmembers = ['packages/*']\n",
        )
        .unwrap();
        let manifest = d.join("pyproject.toml");
        let mut expected = [d.join("../lib"), d.join("../two.whl"), d.join("packages/a")].map(|p| normalize(&p));
        expected.sort();
        assert_eq!(manifest_inputs(Workflow::Uv, &manifest).unwrap(), expected);
        std::fs::write(
            d.join("uv.lock"),
            "version = 1\n[[package]]\nname = 'fn'\nsource = { virtual = '.' }\n\
             [[package]]\nname = 'w'\nsource = { path = '../wheels/w.whl' }\n\
             [[package]]\nname = 'six'\nsource = { registry = 'https://pypi.org/simple' }\n",
        )
        .unwrap();
        let inputs = manifest_inputs(Workflow::Uv, &manifest).unwrap();
        assert!(
            inputs.contains(&normalize(&d.join("../wheels/w.whl"))) && !inputs.contains(&normalize(d)),
            "{inputs:?}"
        );
    }

    #[test]
    fn inputs_hash_on_content_and_relative_place() {
        let hash = |dir: &Path| {
            std::fs::create_dir_all(dir.join("shared")).unwrap();
            std::fs::write(dir.join("shared/util.js"), "export const v = 1;").unwrap();
            let mut h = Sha256::new();
            hash_into(
                &mut h,
                &dir.join("fn"),
                &[dir.join("shared/util.js"), dir.join("gone.js")],
                &FileHashes::default(),
            );
            hex::encode(h.finalize())
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(hash(a.path()), hash(b.path()), "the same content elsewhere hashes the same");
        let before = hash(a.path());
        std::fs::write(a.path().join("shared/util.js"), "export const v = 2;").unwrap();
        let mut h = Sha256::new();
        let (fresh, gone) = (a.path().join("shared/util.js"), a.path().join("gone.js"));
        hash_into(&mut h, &a.path().join("fn"), &[fresh, gone], &FileHashes::default());
        assert_ne!(before, hex::encode(h.finalize()));
    }
}
