//! Loading a template and its nested stacks into a tree of [`Stack`]s whose
//! resources carry their full path (`Child/Logical`), their properties with
//! Globals merged and intrinsics resolved, and their line in the file.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::foreach::{self, Original};
use super::globals::Globals;
use super::intrinsics::{self, Pseudo, Resolver};
use super::parameters::Overrides;
use super::{TemplateError, yaml};

/// How to load a template.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadOptions {
    /// `--parameter-overrides` for the root stack.
    pub(crate) overrides: Overrides,
    /// Pseudo-parameter values.
    pub(crate) pseudo: Pseudo,
    /// `--base-dir`: the root of relative code paths in every stack. Without
    /// it, paths are relative to the template that holds them.
    pub(crate) base_dir: Option<PathBuf>,
    /// `--language-extensions`: expand `Fn::ForEach` loops (spec §1.1).
    pub(crate) language_extensions: bool,
}

/// One resource, as a build or sync sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resource {
    /// Logical id within its stack.
    pub(crate) logical_id: String,
    /// `LogicalId` in the root stack, `Child/LogicalId` in nested ones.
    pub(crate) full_path: String,
    /// `Type`, e.g. `AWS::Serverless::Function`.
    pub(crate) resource_type: String,
    /// Properties with Globals merged and intrinsics resolved where possible.
    pub(crate) properties: Value,
    /// The `Metadata` attribute.
    pub(crate) metadata: Value,
    /// The `Condition` attribute.
    pub(crate) condition: Option<String>,
    /// Created by SAM from events (`ServerlessRestApi`, `ServerlessHttpApi`).
    pub(crate) implicit: bool,
    /// 1-based line of the resource in its template, when found.
    pub(crate) line: Option<usize>,
}

impl Resource {
    /// A property by name.
    pub(crate) fn property(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    /// A string property by name.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        self.property(name).and_then(Value::as_str)
    }

    /// A `Metadata` entry by name.
    pub(crate) fn metadata(&self, name: &str) -> Option<&Value> {
        self.metadata.get(name)
    }

    /// The id sam also knows the resource by: `SamResourceId`, or the CDK
    /// construct id of a CDK-synthesized resource (else the logical id).
    pub(crate) fn sam_id(&self) -> String {
        super::cdk::resource_id(&self.resource_type, &self.metadata, &self.logical_id)
    }
}

/// A template and the stacks nested in it.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    /// Absolute path of the template file.
    pub(crate) file: PathBuf,
    /// Folder the template's own relative paths (nested templates, CDK
    /// assets) start from: the real file's when `file` is a symlink.
    pub(crate) dir: PathBuf,
    /// `""` for the root, else the chain of nested-stack logical ids.
    pub(crate) stack_path: String,
    /// The stack's folder below the build folder: `""` for the root, else
    /// the chain of sam's stack ids (the CDK construct id of a CDK nested
    /// stack, else the logical id), as sam lays out nested builds.
    pub(crate) build_path: String,
    /// The template as written (long-form intrinsics), for writing it back;
    /// with its `Fn::ForEach` loops expanded when [`Stack::foreach`] is set.
    pub(crate) template: Value,
    /// The template with its loops, when they were expanded: the built
    /// template is written from it.
    pub(crate) foreach: Option<Original>,
    /// Resources in template order, implicit APIs last.
    pub(crate) resources: Vec<Resource>,
    /// Nested stacks with a local template.
    pub(crate) children: Vec<Stack>,
    /// Folder relative code paths are taken from.
    pub(crate) base_dir: PathBuf,
    source: String,
}

/// A template's text. A missing file is "not found" (sam's words); anything
/// else that keeps it from being read says what. A UTF-8 byte-order mark is
/// dropped, as sam (Python's reader) accepts it.
fn read_template(file: &Path) -> Result<String, TemplateError> {
    let unreadable =
        |message: String| TemplateError::Parse { file: file.to_path_buf(), line: None, column: None, message };
    // Only a regular file is read: a FIFO would block, a device never end.
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TemplateError::NotFound(file.to_path_buf())),
        Err(e) => return Err(unreadable(format!("cannot read the template: {e}"))),
        Ok(meta) if !meta.is_file() => {
            return Err(unreadable("the template is not a regular file (a folder, device, FIFO or socket)".into()));
        }
        Ok(_) => {}
    }
    // An editor or a scanner holding the file refuses reads for a moment (Windows).
    let bytes = match crate::held::retry(crate::held::is_held, || std::fs::read(file)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TemplateError::NotFound(file.to_path_buf())),
        Err(e) => return Err(unreadable(format!("cannot read the template: {e}"))),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(unreadable("Failed to parse template: it is UTF-16 text; save it as UTF-8".into()));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        unreadable(format!(
            "Failed to parse template: not UTF-8 text (byte {} is invalid); save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

impl Stack {
    /// Loads `file` and, recursively, every nested stack with a local template.
    pub(crate) fn load(file: &Path, options: &LoadOptions) -> Result<Stack, TemplateError> {
        let file = absolute(file);
        let root = StackPaths { stack_path: String::new(), build_path: String::new() };
        Self::load_nested(&file, root, &options.overrides, options, &mut Vec::new())
    }

    fn load_nested(
        file: &Path,
        StackPaths { stack_path, build_path }: StackPaths,
        overrides: &Overrides,
        options: &LoadOptions,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Stack, TemplateError> {
        let source = read_template(file)?;
        let template = yaml::parse(&source).map_err(|e| TemplateError::Parse {
            file: file.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let invalid =
            |line: Option<usize>, message: String| TemplateError::Invalid { file: file.to_path_buf(), line, message };
        if !template.is_object() {
            return Err(invalid(Some(1), "a template must be a mapping of sections".into()));
        }
        let loops = Resolver::new(&template, overrides, options.pseudo.clone());
        let (template, foreach) = foreach::expand(template, &loops, options.language_extensions)
            .map_err(|e| invalid(key_line(&source, e.key()), e.to_string()))?;
        // sam's rule: a template needs at least one resource.
        let resources_section = match template.get("Resources") {
            Some(Value::Object(map)) if !map.is_empty() => map.clone(),
            Some(Value::Object(_) | Value::Null) | None => {
                return Err(invalid(section_line(&source, "Resources"), "'Resources' section is required".into()));
            }
            Some(_) => {
                return Err(invalid(section_line(&source, "Resources"), "'Resources' must be a mapping".into()));
            }
        };
        let globals =
            Globals::parse(&template).map_err(|e| invalid(section_line(&source, "Globals"), e.to_string()))?;
        let resolver = Resolver::new(&template, overrides, options.pseudo.clone());
        let dir = template_dir(file);
        let base_dir = options.base_dir.clone().unwrap_or_else(|| dir.clone());
        let full_path = |id: &str| {
            if stack_path.is_empty() { id.to_string() } else { format!("{stack_path}/{id}") }
        };

        let mut resources = Vec::new();
        for (id, raw) in &resources_section {
            // A generated resource is found at its loop.
            let line = resource_line(&source, id)
                .or_else(|| foreach.as_ref()?.origin(id).and_then(|key| key_line(&source, key)));
            let fail = |message: String| TemplateError::Resource {
                file: file.to_path_buf(),
                line,
                resource: full_path(id),
                message,
            };
            // CloudFormation's rule; an id like `../x` would also name a
            // folder outside the build directory.
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(fail("Logical ids must be alphanumeric.".into()));
            }
            let Some(resource_type) = raw.get("Type").and_then(Value::as_str) else {
                return Err(fail("has no Type".into()));
            };
            if raw.get("Properties").is_some_and(|p| !p.is_object() && !p.is_null()) {
                return Err(fail("'Properties' must be a mapping".into()));
            }
            let merged = globals.merge(resource_type, raw).map_err(|e| fail(e.to_string()))?;
            let mut properties = resolver.resolve(&merged);
            // `BuildMethod: !Ref Method` and the like resolve as properties do.
            let mut metadata = raw.get("Metadata").map_or(Value::Null, |m| resolver.resolve(m));
            super::cdk::normalize(&mut properties, &mut metadata, id);
            resources.push(Resource {
                logical_id: id.clone(),
                full_path: full_path(id),
                resource_type: resource_type.to_string(),
                properties,
                metadata,
                condition: raw.get("Condition").and_then(Value::as_str).map(str::to_string),
                implicit: false,
                line,
            });
        }
        add_implicit_apis(&mut resources, &globals, &full_path);

        chain.push(file.to_path_buf());
        let mut children = Vec::new();
        for resource in &resources {
            let Some(property) =
                super::kind::ResourceKind::of(&resource.resource_type).and_then(|k| k.nested_template_property())
            else {
                continue;
            };
            let fail = |message: String| TemplateError::Resource {
                file: file.to_path_buf(),
                line: resource.line,
                resource: resource.full_path.clone(),
                message,
            };
            // Remote templates are not loaded (as sam skips them).
            let Some(location) = resource.string(property).filter(|l| is_local(l)) else { continue };
            let child_file = absolute(&dir.join(location.trim_start_matches("file://")));
            if chain.contains(&child_file) {
                let cycle: Vec<String> = chain.iter().chain([&child_file]).map(|p| p.display().to_string()).collect();
                return Err(fail(format!("nested stacks form a cycle: {}", cycle.join(" -> "))));
            }
            if !child_file.is_file() {
                return Err(fail(format!("{property} '{location}' does not exist ({})", child_file.display())));
            }
            let folder = stack_folder(resource);
            if let Some(other) = folder_owner(&resources, &children, &folder) {
                return Err(fail(format!(
                    "builds into the folder '{folder}', as {other} does; give one of them another SamResourceId or logical id"
                )));
            }
            let child_overrides = nested_parameters(resource);
            let paths =
                StackPaths { stack_path: resource.full_path.clone(), build_path: join_path(&build_path, &folder) };
            children.push(Self::load_nested(&child_file, paths, &child_overrides, options, chain)?);
        }
        chain.pop();

        Ok(Stack {
            file: file.to_path_buf(),
            dir,
            stack_path,
            build_path,
            template,
            foreach,
            resources,
            children,
            base_dir,
            source,
        })
    }

    /// This stack and every stack nested in it, parents first.
    pub(crate) fn stacks(&self) -> Vec<&Stack> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.stacks());
        }
        out
    }

    /// Every resource of every stack, parents first.
    pub(crate) fn all_resources(&self) -> impl Iterator<Item = (&Stack, &Resource)> {
        self.stacks().into_iter().flat_map(|s| s.resources.iter().map(move |r| (s, r)))
    }

    /// A resource by full path (`Child/Logical`), or by logical id (or the
    /// id of [`Resource::sam_id`], e.g. a CDK construct's) when that id is
    /// unique across the stacks, as sam accepts these.
    pub(crate) fn find(&self, id: &str) -> Option<(&Stack, &Resource)> {
        if let Some(found) = self.all_resources().find(|(_, r)| r.full_path == id) {
            return Some(found);
        }
        let mut by_logical = self.all_resources().filter(|(_, r)| r.logical_id == id || r.sam_id() == id);
        match (by_logical.next(), by_logical.next()) {
            (Some(found), None) => Some(found),
            _ => None,
        }
    }

    /// Checks what a build or sync relies on, in this stack and the nested
    /// ones: every reference names something that exists, and every local
    /// code or definition path exists.
    pub(crate) fn validate(&self) -> Result<(), TemplateError> {
        for stack in self.stacks() {
            stack.validate_references()?;
            stack.validate_code_locations()?;
        }
        Ok(())
    }

    fn validate_references(&self) -> Result<(), TemplateError> {
        let section = |name: &str| self.template.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
        let resources = section("Resources");
        let parameters = section("Parameters");
        let conditions = section("Conditions");
        // SAM generates resources named after their source (`FnRole`,
        // `MyApiProdStage`, `FnAliaslive` …): accept references with such a prefix.
        let serverless: Vec<&String> = resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str).is_some_and(|t| t.starts_with("AWS::Serverless::")))
            .map(|(id, _)| id)
            .collect();
        let known = |name: &str| {
            resources.contains_key(name)
                || parameters.contains_key(name)
                || intrinsics::PSEUDO_PARAMETERS.contains(&name)
                || self.resources.iter().any(|r| r.implicit && r.logical_id == name)
                || serverless.iter().any(|id| name.starts_with(id.as_str()))
        };
        // A resource, or a section (`Outputs`, `Globals`) named by its key.
        let mut scopes: Vec<(Option<&String>, &str, &Value)> =
            resources.iter().map(|(id, r)| (Some(id), "", r)).collect();
        for name in ["Outputs", "Globals"] {
            if let Some(value) = self.template.get(name) {
                scopes.push((None, name, value));
            }
        }
        for (id, section, value) in scopes {
            let mut refs = References::default();
            refs.collect(value);
            if let Some(depends) = value.get("DependsOn") {
                match depends {
                    Value::String(s) => refs.names.push(s.clone()),
                    Value::Array(items) => {
                        refs.names.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
                    }
                    _ => {}
                }
            }
            if let Some(c) = value.get("Condition").and_then(Value::as_str) {
                refs.conditions.push(c.to_string());
            }
            let missing_name = refs.names.iter().find(|n| !known(n)).map(|n| ("resource or parameter", n));
            let missing_condition =
                refs.conditions.iter().find(|c| !conditions.contains_key(*c)).map(|c| ("condition", c));
            if let Some((what, name)) = missing_name.or(missing_condition) {
                let message = format!("refers to unknown {what} '{name}'");
                return Err(match id {
                    Some(id) => TemplateError::Resource {
                        file: self.file.clone(),
                        // Loaded resources know their line (a generated one, its loop's).
                        line: line_within(
                            &self.source,
                            self.resources.iter().find(|r| r.logical_id == *id).and_then(|r| r.line),
                            name,
                        ),
                        resource: self.full_path_of(id),
                        message,
                    },
                    None => TemplateError::Invalid {
                        file: self.file.clone(),
                        line: line_within(&self.source, section_line(&self.source, section), name),
                        message: format!("{section} {message}"),
                    },
                });
            }
        }
        Ok(())
    }

    fn validate_code_locations(&self) -> Result<(), TemplateError> {
        use super::resources::{CodeLocation, PackageType};
        for resource in &self.resources {
            // Code that is neither a local path nor an S3 location: a number,
            // a list, or an intrinsic that cannot be resolved locally (a `Ref`
            // to a parameter without a value, `Fn::Select` out of range …).
            let unresolved = match (super::Function::of(self, resource), super::Layer::of(self, resource)) {
                (Some(f), _) if f.package_type == PackageType::Zip => match f.code {
                    CodeLocation::Unresolved(value) => Some(value),
                    _ => None,
                },
                (_, Some(l)) => match l.content {
                    CodeLocation::Unresolved(value) => Some(value),
                    _ => None,
                },
                _ => None,
            };
            if let Some(value) = unresolved {
                let property =
                    super::kind::path_properties(&resource.resource_type).first().copied().unwrap_or("CodeUri");
                return Err(TemplateError::Resource {
                    file: self.file.clone(),
                    line: line_within(&self.source, resource.line, property).or(resource.line),
                    resource: resource.full_path.clone(),
                    message: format!(
                        "{property} must be a local path or an S3 location, not {value}: a value of another type, or an intrinsic that cannot be resolved here (a parameter without a value?)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Local code and definition paths of this stack and the nested ones
    /// that do not exist, each as the error a command that needs it reports.
    /// `sam build` only warns about them (and builds nothing for them).
    pub(crate) fn missing_paths(&self) -> Vec<TemplateError> {
        let mut missing = Vec::new();
        for stack in self.stacks() {
            for resource in &stack.resources {
                for (property, path) in super::resources::local_paths(stack, resource) {
                    if !path.exists() {
                        let shown = resource.string(property).unwrap_or_default();
                        missing.push(TemplateError::Resource {
                            file: stack.file.clone(),
                            line: line_within(&stack.source, resource.line, property).or(resource.line),
                            resource: resource.full_path.clone(),
                            message: format!("{property} '{shown}' does not exist ({})", path.display()),
                        });
                    }
                }
            }
        }
        missing
    }

    fn full_path_of(&self, id: &str) -> String {
        if self.stack_path.is_empty() { id.to_string() } else { format!("{}/{id}", self.stack_path) }
    }
}

/// Names a value refers to: `Ref`, `Fn::GetAtt`, `Fn::Sub` variables, and
/// conditions of `Fn::If` / `Condition`.
#[derive(Default)]
struct References {
    names: Vec<String>,
    conditions: Vec<String>,
}

impl References {
    fn collect(&mut self, value: &Value) {
        match value {
            Value::Array(items) => items.iter().for_each(|v| self.collect(v)),
            Value::Object(map) => {
                if let Some((key, args)) = intrinsics::single_entry(value) {
                    match (key, args) {
                        ("Ref", Value::String(name)) => self.names.push(name.clone()),
                        ("Fn::GetAtt", Value::Array(parts)) => {
                            self.names.extend(parts.first().and_then(Value::as_str).map(str::to_string));
                        }
                        ("Fn::GetAtt", Value::String(s)) => {
                            self.names.push(s.split('.').next().unwrap_or(s).to_string())
                        }
                        ("Fn::Sub", args) => self.collect_sub(args),
                        ("Condition", Value::String(name)) => self.conditions.push(name.clone()),
                        ("Fn::If", Value::Array(parts)) => {
                            self.conditions.extend(parts.first().and_then(Value::as_str).map(str::to_string));
                        }
                        _ => {}
                    }
                }
                // `Properties.Definition…` of state machines hold ASL, whose
                // `${Var}` are DefinitionSubstitutions, not references: only
                // intrinsic arguments are walked for Fn::Sub.
                map.values().for_each(|v| self.collect(v));
            }
            _ => {}
        }
    }

    fn collect_sub(&mut self, args: &Value) {
        let (text, locals) = match args {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(items) => (
                items.first().and_then(Value::as_str).unwrap_or_default(),
                items.get(1).and_then(Value::as_object).cloned().unwrap_or_default(),
            ),
            _ => return,
        };
        self.names.extend(intrinsics::sub_references(text).into_iter().filter(|n| !locals.contains_key(n)));
    }
}

/// SAM creates `ServerlessRestApi` / `ServerlessHttpApi` for `Api` / `HttpApi`
/// events that name no API of their own.
fn add_implicit_apis(resources: &mut Vec<Resource>, globals: &Globals, full_path: &dyn Fn(&str) -> String) {
    let mut wanted = Vec::new();
    for resource in resources.iter().filter(|r| r.resource_type == "AWS::Serverless::Function") {
        let Some(events) = resource.property("Events").and_then(Value::as_object) else {
            continue;
        };
        for event in events.values() {
            let props = event.get("Properties");
            let own = |key: &str| props.and_then(|p| p.get(key)).is_some();
            match event.get("Type").and_then(Value::as_str) {
                Some("Api") if !own("RestApiId") => wanted.push(("ServerlessRestApi", "AWS::Serverless::Api", "Prod")),
                Some("HttpApi") if !own("ApiId") => {
                    wanted.push(("ServerlessHttpApi", "AWS::Serverless::HttpApi", "$default"))
                }
                _ => {}
            }
        }
    }
    for (id, resource_type, stage) in wanted {
        if resources.iter().any(|r| r.logical_id == id) {
            continue;
        }
        let mut raw = Map::new();
        raw.insert("Properties".into(), serde_json::json!({ "StageName": stage }));
        let properties = globals.merge(resource_type, &Value::Object(raw)).unwrap_or(Value::Null);
        resources.push(Resource {
            logical_id: id.to_string(),
            full_path: full_path(id),
            resource_type: resource_type.to_string(),
            properties,
            metadata: Value::Null,
            condition: None,
            implicit: true,
            line: None,
        });
    }
}

/// Parameter values a nested stack receives from its parent, where they are
/// known locally.
fn nested_parameters(resource: &Resource) -> Overrides {
    let Some(params) = resource.property("Parameters").and_then(Value::as_object) else {
        return Overrides::new();
    };
    params
        .iter()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(items) => {
                    items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()?.join(",")
                }
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

/// Where a stack sits in the tree: its resource path and its build folder.
struct StackPaths {
    stack_path: String,
    build_path: String,
}

/// `parent/child`, or `child` at the root.
fn join_path(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_string() } else { format!("{parent}/{child}") }
}

/// The build folder sam gives a nested stack: its sam id (see
/// [`Resource::sam_id`]) when that is a plain folder name, else its logical
/// id (always alphanumeric), so that no id leads outside the build folder.
fn stack_folder(resource: &Resource) -> String {
    let id = resource.sam_id();
    let plain = !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0']);
    if plain { id } else { resource.logical_id.clone() }
}

/// The resource already building into `folder` of a stack: a function or
/// layer (named by its logical id) or an earlier nested stack. sam lets the
/// two artifacts overwrite each other, a nested template URL then naming
/// a folder.
fn folder_owner(resources: &[Resource], children: &[Stack], folder: &str) -> Option<String> {
    let builds = |r: &&Resource| {
        super::kind::ResourceKind::of(&r.resource_type)
            .and_then(|k| k.sync_flow())
            .is_some_and(|flow| matches!(flow, super::kind::SyncFlow::Function | super::kind::SyncFlow::Layer))
    };
    let artifact = resources.iter().filter(builds).find(|r| r.logical_id == folder).map(|r| r.full_path.clone());
    artifact.or_else(|| {
        children.iter().find(|c| c.build_path.rsplit('/').next() == Some(folder)).map(|c| c.stack_path.clone())
    })
}

/// The folder a template's relative paths start from: its own, or, when the
/// file is a symlink, the folder of the file it points to (as sam resolves
/// them, so a template linked from elsewhere finds its code).
fn template_dir(file: &Path) -> PathBuf {
    let real = match std::fs::symlink_metadata(file) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(file).ok(),
        _ => None,
    };
    real.as_deref().unwrap_or(file).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A path on this machine, not `s3://`, `http(s)://` or a mapping.
pub(crate) fn is_local(location: &str) -> bool {
    !(location.starts_with("s3://") || location.starts_with("http://") || location.starts_with("https://"))
}

fn absolute(path: &Path) -> PathBuf {
    let joined =
        if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    // Lexical normalisation: `a/../b` must compare equal for cycle detection
    // even when a folder does not exist.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Line of a top-level section (`Resources:` or `"Resources":`).
fn section_line(source: &str, name: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches(['"', '{']).trim_start_matches('"');
            t.starts_with(name) && t[name.len()..].trim_start_matches('"').trim_start().starts_with(':')
        })
        .map(|i| i + 1)
}

/// Line of the first key `key` (a loop's, which is unique in practice).
fn key_line(source: &str, key: &str) -> Option<usize> {
    source.lines().position(|l| l.trim_start().trim_start_matches(['"', '\'']).starts_with(key)).map(|i| i + 1)
}

/// Line of a resource's key below `Resources`.
fn resource_line(source: &str, id: &str) -> Option<usize> {
    let start = section_line(source, "Resources")?;
    source.lines().enumerate().skip(start).find_map(|(i, l)| {
        let t = l.trim_start();
        let key = t.strip_prefix('"').and_then(|r| r.strip_prefix(id)).and_then(|r| r.strip_prefix('"'));
        let key = key.or_else(|| t.strip_prefix(id));
        key.filter(|r| r.trim_start().starts_with(':')).map(|_| i + 1)
    })
}

/// First line at or after `from` that mentions `needle`.
fn line_within(source: &str, from: Option<usize>, needle: &str) -> Option<usize> {
    let from = from?;
    source.lines().enumerate().skip(from - 1).find(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nested stack's build folder is its sam id only when that is a plain
    /// folder name: a `SamResourceId` like `../x` must not lead outside.
    #[test]
    fn nested_build_folders_follow_sam_ids_but_never_escape() {
        let dir = tempfile::tempdir().unwrap();
        let child = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: .\n";
        std::fs::write(dir.path().join("child.yaml"), child).unwrap();
        let nested = |id: &str, metadata: &str| {
            format!(
                "  {id}:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: child.yaml\n    Metadata: {metadata}\n"
            )
        };
        let root = [
            nested("Plain", "{}"),
            nested("Custom", "{SamResourceId: Mine}"),
            nested("Cdk1234", "{'aws:cdk:path': 'S/Cdk.NestedStack/Cdk.NestedStackResource'}")
                .replace("AWS::Serverless::Application", "AWS::CloudFormation::Stack")
                .replace("Location", "TemplateURL"),
            nested("Escape", "{SamResourceId: ../../outside}"),
            nested("Dots", "{SamResourceId: '..'}"),
        ]
        .concat();
        std::fs::write(dir.path().join("template.yaml"), format!("Resources:\n{root}")).unwrap();
        let stack = Stack::load(&dir.path().join("template.yaml"), &LoadOptions::default()).unwrap();
        let folders: Vec<(&str, &str)> =
            stack.children.iter().map(|c| (c.stack_path.as_str(), c.build_path.as_str())).collect();
        assert_eq!(
            folders,
            [("Plain", "Plain"), ("Custom", "Mine"), ("Cdk1234", "Cdk"), ("Escape", "Escape"), ("Dots", "Dots")]
        );
    }
}
