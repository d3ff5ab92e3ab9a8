//! A bounded fuzz of the template loader and the build planner. Seeds are the
//! templates of the corpus (every template under tests/fixtures, and
//! templates/blog); each case mutates one at random — a node at any depth
//! replaced by a value of another type, an odd path or an intrinsic that
//! cannot resolve; a key deleted or added; a logical id renamed to something
//! odd — writes it beside the seed's files (in a copy), then loads,
//! validates, plans and writes the build's templates as `accel build` does,
//! without building. Property: none of it panics (a bad template is an
//! error), and a written template reads back.
//!
//! CI runs 256 cases. `ACCEL_FUZZ_CASES=20000 cargo test --lib fuzz_long --
//! --ignored --nocapture` runs a long fuzz that counts every panic instead
//! of stopping at the first.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{Map, Value, json};

use super::resources::{HttpApi, RestApi, StateMachine, local_paths};
use super::{Function, Layer, LoadOptions, Stack, yaml};
use crate::builder::graph::{self, Selection};
use crate::builder::{BuildOptions, adl};
use crate::layout::ProjectLayout;
use crate::printer::Printer;

// ------------------------------------------------------------------- corpus

/// A copy of the fixtures (mutated templates are written beside the seeds,
/// so relative paths resolve) and the seeds parsed.
struct Corpus {
    dir: tempfile::TempDir,
    seeds: Vec<Seed>,
}

struct Seed {
    /// Path in the repository, for messages.
    name: String,
    /// The seed's folder in the copy.
    dir: PathBuf,
    value: Value,
}

const TEMPLATE_NAMES: [&str; 3] = ["template.yaml", "template.yml", "template.json"];

impl Corpus {
    fn new() -> Corpus {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temp dir");
        for folder in ["tests/fixtures", "templates/blog"] {
            copy_dir(&repo.join(folder), &dir.path().join(folder));
        }
        let mut files = Vec::new();
        find_templates(dir.path(), &mut files);
        files.sort();
        let seeds: Vec<Seed> = files
            .into_iter()
            .map(|file| {
                let name = file.strip_prefix(dir.path()).unwrap().display().to_string();
                let text = std::fs::read_to_string(&file).unwrap();
                let value = yaml::parse(&text).unwrap_or_else(|e| panic!("seed {name}: {e:?}"));
                Seed { name, dir: file.parent().unwrap().to_path_buf(), value }
            })
            .collect();
        assert!(seeds.len() >= 14, "the corpus has {} templates", seeds.len());
        Corpus { dir, seeds }
    }

    fn seed(&self, index: &Index) -> &Seed {
        &self.seeds[index.index(self.seeds.len())]
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            // Fixtures with symlinks (shape-nested-symlink) keep them.
            crate::builder::fsops::symlink(&std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn find_templates(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            find_templates(&path, out);
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| TEMPLATE_NAMES.contains(&n)) {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------- mutations

/// One step from a node to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// One change to a template; `Index`es pick among the nodes that fit, and
/// `Where` says which nodes fit.
#[derive(Debug, Clone)]
enum Mutation {
    /// A node becomes `Value`.
    Replace(Where, Index, Value),
    /// A map entry or list item goes.
    Delete(Where, Index),
    /// A map gains (or changes) a key.
    Insert(Where, Index, String, Value),
    /// A logical id (a key of `Resources`; any key without one) is renamed.
    Rename(Index, String),
}

/// Where a mutation applies.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// Anywhere, the root included.
    Anywhere,
    /// Below a resource's `Type` (`Resources/Id/Properties/…`, `…/Metadata`
    /// …; for an insertion, the resource itself too): most of the template
    /// stays valid, so the case goes deeper.
    InResource,
}

impl Where {
    fn fits(self, path: &[Step], inserting: bool) -> bool {
        let in_resources = matches!(path.first(), Some(Step::Key(k)) if k == "Resources");
        match self {
            Where::Anywhere => true,
            Where::InResource if inserting => in_resources && path.len() >= 2,
            Where::InResource => in_resources && path.len() >= 3 && !matches!(&path[2], Step::Key(k) if k == "Type"),
        }
    }
}

/// The path of every node, parents first.
fn nodes(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(path.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(Step::Key(key.clone()));
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push(Step::At(i));
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn node<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.as_object()?.get(key),
        Step::At(i) => node.as_array()?.get(*i),
    })
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.as_object_mut()?.get_mut(key),
        Step::At(i) => node.as_array_mut()?.get_mut(*i),
    })
}

fn pick<'a, T>(items: &'a [T], index: &Index) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[index.index(items.len())])
}

fn rename_key(map: &mut Map<String, Value>, from: &str, to: &str) {
    let entries = std::mem::take(map);
    for (key, value) in entries {
        map.insert(if key == from { to.to_string() } else { key }, value);
    }
}

fn apply(value: &mut Value, mutation: &Mutation) {
    let all = nodes(value);
    match mutation {
        Mutation::Replace(place, index, new) => {
            let fit: Vec<&Vec<Step>> = all.iter().filter(|p| place.fits(p, false)).collect();
            if let Some(node) = pick(&fit, index).and_then(|path| node_mut(value, path)) {
                *node = new.clone();
            }
        }
        Mutation::Delete(place, index) => {
            let fit: Vec<&Vec<Step>> = all.iter().filter(|p| !p.is_empty() && place.fits(p, false)).collect();
            let Some(path) = pick(&fit, index) else { return };
            let (last, parent) = path.split_last().unwrap();
            match (node_mut(value, parent), last) {
                (Some(Value::Object(map)), Step::Key(key)) => {
                    map.shift_remove(key);
                }
                (Some(Value::Array(items)), Step::At(i)) if *i < items.len() => {
                    items.remove(*i);
                }
                _ => {}
            }
        }
        Mutation::Insert(place, index, key, new) => {
            let fit: Vec<&Vec<Step>> =
                all.iter().filter(|p| place.fits(p, true) && node(value, p).is_some_and(Value::is_object)).collect();
            if let Some(Value::Object(map)) = pick(&fit, index).and_then(|path| node_mut(value, path)) {
                map.insert(key.clone(), new.clone());
            }
        }
        Mutation::Rename(index, to) => {
            let ids: Vec<Vec<Step>> = match value.get("Resources").and_then(Value::as_object) {
                Some(resources) if !resources.is_empty() => {
                    resources.keys().map(|k| vec![Step::Key("Resources".into()), Step::Key(k.clone())]).collect()
                }
                _ => all.into_iter().filter(|p| matches!(p.last(), Some(Step::Key(_)))).collect(),
            };
            let Some(path) = pick(&ids, index) else { return };
            let (Step::Key(from), parent) = path.split_last().unwrap() else { return };
            if let Some(Value::Object(map)) = node_mut(value, parent) {
                rename_key(map, from, to);
            }
        }
    }
}

// --------------------------------------------------------------- strategies

const ODD_STRINGS: &[&str] = &[
    "../x",
    "/abs",
    "s3://b/k",
    "",
    ".",
    "..",
    "../../victim",
    "/",
    "/dev/zero",
    "src",
    "src/",
    "code.zip",
    "file://child/template.yaml",
    "https://example.com/t.yaml",
    "template.yaml",
    "child/template.yaml",
    "${AWS::Region}",
    "${Nope}",
    "${!Literal}",
    "${",
    "${Fn.Arn}",
    "Fn.Arn",
    "AWS::NoValue",
    "AWS::Serverless::Function",
    "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Serverless::Application",
    "AWS::CloudFormation::Stack",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::StateMachine",
    "AWS::StepFunctions::StateMachine",
    "python3.12",
    "nodejs20.x",
    "provided.al2023",
    "go1.x",
    "makefile",
    "esbuild",
    "Image",
    "Zip",
    "arm64",
    "x86_64",
    "*",
    "2024-01-01",
    "2024-01-01 10:00:00",
    "yes",
    "null",
    "~",
    "0123",
    ".inf",
    "-",
    "|",
    "a |",
    "x: y",
    "#",
    "a\nb",
    "é",
    "\u{1}",
];

const ODD_IDS: &[&str] = &[
    "",
    "../x",
    "../../victim",
    "/abs",
    "a/b",
    "x y",
    "Ä",
    "0",
    "Fn",
    "ServerlessRestApi",
    "ServerlessHttpApi",
    "AwsSamAutoDependencyLayerNestedStack",
    "Resources",
    "HelloWorldFunction",
    "PyFunction",
    "Child",
    "Libs",
];

const KEYS: &[&str] = &[
    "CodeUri",
    "InlineCode",
    "ContentUri",
    "Content",
    "Code",
    "ZipFile",
    "S3Bucket",
    "S3Key",
    "Bucket",
    "Key",
    "ImageUri",
    "PackageType",
    "Handler",
    "Runtime",
    "Architectures",
    "Layers",
    "Events",
    "Type",
    "Properties",
    "Metadata",
    "BuildMethod",
    "BuildProperties",
    "BuildArchitecture",
    "SkipBuild",
    "ContextPath",
    "Location",
    "TemplateURL",
    "Parameters",
    "DefinitionUri",
    "DefinitionBody",
    "Definition",
    "DefinitionString",
    "DefinitionS3Location",
    "BodyS3Location",
    "Body",
    "DefinitionSubstitutions",
    "IgnoreGlobals",
    "Condition",
    "DependsOn",
    "Globals",
    "Function",
    "Mappings",
    "Conditions",
    "Outputs",
    "Default",
    "Ref",
    "Fn::If",
    "Fn::Sub",
    "Fn::GetAtt",
    "AutoPublishAlias",
    "StageName",
    "Environment",
    "Variables",
    "NODE_OPTIONS",
    "Sourcemap",
    "EntryPoints",
    "RestApiId",
    "ApiId",
    "CompatibleRuntimes",
    "LoggingConfig",
    "Value",
];

const INTRINSICS: &[&str] = &[
    "Ref",
    "Condition",
    "Fn::Sub",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::If",
    "Fn::Select",
    "Fn::Split",
    "Fn::FindInMap",
    "Fn::ImportValue",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::GetAZs",
    "Fn::Equals",
    "Fn::And",
    "Fn::Or",
    "Fn::Not",
    "Fn::Transform",
    "Fn::ToJsonString",
    "Fn::Length",
];

/// Intrinsics (and S3 / inline code shapes) that cannot resolve or are malformed.
fn odd_intrinsics() -> Vec<Value> {
    vec![
        json!({"Ref": "Nope"}),
        json!({"Ref": "AWS::NoValue"}),
        json!({"Ref": 5}),
        json!({"Ref": []}),
        json!({"Fn::GetAtt": []}),
        json!({"Fn::GetAtt": "x"}),
        json!({"Fn::GetAtt": ["Nope", "Arn"]}),
        json!({"Fn::GetAtt": [1, 2]}),
        json!({"Fn::Select": [9, []]}),
        json!({"Fn::Select": [-1, ["a"]]}),
        json!({"Fn::Select": ["1", ["a", "b"]]}),
        json!({"Fn::Select": [u64::MAX, ["a"]]}),
        json!({"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}),
        json!({"Fn::Sub": 5}),
        json!({"Fn::Sub": []}),
        json!({"Fn::Sub": ["${X}", 5]}),
        json!({"Fn::Sub": ["${X}", {"X": {"Ref": "AWS::NoValue"}}]}),
        json!({"Fn::Sub": "${"}),
        json!({"Fn::Sub": "${AWS::StackName}-x"}),
        json!({"Fn::If": "x"}),
        json!({"Fn::If": ["C"]}),
        json!({"Fn::If": ["Nope", 1, 2]}),
        json!({"Fn::If": [5, 1, 2]}),
        json!({"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, "src"]}),
        json!({"Fn::Join": 1}),
        json!({"Fn::Join": ["", 5]}),
        json!({"Fn::Join": [5, ["a"]]}),
        json!({"Fn::Join": [",", [{"Ref": "AWS::NoValue"}]]}),
        json!({"Fn::Split": [",", 5]}),
        json!({"Fn::FindInMap": []}),
        json!({"Fn::FindInMap": ["M", "k"]}),
        json!({"Fn::FindInMap": ["M", "a", "b", {"DefaultValue": "d"}]}),
        json!({"Fn::FindInMap": ["M", "a", "b", 5]}),
        json!({"Fn::Equals": 1}),
        json!({"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}),
        json!({"Fn::Not": []}),
        json!({"Fn::Not": [true]}),
        json!({"Fn::And": 1}),
        json!({"Fn::Or": [{"Condition": "Nope"}]}),
        json!({"Condition": 5}),
        json!({"Condition": "Nope"}),
        json!({"Fn::Base64": {}}),
        json!({"Fn::GetAZs": 3}),
        json!({"Fn::Length": 1}),
        json!({"Fn::ToJsonString": {"a": 1}}),
        json!({"Fn::Transform": {"Name": "AWS::Include"}}),
        json!({"Bucket": 5, "Key": []}),
        json!({"S3Bucket": "b"}),
        json!({"Bucket": "b", "Key": "k", "Version": 1}),
        json!({"ZipFile": 5}),
        json!({"ZipFile": "code"}),
        json!({"ImageUri": 5}),
    ]
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(ODD_STRINGS).prop_map(str::to_string),
        1 => "[a-zA-Z0-9:/ .#|'\"${}!\\-\t\n\u{1}\u{e9}]{0,16}",
    ]
}

fn odd_id() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(ODD_IDS).prop_map(str::to_string),
        1 => "[A-Za-z0-9]{1,12}",
        1 => "[A-Za-z0-9./_ -]{0,8}",
        1 => Just("A".repeat(300)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => odd_string()]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => (-3i64..12).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![0.5f64, -1.5, 1e300, -0.0, 2.0]).prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        3 => odd_string().prop_map(Value::String),
        3 => prop::sample::select(odd_intrinsics()),
    ]
}

/// A value of any type: scalars, lists, maps and intrinsics, nested a little.
fn odd_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner.clone()), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
                (prop::sample::select(INTRINSICS), inner)
                    .prop_map(|(name, args)| Value::Object(Map::from_iter([(name.to_string(), args)]))),
            ]
        })
        .boxed()
}

fn place() -> impl Strategy<Value = Where> {
    prop_oneof![1 => Just(Where::Anywhere), 3 => Just(Where::InResource)]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (place(), any::<Index>(), odd_value()).prop_map(|(w, i, v)| Mutation::Replace(w, i, v)),
        2 => (place(), any::<Index>()).prop_map(|(w, i)| Mutation::Delete(w, i)),
        2 => (place(), any::<Index>(), key(), odd_value()).prop_map(|(w, i, k, v)| Mutation::Insert(w, i, k, v)),
        1 => (any::<Index>(), odd_id()).prop_map(|(i, id)| Mutation::Rename(i, id)),
    ]
}

/// Where relative code paths are taken from (`--base-dir`).
#[derive(Debug, Clone, Copy)]
enum BaseDir {
    /// The template's folder (no `--base-dir`).
    Template,
    /// The corpus copy's root.
    Root,
    /// A folder that does not exist.
    Missing,
}

#[derive(Debug, Clone)]
struct Case {
    seed: Index,
    mutations: Vec<Mutation>,
    /// `--parameter-overrides`.
    overrides: Vec<(String, String)>,
    base_dir: BaseDir,
    /// Written as YAML (else JSON).
    as_yaml: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let override_names = prop::sample::select(&["Runtime", "ChildRuntime", "Env", "Stage", "P", "Nope", ""][..]);
    (
        any::<Index>(),
        prop::collection::vec(mutation(), 1..5),
        prop::collection::vec((override_names.prop_map(str::to_string), odd_string()), 0..3),
        prop_oneof![4 => Just(BaseDir::Template), 1 => Just(BaseDir::Root), 1 => Just(BaseDir::Missing)],
        any::<bool>(),
    )
        .prop_map(|(seed, mutations, overrides, base_dir, as_yaml)| Case {
            seed,
            mutations,
            overrides,
            base_dir,
            as_yaml,
        })
}

// ----------------------------------------------------------------- one case

fn mutated(corpus: &Corpus, case: &Case) -> Value {
    let mut value = corpus.seed(&case.seed).value.clone();
    for mutation in &case.mutations {
        apply(&mut value, mutation);
    }
    value
}

/// Removes a file when dropped, even when the case panicked.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static WRITTEN: AtomicUsize = AtomicUsize::new(0);

/// Writes the case's template and takes it through everything `accel build`
/// does before building. `Err` for a broken property other than a panic.
fn run_case(corpus: &Corpus, case: &Case) -> Result<Reached, String> {
    let seed = corpus.seed(&case.seed);
    let value = mutated(corpus, case);
    let text = if case.as_yaml { yaml::to_yaml(&value) } else { serde_json::to_string_pretty(&value).unwrap() };
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed);
    let file = seed.dir.join(format!("fuzz-{n}.{}", if case.as_yaml { "yaml" } else { "json" }));
    let before = listing(corpus.dir.path());
    let remove = Remove(file.clone());
    std::fs::write(&file, &text).unwrap();
    let options = LoadOptions {
        overrides: case.overrides.iter().cloned().collect(),
        base_dir: match case.base_dir {
            BaseDir::Template => None,
            BaseDir::Root => Some(corpus.dir.path().to_path_buf()),
            BaseDir::Missing => Some(corpus.dir.path().join("no/such/folder")),
        },
        ..expanding()
    };
    let reached = check_template(&file, &options, true);
    drop(remove);
    let after = listing(corpus.dir.path());
    if before != after {
        return Err(format!("the project changed: {before:?} -> {after:?}"));
    }
    reached
}

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(listing(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

/// How far a case went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    /// The template was refused.
    Refused,
    /// It loaded; validation refused it.
    Loaded,
    /// It validated; the plan refused it.
    Validated,
    /// It planned (with this many units, capped at 2 for the tally).
    Planned(usize),
    /// It planned, and its build templates were written.
    Written(usize),
}

/// Loads `file` and, as far as it goes, validates, plans and (with `write`)
/// writes the build's templates, building nothing.
/// Options with `Fn::ForEach` expansion on, so the loops of a seed (and
/// their mutations) go through the expansion and the write-back too.
fn expanding() -> LoadOptions {
    LoadOptions { language_extensions: true, ..LoadOptions::default() }
}

fn check_template(file: &Path, options: &LoadOptions, write: bool) -> Result<Reached, String> {
    let Ok(stack) = Stack::load(file, options) else { return Ok(Reached::Refused) };
    for (s, r) in stack.all_resources() {
        let _ = (Function::of(s, r), Layer::of(s, r), RestApi::of(s, r), HttpApi::of(s, r));
        let _ = (StateMachine::of(s, r), local_paths(s, r));
        let _ = Function::of(s, r).map(|f| f.layer_refs().len());
        if stack.find(&r.full_path).is_none() {
            return Err(format!("{} is not found by its full path", r.full_path));
        }
    }
    if stack.validate().is_err() {
        return Ok(Reached::Loaded);
    }

    // The plan, and the auto dependency layers a sync would add.
    let planned = graph::plan(&stack, &Selection::default());
    let units = planned.as_ref().map_or(0, |units| units.len().min(2));
    let reached = if planned.is_ok() { Reached::Planned(units) } else { Reached::Validated };
    if let Ok(units) = planned {
        let out = Path::new("/nonexistent/build");
        let layers: Vec<adl::AdlLayer> =
            units.iter().filter(|u| adl::eligible(u)).flat_map(|u| adl::layers_of(u, "stack", out)).collect();
        for s in stack.stacks() {
            let mine: Vec<&adl::AdlLayer> = layers.iter().filter(|l| l.stack_path == s.build_path).collect();
            if !mine.is_empty() {
                let _ = yaml::to_yaml(&adl::nested_template(&mine));
                let mut template = s.template.clone();
                adl::wire(&mut template, &mine, &out.join("nested.yaml"));
                let _ = yaml::to_yaml(&template);
            }
        }
        for unit in &units {
            let _ = (unit.label(), unit.build_properties(), unit.resources());
        }
    }
    let ids: Vec<String> = stack.all_resources().map(|(_, r)| r.full_path.clone()).collect();
    for id in ids.iter().take(3).map(String::as_str).chain(["Nope"]) {
        let _ = graph::plan(&stack, &Selection { resource: Some(id.to_string()), ..Selection::default() });
    }

    if !write {
        return Ok(reached);
    }
    // `accel build` with every resource excluded: no unit runs, the
    // templates are written as a build writes them.
    let scratch = tempfile::tempdir().unwrap();
    let build_dir = scratch.path().join(".aws-sam/build");
    let layout = ProjectLayout::new(scratch.path(), None, None);
    let mut options = BuildOptions::new(&layout, build_dir.clone(), false, None);
    options.selection = Selection { exclude: ids, ..Selection::default() };
    options.jobs = 1;
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let printer = Printer::new(true, true);
    let Ok(report) = runtime.block_on(crate::builder::build(&stack, scratch.path(), &options, &printer)) else {
        return Ok(reached);
    };
    if !report.units.is_empty() {
        return Err(format!("{} units built with every resource excluded", report.units.len()));
    }
    let written: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    if written != [".aws-sam"] {
        return Err(format!("the build wrote outside .aws-sam: {written:?}"));
    }
    for s in stack.stacks() {
        let written = build_dir.join(&s.build_path).join("template.yaml");
        let text = std::fs::read_to_string(&written).map_err(|e| format!("{}: {e}", written.display()))?;
        let back =
            yaml::parse(&text).map_err(|e| format!("the built {} does not read back: {e:?}", written.display()))?;
        if back.get("Resources").is_none_or(|r| !r.is_object()) {
            return Err(format!("the built {} has no Resources: {text}", written.display()));
        }
    }
    Ok(Reached::Written(units))
}

fn cases() -> u32 {
    std::env::var("ACCEL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
}

fn config(cases: u32) -> Config {
    Config { cases, max_shrink_iters: 200, failure_persistence: None, ..Config::default() }
}

/// Runs `property` on `cases` random cases; on a failure, panics with the
/// minimal case and its template.
fn fuzz(cases: u32, property: impl Fn(&Corpus, &Case) -> Result<(), String>) {
    let corpus = Corpus::new();
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&case(), |case| property(&corpus, &case).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!(
            "{reason}\nseed: {}\nminimal case: {case:#?}\ntemplate:\n{}",
            corpus.seed(&case.seed).name,
            serde_json::to_string_pretty(&mutated(&corpus, &case)).unwrap()
        ),
        Err(e) => panic!("{e}"),
    }
}

// -------------------------------------------------------------------- tests

#[test]
fn fuzz_loader_and_planner_never_panic() {
    fuzz(cases(), |corpus, case| run_case(corpus, case).map(|_| ()));
}

/// The YAML writer (the built templates, the nested ADL template) loses
/// nothing: whatever it writes reads back as the same value.
#[test]
fn fuzz_yaml_writer_round_trips() {
    fuzz(cases(), |corpus, case| {
        let value = mutated(corpus, case);
        let text = yaml::to_yaml(&value);
        match yaml::parse(&text) {
            Ok(back) if back == value => Ok(()),
            Ok(back) => Err(format!("read back differs:\n{text}\n{back:#}")),
            Err(e) => Err(format!("does not read back: {e:?}\n{text}")),
        }
    });
}

/// Every seed loads, validates and plans untouched: the fuzz starts from
/// templates that go all the way.
#[test]
fn every_seed_goes_through_unchanged() {
    let corpus = Corpus::new();
    for seed in &corpus.seeds {
        let file = seed.dir.join("fuzz-unchanged.json");
        let _remove = Remove(file.clone());
        std::fs::write(&file, serde_json::to_string(&seed.value).unwrap()).unwrap();
        let stack = Stack::load(&file, &expanding()).unwrap_or_else(|e| panic!("{}: {e}", seed.name));
        stack.validate().unwrap_or_else(|e| panic!("{}: {e}", seed.name));
        let reached = check_template(&file, &expanding(), true);
        assert!(matches!(reached, Ok(Reached::Written(_))), "{}: {reached:?}", seed.name);
    }
}

/// Deterministic: every odd value as the code location of every function
/// and layer of every seed, and as each top-level section.
#[test]
fn odd_values_in_code_locations_and_sections() {
    let corpus = Corpus::new();
    let mut odd: Vec<Value> = odd_intrinsics();
    let paths = ["../x", "/abs", "s3://b/k", "", ".", "/", "/dev/zero", "code.zip", "https://example.com/t.yaml"];
    odd.extend(paths.iter().map(|s| json!(s)));
    odd.extend([json!(null), json!(true), json!(42), json!(-1), json!(1.5), json!([]), json!(["a", "b"]), json!({})]);
    let sections = [json!(null), json!(true), json!(42), json!("x"), json!([]), json!(["a"]), json!({})];
    let code_properties = ["CodeUri", "InlineCode", "Code", "ContentUri", "Content", "Location", "DefinitionUri"];
    // The first resource of each type with each property, in any seed.
    let mut seen = std::collections::HashSet::new();
    for seed in &corpus.seeds {
        let Some(resources) = seed.value.get("Resources").and_then(Value::as_object) else { continue };
        let file = seed.dir.join("fuzz-odd.json");
        let _remove = Remove(file.clone());
        let check = |value: &Value, what: &str| {
            std::fs::write(&file, serde_json::to_string(value).unwrap()).unwrap();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| check_template(&file, &expanding(), false)));
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("{}: {what}: {e}", seed.name),
                Err(_) => panic!("{}: {what}: panicked on\n{value:#}", seed.name),
            }
        };
        for (id, resource) in resources {
            for property in code_properties {
                let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
                if resource.pointer(&format!("/Properties/{property}")).is_none() || !seen.insert((kind, property)) {
                    continue;
                }
                for value in &odd {
                    let mut template = seed.value.clone();
                    template["Resources"][id]["Properties"][property] = value.clone();
                    check(&template, &format!("{id}.{property} = {value}"));
                }
            }
        }
        for section in ["Resources", "Globals", "Conditions", "Mappings"] {
            for value in &sections {
                let mut template = seed.value.clone();
                template[section] = value.clone();
                check(&template, &format!("{section} = {value}"));
            }
        }
    }
}

/// The long run: every panic counted (by location) instead of stopping at
/// the first. `ACCEL_FUZZ_CASES` cases (default 20 000).
#[test]
#[ignore = "long: ACCEL_FUZZ_CASES=20000 cargo test --lib fuzz_long -- --ignored --nocapture"]
#[allow(clippy::print_stderr)]
fn fuzz_long() {
    let cases: u32 = std::env::var("ACCEL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let corpus = Corpus::new();
    let last_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let hook_panic = Arc::clone(&last_panic);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        *hook_panic.lock().unwrap() = Some(format!("{location}: {message}"));
    }));
    let mut runner = TestRunner::new(config(cases));
    let strategy = case();
    // Panic location → (count, first case).
    let mut panics: BTreeMap<String, (usize, Case)> = BTreeMap::new();
    let mut failures: BTreeMap<String, (usize, Case)> = BTreeMap::new();
    let mut reached: BTreeMap<Reached, usize> = BTreeMap::new();
    let started = std::time::Instant::now();
    for _ in 0..cases {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        match std::panic::catch_unwind(AssertUnwindSafe(|| run_case(&corpus, &case))) {
            Ok(Ok(how_far)) => *reached.entry(how_far).or_default() += 1,
            Ok(Err(e)) => {
                let key = e.lines().next().unwrap_or_default().chars().take(120).collect();
                failures.entry(key).or_insert((0, case)).0 += 1;
            }
            Err(_) => {
                let key = last_panic.lock().unwrap().take().unwrap_or_default();
                panics.entry(key).or_insert((0, case)).0 += 1;
            }
        }
    }
    std::panic::set_hook(previous);
    eprintln!("how far the cases went: {reached:?}");
    eprintln!(
        "{cases} cases in {:?}: {} distinct panics, {} distinct failures",
        started.elapsed(),
        panics.len(),
        failures.len()
    );
    for (kind, found) in [("panic", &panics), ("failure", &failures)] {
        for (key, (count, case)) in found {
            eprintln!(
                "{kind} x{count}: {key}\nseed: {}\nfirst case: {case:?}\ntemplate:\n{}\n",
                corpus.seed(&case.seed).name,
                serde_json::to_string(&mutated(&corpus, case)).unwrap()
            );
        }
    }
    assert!(panics.is_empty() && failures.is_empty(), "see above");
}

// -------------------------------------------------- regressions (writer bugs)

/// Found by `fuzz_yaml_writer_round_trips` (and by the loader fuzz, whose
/// built template did not read back). serde_yaml writes a string holding a
/// tab or another non-printable character double-quoted; `to_yaml`'s date
/// quoting (src/template/yaml.rs:158-167) splits the line at the last `": "`
/// — inside those quotes — and wraps the rest in single quotes:
/// `Description: "Release: '2024-01-01 v2\t"'`, which is not YAML. A built
/// template with such a Description cannot be read by accel or sam. The
/// long fuzz found the same quoting breaking a date-time key opening a list
/// item whose value is a map or list (`- 2024-01-01 10:00:00:` becomes
/// `- '2024-01-01 10:00:00:'`, its value then a syntax error).
#[test]
fn a_date_inside_a_double_quoted_string_round_trips() {
    let mut broken = Vec::new();
    for value in [
        json!({"Description": "Release: 2024-01-01 v2\t"}),
        json!({"Tags": [{"2024-01-01 10:00:00": {"a": 1}}]}),
        json!([{"2024-01-01 10:00:00": ["x"]}]),
        json!({"k": "x: 2024-01-01 \u{1}"}),
        json!(["x: 2024-01-01T\u{1}"]),
        json!({"k": "é: 2024-01-01 x\u{feff}"}),
    ] {
        let text = yaml::to_yaml(&value);
        if yaml::parse(&text).ok().as_ref() != Some(&value) {
            broken.push(format!("{value}\nwritten as:\n{text}"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Found reading the writer while fuzzing: a plain scalar that ends in ` |`
/// or ` >` (`Key: a >`) is taken for a block-scalar header
/// (src/template/yaml.rs:155-156), so the deeper-indented lines after it
/// (the rest of a list item's map) are skipped by the date quoting:
/// `Value: 2024-01-01` stays bare, and sam (PyYAML, YAML 1.1) reads a date,
/// not the string the template holds.
#[test]
fn a_date_after_a_value_ending_in_a_pipe_is_quoted() {
    let value = json!({"Tags": [{"Key": "a >", "Value": "2024-01-01"}, {"Key": "b |", "Value": "2024-01-02"}]});
    let text = yaml::to_yaml(&value);
    assert!(text.contains("Value: '2024-01-01'") && text.contains("Value: '2024-01-02'"), "{text}");
}
