//! What a burst of file events means, as plain data: which resources'
//! files changed (and whether a dependency manifest is among them), and
//! whether a template edit touches code locations only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::case::PathCase;
use crate::sync::compare::{self, Changes, Structural};
use crate::template::Stack;
use crate::template::resources::local_paths;

/// Files whose change means new dependencies.
const MANIFESTS: &[&str] = &["requirements.txt", "package.json", "package-lock.json", "go.mod", "go.sum", "Makefile"];

/// Why a changed path matters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// A template of the stack tree.
    Template,
    /// A file of a resource (`manifest` when it is a dependency manifest).
    Resource {
        /// The resource's full path.
        path: String,
        /// Whether the file is a dependency manifest.
        manifest: bool,
    },
}

/// Paths no sync cares about: build output, installed dependencies, VCS
/// data and editor scratch files.
pub(crate) fn ignored(path: &Path) -> bool {
    let in_ignored_folder =
        path.components().any(|c| matches!(c.as_os_str().to_str(), Some(".aws-sam" | "node_modules" | ".git")));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    in_ignored_folder
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}

/// What each changed path means for `stack` (`None`: no valid template yet,
/// when only a template edit can help). `excludes` are `--watch-exclude`
/// pairs: a resource id and a path fragment. `inputs` are the files each
/// resource's last build read outside its folder (shared code, `-r`
/// includes, local packages): a change there is a change of that resource.
/// Paths match as the project's file system compares names (`case`).
pub(crate) fn classify(
    stack: Option<&Stack>,
    paths: &[PathBuf],
    excludes: &[(String, String)],
    inputs: &BTreeMap<String, Vec<PathBuf>>,
    case: PathCase,
) -> Vec<(PathBuf, Change)> {
    let Some(root) = stack else {
        return paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
            .filter(|p| !ignored(p))
            .map(|p| (p.clone(), Change::Template))
            .collect();
    };
    let stacks = root.stacks();
    let mut out: Vec<(PathBuf, Change)> = Vec::new();
    for path in paths.iter().filter(|p| !ignored(p)) {
        let mut found = Vec::new();
        if stacks.iter().any(|s| case.same(&s.file, path)) {
            found.push(Change::Template);
        }
        for stack in &stacks {
            for resource in &stack.resources {
                let excluded = excludes.iter().any(|(id, fragment)| {
                    (*id == resource.logical_id || *id == resource.full_path)
                        && case.contains(&path.to_string_lossy(), fragment)
                });
                if excluded {
                    continue;
                }
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let in_folder = local_paths(stack, resource).iter().any(|(_, folder)| case.starts_with(path, folder));
                let read =
                    inputs.get(&resource.full_path).is_some_and(|read| read.iter().any(|i| case.starts_with(path, i)));
                if in_folder || read {
                    // A file a manifest pulls in (`-r base.txt`) is a dependency change too.
                    let manifest =
                        MANIFESTS.iter().any(|m| case.same_name(m, name)) || (read && case.ends_with(name, ".txt"));
                    found.push(Change::Resource { path: resource.full_path.clone(), manifest });
                }
            }
        }
        for change in found {
            if !out.iter().any(|(p, c)| p == path && *c == change) {
                out.push((path.clone(), change));
            }
        }
    }
    out
}

/// What a reloaded template asks for, compared with the templates last synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateTrigger {
    /// Nothing that any sync sends changed.
    Unchanged,
    /// Only what the service APIs change: code syncs of `code`, and (with
    /// hotswap) configuration updates of `config` (full path → properties).
    Service {
        /// Resources whose code location changed.
        code: BTreeSet<String>,
        /// Resources whose hotswappable configuration changed.
        config: BTreeMap<String, Vec<String>>,
    },
    /// Anything else: an infra sync, for these reasons.
    Infra(Vec<Structural>),
}

/// Compares the reloaded `stack` tree with `synced` (template file →
/// template). Without `hotswap`, a configuration change is structural.
pub(crate) fn template_trigger(synced: &HashMap<PathBuf, Value>, stack: &Stack, hotswap: bool) -> TemplateTrigger {
    let stacks = stack.stacks();
    let same_files = stacks.len() == synced.len() && stacks.iter().all(|s| synced.contains_key(&s.file));
    if !same_files {
        return TemplateTrigger::Infra(vec![Structural {
            what: "stack tree".into(),
            why: "templates added or removed".into(),
        }]);
    }
    let mut changes = Changes::default();
    for s in &stacks {
        let prefix = if s.stack_path.is_empty() { String::new() } else { format!("{}/", s.stack_path) };
        changes.extend(compare::diff(&prefix, &synced[&s.file], &s.template));
    }
    let Changes { code, config, mut structural } = changes;
    if !hotswap {
        structural.extend(config.iter().map(|(what, properties)| Structural {
            what: what.clone(),
            why: format!("{} changed", properties.join(", ")),
        }));
    }
    if !structural.is_empty() {
        TemplateTrigger::Infra(structural)
    } else if code.is_empty() && config.is_empty() {
        TemplateTrigger::Unchanged
    } else {
        TemplateTrigger::Service { code, config }
    }
}

/// Each stack file's template, as the next comparison's reference.
pub(crate) fn snapshot(stack: &Stack) -> HashMap<PathBuf, Value> {
    stack.stacks().iter().map(|s| (s.file.clone(), s.template.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::LoadOptions;

    #[test]
    fn scratch_and_build_files_are_ignored() {
        for path in [
            "/p/.aws-sam/build/x.py",
            "/p/fn/node_modules/a/index.js",
            "/p/fn/.app.py.swp",
            "/p/fn/app.py~",
            "/p/fn/4913",
            "/p/.git/index",
        ] {
            assert!(ignored(Path::new(path)), "{path}");
        }
        for path in ["/p/fn/app.py", "/p/template.yaml", "/p/fn/requirements.txt"] {
            assert!(!ignored(Path::new(path)), "{path}");
        }
    }

    fn project(dir: &Path, memory: u32, code: &str) -> Stack {
        let template = format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  A:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: {code}, Handler: app.h, Runtime: python3.12, MemorySize: {memory}}}\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: b, Handler: app.h, Runtime: python3.12}}\n"
        );
        std::fs::write(dir.join("template.yaml"), template).unwrap();
        Stack::load(&dir.join("template.yaml"), &LoadOptions::default()).unwrap()
    }

    #[test]
    fn files_map_to_their_resources() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stack = project(d, 128, "a");
        let paths =
            [d.join("a/app.py"), d.join("b/requirements.txt"), d.join("template.yaml"), d.join("a/.app.py.swp")];
        let changes = classify(Some(&stack), &paths, &[], &BTreeMap::new(), PathCase::Sensitive);
        assert_eq!(
            changes,
            [
                (d.join("a/app.py"), Change::Resource { path: "A".into(), manifest: false }),
                (d.join("b/requirements.txt"), Change::Resource { path: "B".into(), manifest: true }),
                (d.join("template.yaml"), Change::Template),
            ]
        );
        let excluded = classify(
            Some(&stack),
            &paths[..1],
            &[("A".into(), "app.py".into())],
            &BTreeMap::new(),
            PathCase::Sensitive,
        );
        assert!(excluded.is_empty());
        // Without a valid template only a template file can matter.
        let none = classify(None, &paths, &[], &BTreeMap::new(), PathCase::Sensitive);
        assert_eq!(none, [(d.join("template.yaml"), Change::Template)]);
        // A shared file read by B's build (an import, a `-r` include) is B's change.
        let read = BTreeMap::from([("B".to_string(), vec![d.join("shared/util.js"), d.join("base.txt")])]);
        let shared = [d.join("shared/util.js"), d.join("base.txt"), d.join("other.js")];
        assert_eq!(
            classify(Some(&stack), &shared, &[], &read, PathCase::Sensitive),
            [
                (d.join("shared/util.js"), Change::Resource { path: "B".into(), manifest: false }),
                (d.join("base.txt"), Change::Resource { path: "B".into(), manifest: true }),
            ]
        );
    }

    #[test]
    fn case_differences_match_only_where_the_file_system_ignores_case() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stack = project(d, 128, "Src");
        // Windows and macOS report the name as it is on disk, which may
        // differ in case from the template's.
        let paths = [d.join("src/App.py"), d.join("B/Requirements.TXT"), d.join("Template.yaml")];
        let insensitive = classify(Some(&stack), &paths, &[], &BTreeMap::new(), PathCase::Insensitive);
        assert_eq!(
            insensitive,
            [
                (d.join("src/App.py"), Change::Resource { path: "A".into(), manifest: false }),
                (d.join("B/Requirements.TXT"), Change::Resource { path: "B".into(), manifest: true }),
                (d.join("Template.yaml"), Change::Template),
            ]
        );
        assert!(classify(Some(&stack), &paths, &[], &BTreeMap::new(), PathCase::Sensitive).is_empty());
        let excludes = [("A".to_string(), "APP.PY".to_string())];
        assert!(classify(Some(&stack), &paths[..1], &excludes, &BTreeMap::new(), PathCase::Insensitive).is_empty());
        let read = BTreeMap::from([("B".to_string(), vec![d.join("Shared/Base.txt")])]);
        assert_eq!(
            classify(Some(&stack), &[d.join("shared/base.TXT")], &[], &read, PathCase::Insensitive),
            [(d.join("shared/base.TXT"), Change::Resource { path: "B".into(), manifest: true })]
        );
    }

    #[test]
    fn template_edits_are_code_config_infra_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let synced = snapshot(&project(dir.path(), 128, "a"));
        assert_eq!(template_trigger(&synced, &project(dir.path(), 128, "a"), true), TemplateTrigger::Unchanged);
        assert_eq!(
            template_trigger(&synced, &project(dir.path(), 128, "a2"), true),
            TemplateTrigger::Service { code: BTreeSet::from(["A".to_string()]), config: BTreeMap::new() }
        );
        assert_eq!(
            template_trigger(&synced, &project(dir.path(), 256, "a"), true),
            TemplateTrigger::Service {
                code: BTreeSet::new(),
                config: BTreeMap::from([("A".to_string(), vec!["MemorySize".to_string()])])
            }
        );
        let TemplateTrigger::Infra(reasons) = template_trigger(&synced, &project(dir.path(), 256, "a"), false) else {
            panic!("--no-hotswap deploys configuration")
        };
        assert_eq!(reasons[0].to_string(), "A: MemorySize changed");
    }
}
