//! The build graph: which functions and layers are built, which functions
//! share one build (same code, runtime, architecture and metadata, spec §1.5),
//! and the order (layers before the functions that use them).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::BuildError;
use super::workflow::{Workflow, WorkflowError};
use crate::template::resources::PackageType;
use crate::template::{CodeLocation, Function, Layer, Resource, Stack};

/// What a unit builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// One or more functions sharing a build; full paths, first one builds.
    Functions(Vec<String>),
    /// One layer, by full path.
    Layer(String),
}

/// One build: a workflow applied to one source folder.
#[derive(Debug, Clone)]
pub(crate) struct BuildUnit {
    /// Functions or layer.
    pub(crate) kind: UnitKind,
    /// The folder of the resources' stack below the build folder (`""` for
    /// the root): its [`Stack::build_path`].
    pub(crate) stack_path: String,
    /// Logical ids of the resources, in the same order as `kind`'s paths.
    pub(crate) logical_ids: Vec<String>,
    /// Absolute source folder.
    pub(crate) source_dir: PathBuf,
    /// The workflow.
    pub(crate) workflow: Workflow,
    /// `Runtime` (functions) or the layer's build method.
    pub(crate) runtime: String,
    /// `x86_64` or `arm64`.
    pub(crate) architecture: String,
    /// `Handler` of the first function.
    pub(crate) handler: Option<String>,
    /// `Metadata` without SAM's own keys.
    pub(crate) metadata: Value,
    /// A layer's `CompatibleRuntimes` (empty for functions).
    pub(crate) compatible_runtimes: Vec<String>,
    /// The dependency manifest, when there is one.
    pub(crate) manifest: Option<PathBuf>,
    /// Makefile builds: where the Makefile is and where make runs.
    pub(crate) make: Option<MakeLayout>,
    /// `--build-in-source`, where the workflow takes it: npm installs into
    /// the source folder, esbuild and make run there (no scratch copy).
    pub(crate) build_in_source: bool,
}

/// Where a makefile build finds its pieces, from sam's `ContextPath`,
/// `ProjectRootDirectory` and `WorkingDirectory` metadata (the unit's
/// `source_dir` is the folder copied to the scratch folder: the project root
/// when one is given, else the CodeUri).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MakeLayout {
    /// `<ContextPath or source_dir>/Makefile`, or `--manifest`: make reads it
    /// in place, as sam passes it to `make --makefile`.
    pub(crate) makefile: PathBuf,
    /// Where make runs.
    pub(crate) working_dir: WorkingDir,
}

/// The folder make runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkingDir {
    /// Inside the scratch copy of the source, at this relative path (empty:
    /// its root). sam maps a `WorkingDirectory` inside the copied folder there.
    Scratch(PathBuf),
    /// A folder outside the copied source, used in place (as sam does).
    Outside(PathBuf),
}

impl BuildUnit {
    /// Full paths of the resources this unit produces.
    pub(crate) fn resources(&self) -> Vec<String> {
        match &self.kind {
            UnitKind::Functions(paths) => paths.clone(),
            UnitKind::Layer(path) => vec![path.clone()],
        }
    }

    /// Whether this unit builds a layer.
    pub(crate) fn is_layer(&self) -> bool {
        matches!(self.kind, UnitKind::Layer(_))
    }

    /// The CPU as Linux and toolchains name it (`aarch64`, `x86_64`), for
    /// the unit's Lambda architecture (`arm64`, `x86_64`).
    pub(crate) fn machine(&self) -> &'static str {
        if self.architecture == "arm64" { "aarch64" } else { "x86_64" }
    }

    /// `BuildProperties` from the metadata.
    pub(crate) fn build_properties(&self) -> &Value {
        self.metadata.get("BuildProperties").unwrap_or(&Value::Null)
    }

    /// What names the unit in messages: `A, B` for shared functions.
    pub(crate) fn label(&self) -> String {
        self.resources().join(", ")
    }
}

#[cfg(test)]
impl BuildUnit {
    /// The unit of one function `F` in `source_dir`, without a manifest.
    pub(crate) fn function(workflow: Workflow, runtime: &str, architecture: &str, source_dir: &Path) -> BuildUnit {
        BuildUnit {
            kind: UnitKind::Functions(vec!["F".into()]),
            stack_path: String::new(),
            logical_ids: vec!["F".into()],
            source_dir: source_dir.to_path_buf(),
            workflow,
            runtime: runtime.into(),
            architecture: architecture.into(),
            handler: None,
            metadata: Value::Null,
            compatible_runtimes: Vec::new(),
            manifest: None,
            make: None,
            build_in_source: false,
        }
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// The positional resource id: build it (and its layers) only.
    pub(crate) resource: Option<String>,
    /// Full paths to build (and the layers they reference), the others
    /// kept as they are: a watch save's resources.
    pub(crate) only: Option<Vec<String>>,
    /// `--exclude` ids.
    pub(crate) exclude: Vec<String>,
    /// `--manifest`: one manifest for every unit.
    pub(crate) manifest: Option<PathBuf>,
}

/// The units of a template tree, layers first. Resources that are not built
/// (inline, pre-zipped, S3, SkipBuild, layers without BuildMethod) are left out.
pub(crate) fn plan(root: &Stack, selection: &Selection) -> Result<Vec<BuildUnit>, BuildError> {
    let wanted = wanted_resources(root, selection)?;
    // sam resolves makefile metadata paths from its base folder: the root
    // template's (or `--base-dir`), in nested stacks too.
    let base = &root.base_dir;
    let mut layers = Vec::new();
    let mut functions: Vec<BuildUnit> = Vec::new();
    for (stack, resource) in root.all_resources() {
        if !wanted.iter().any(|w| w == &resource.full_path) {
            continue;
        }
        if let Some(layer) = Layer::of(stack, resource) {
            if let Some(unit) = layer_unit(stack, &layer, selection, base)? {
                layers.push(unit);
            }
        } else if let Some(function) = Function::of(stack, resource)
            && let Some(unit) = function_unit(stack, &function, selection, base)?
        {
            match functions.iter_mut().find(|u| shares_build(u, &unit)) {
                Some(shared) => {
                    if let UnitKind::Functions(paths) = &mut shared.kind {
                        paths.push(resource.full_path.clone());
                    }
                    shared.logical_ids.push(resource.logical_id.clone());
                }
                None => functions.push(unit),
            }
        }
    }
    layers.extend(functions);
    Ok(layers)
}

impl Selection {
    /// Whether everything (but `--exclude`) is built, so that build.toml and
    /// the cache's clean-up may cover the whole template.
    pub(crate) fn is_everything(&self) -> bool {
        self.resource.is_none() && self.only.is_none()
    }
}

/// Full paths to build: everything minus `--exclude`, or one resource (or
/// [`Selection::only`]'s) plus the layers they reference in their template.
fn wanted_resources(root: &Stack, selection: &Selection) -> Result<Vec<String>, BuildError> {
    let Some(id) = &selection.resource else {
        let excluded = |p: &str| selection.exclude.iter().any(|x| x == p || p.rsplit('/').next() == Some(x.as_str()));
        let mut wanted = Vec::new();
        for (stack, resource) in root.all_resources().filter(|(_, r)| !excluded(&r.full_path)) {
            match &selection.only {
                None => wanted.push(resource.full_path.clone()),
                Some(only) if only.contains(&resource.full_path) => wanted.extend(with_layers(stack, resource)),
                Some(_) => {}
            }
        }
        return Ok(wanted);
    };
    let Some((stack, resource)) = root.find(id) else {
        return Err(BuildError::NotFound(id.clone()));
    };
    if let Some(layer) = Layer::of(stack, resource)
        && layer.build_method.is_none()
    {
        return Err(BuildError::Resource {
            resource: resource.full_path.clone(),
            message: format!("Build method missing in layer {}.", resource.logical_id),
        });
    }
    Ok(with_layers(stack, resource))
}

/// `resource`'s full path, and a function's layers from its own template.
fn with_layers(stack: &Stack, resource: &Resource) -> Vec<String> {
    let mut wanted = vec![resource.full_path.clone()];
    if let Some(function) = Function::of(stack, resource) {
        for layer in function.layer_refs() {
            if let Some(layer) = stack.resources.iter().find(|r| r.logical_id == layer) {
                wanted.push(layer.full_path.clone());
            }
        }
    }
    wanted
}

fn function_unit(
    stack: &Stack,
    f: &Function,
    selection: &Selection,
    base: &Path,
) -> Result<Option<BuildUnit>, BuildError> {
    let resource = f.resource;
    let fail = |message: String| BuildError::Resource { resource: resource.full_path.clone(), message };
    if f.package_type == PackageType::Image {
        return image_unit(f, base);
    }
    // Not local, or not there (reported when the template was loaded): as
    // sam, nothing to build.
    let CodeLocation::Local { path, .. } = &f.code else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    if f.skip_build {
        return Ok(None);
    }
    if f.architectures.len() > 1 {
        return Err(fail("a function can have only one architecture".into()));
    }
    let runtime = f.runtime.clone().ok_or_else(|| fail("has no Runtime".into()))?;
    let workflow = Workflow::select(f.build_method.as_deref(), &runtime).map_err(unusable(resource))?;
    let (source_dir, make) = make_layout(workflow, resource, path, selection, base)?;
    if f.handler.is_none() {
        return Err(BuildError::NoHandler(resource.logical_id.clone()));
    }
    if !matches!(f.architecture.as_str(), "x86_64" | "arm64") {
        let error =
            WorkflowError::Architecture { workflow, architecture: f.architecture.clone(), runtime: runtime.clone() };
        return Err(unusable(resource)(error));
    }
    Ok(Some(BuildUnit {
        kind: UnitKind::Functions(vec![resource.full_path.clone()]),
        stack_path: stack.build_path.clone(),
        logical_ids: vec![resource.logical_id.clone()],
        manifest: manifest(&workflow, path, selection),
        source_dir,
        workflow,
        runtime,
        architecture: f.architecture.clone(),
        handler: f.handler.clone(),
        metadata: build_metadata(&resource.metadata),
        compatible_runtimes: Vec::new(),
        make,
        build_in_source: false,
    }))
}

fn layer_unit(
    stack: &Stack,
    layer: &Layer,
    selection: &Selection,
    base: &Path,
) -> Result<Option<BuildUnit>, BuildError> {
    let resource = layer.resource;
    let (Some(method), CodeLocation::Local { path, .. }) = (&layer.build_method, &layer.content) else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    if layer.skip_build {
        return Ok(None);
    }
    let fail = |message: String| BuildError::Resource { resource: resource.full_path.clone(), message };
    let workflow = Workflow::select(Some(method), method).map_err(unusable(resource))?;
    let (source_dir, make) = make_layout(workflow, resource, path, selection, base)?;
    if workflow.layer_subfolder(method).is_none() {
        return Err(fail(format!("'{method}' runtime is not supported for layers")));
    }
    Ok(Some(BuildUnit {
        kind: UnitKind::Layer(resource.full_path.clone()),
        stack_path: stack.build_path.clone(),
        logical_ids: vec![resource.logical_id.clone()],
        manifest: manifest(&workflow, path, selection),
        source_dir,
        workflow,
        runtime: method.clone(),
        architecture: layer.build_architecture.clone(),
        handler: None,
        metadata: build_metadata(&resource.metadata),
        compatible_runtimes: layer.compatible_runtimes.clone(),
        make,
        build_in_source: false,
    }))
}

fn manifest(workflow: &Workflow, source: &std::path::Path, selection: &Selection) -> Option<PathBuf> {
    match &selection.manifest {
        Some(m) => Some(m.clone()),
        None => workflow.manifest_names().iter().map(|name| source.join(name)).find(|p| p.is_file()),
    }
}

/// A resource whose workflow cannot be chosen.
fn unusable(resource: &crate::template::Resource) -> impl FnOnce(WorkflowError) -> BuildError + '_ {
    move |e| BuildError::Workflow { resource: resource.full_path.clone(), source: std::sync::Arc::new(e) }
}

/// An image function: sam builds it with Docker when its metadata names a
/// `Dockerfile` and a `DockerContext`, or loads an `ImageUri` that is an
/// image archive on disk; both need Docker, which accel does not use. Any
/// other image (a prebuilt `ImageUri`) is not built: sam passes it through.
fn image_unit(f: &Function, base: &Path) -> Result<Option<BuildUnit>, BuildError> {
    let metadata = |key: &str| f.resource.metadata(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    let buildable = metadata("Dockerfile").is_some() && metadata("DockerContext").is_some();
    // sam looks for the archive from its working folder; accel from the
    // base folder too, as relative paths mean the template's folder elsewhere.
    let archive = f.image_uri.as_ref().and_then(Value::as_str).filter(|uri| {
        let path = Path::new(uri);
        path.is_file() || base.join(path).is_file()
    });
    if f.skip_build || !(buildable || archive.is_some()) {
        return Ok(None);
    }
    let what = match archive {
        Some(uri) => format!("loading the image archive '{uri}'"),
        None => "building an image function (Metadata.Dockerfile)".to_string(),
    };
    Err(BuildError::Resource {
        resource: f.resource.full_path.clone(),
        message: format!(
            "{what} requires a container runtime (Docker or Finch), which accel does not use; build it with `sam build`"
        ),
    })
}

/// The folder a unit copies and, for makefile builds, where the Makefile is
/// and where make runs — as sam reads `ProjectRootDirectory`, `ContextPath`
/// and `WorkingDirectory` (other workflows ignore them, as sam does).
fn make_layout(
    workflow: Workflow,
    resource: &crate::template::Resource,
    code: &Path,
    selection: &Selection,
    base: &Path,
) -> Result<(PathBuf, Option<MakeLayout>), BuildError> {
    if workflow != Workflow::Makefile {
        return Ok((code.to_path_buf(), None));
    }
    let fail = |message: String| BuildError::Resource { resource: resource.full_path.clone(), message };
    let path_of = |key: &str| -> Result<Option<PathBuf>, BuildError> {
        match resource.metadata(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(p)) if p.is_empty() => Ok(None),
            Some(Value::String(p)) => Ok(Some(resolve(&base.join(p)))),
            Some(other) => Err(fail(format!("Metadata.{key} must be a path, not {other}"))),
        }
    };
    let source = match path_of("ProjectRootDirectory")? {
        Some(root) if !root.is_dir() => {
            return Err(fail(format!("Metadata.ProjectRootDirectory '{}' is not a folder", root.display())));
        }
        Some(root) => root,
        None => code.to_path_buf(),
    };
    let makefile = match &selection.manifest {
        Some(manifest) => manifest.clone(),
        None => path_of("ContextPath")?.unwrap_or_else(|| source.clone()).join("Makefile"),
    };
    let working_dir = match path_of("WorkingDirectory")? {
        None => WorkingDir::Scratch(PathBuf::new()),
        Some(dir) => match dir.strip_prefix(resolve(&source)) {
            Ok(inside) => WorkingDir::Scratch(inside.to_path_buf()),
            Err(_) if dir.is_dir() => WorkingDir::Outside(dir),
            Err(_) => {
                return Err(fail(format!("Metadata.WorkingDirectory '{}' is not a folder", dir.display())));
            }
        },
    };
    Ok((source, Some(MakeLayout { makefile, working_dir })))
}

/// A path with symlinks resolved where it exists (sam's `Path.resolve()`),
/// else lexically normalised.
fn resolve(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| super::inputs::normalize(path))
}

/// Metadata that changes a build: SAM's bookkeeping keys removed.
fn build_metadata(metadata: &Value) -> Value {
    let mut metadata = metadata.as_object().cloned().unwrap_or_default();
    metadata.remove("SamResourceId");
    metadata.remove("SamNormalized");
    Value::Object(metadata)
}

/// sam's equality of function build definitions (spec §1.5). Makefile builds
/// are never shared: their make target is the function's logical id.
fn shares_build(a: &BuildUnit, b: &BuildUnit) -> bool {
    if a.is_layer() || b.is_layer() || a.workflow == Workflow::Makefile {
        return false;
    }
    let handler_matters = matches!(a.workflow, Workflow::Esbuild | Workflow::Go);
    a.source_dir == b.source_dir
        && a.runtime == b.runtime
        && a.architecture == b.architecture
        && a.metadata == b.metadata
        && a.stack_path == b.stack_path
        && (!handler_matters || a.handler == b.handler)
}
