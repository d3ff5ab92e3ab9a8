//! The build graph: which functions and layers are built, which functions
//! share one build (same code, runtime, architecture and metadata, spec §1.5),
//! and the order (layers before the functions that use them).

use std::path::PathBuf;

use serde_json::Value;

use super::BuildError;
use super::workflow::{Workflow, WorkflowError};
use crate::template::resources::PackageType;
use crate::template::{CodeLocation, Function, Layer, Stack};

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
    /// The stack path of the resources (`""` for the root).
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

    /// `BuildProperties` from the metadata.
    pub(crate) fn build_properties(&self) -> &Value {
        self.metadata.get("BuildProperties").unwrap_or(&Value::Null)
    }

    /// What names the unit in messages: `A, B` for shared functions.
    pub(crate) fn label(&self) -> String {
        self.resources().join(", ")
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// The positional resource id: build it (and its layers) only.
    pub(crate) resource: Option<String>,
    /// `--exclude` ids.
    pub(crate) exclude: Vec<String>,
    /// `--manifest`: one manifest for every unit.
    pub(crate) manifest: Option<PathBuf>,
}

/// The units of a template tree, layers first. Resources that are not built
/// (inline, pre-zipped, S3, SkipBuild, layers without BuildMethod) are left out.
pub(crate) fn plan(root: &Stack, selection: &Selection) -> Result<Vec<BuildUnit>, BuildError> {
    let wanted = wanted_resources(root, selection)?;
    let mut layers = Vec::new();
    let mut functions: Vec<BuildUnit> = Vec::new();
    for (stack, resource) in root.all_resources() {
        if !wanted.iter().any(|w| w == &resource.full_path) {
            continue;
        }
        if let Some(layer) = Layer::of(stack, resource) {
            if let Some(unit) = layer_unit(stack, &layer, selection)? {
                layers.push(unit);
            }
        } else if let Some(function) = Function::of(stack, resource)
            && let Some(unit) = function_unit(stack, &function, selection)?
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

/// Full paths to build: everything minus `--exclude`, or one resource plus
/// the layers it references in its own template.
fn wanted_resources(root: &Stack, selection: &Selection) -> Result<Vec<String>, BuildError> {
    let Some(id) = &selection.resource else {
        return Ok(root
            .all_resources()
            .map(|(_, r)| r.full_path.clone())
            .filter(|p| !selection.exclude.iter().any(|x| x == p || p.rsplit('/').next() == Some(x.as_str())))
            .collect());
    };
    let Some((stack, resource)) = root.find(id) else {
        return Err(BuildError::NotFound(id.clone()));
    };
    let mut wanted = vec![resource.full_path.clone()];
    if let Some(function) = Function::of(stack, resource) {
        for layer in function.layer_refs() {
            if let Some(layer) = stack.resources.iter().find(|r| r.logical_id == layer) {
                wanted.push(layer.full_path.clone());
            }
        }
    } else if let Some(layer) = Layer::of(stack, resource)
        && layer.build_method.is_none()
    {
        return Err(BuildError::Resource {
            resource: resource.full_path.clone(),
            message: format!("Build method missing in layer {}.", resource.logical_id),
        });
    }
    Ok(wanted)
}

fn function_unit(stack: &Stack, f: &Function, selection: &Selection) -> Result<Option<BuildUnit>, BuildError> {
    let resource = f.resource;
    let fail = |message: String| BuildError::Resource { resource: resource.full_path.clone(), message };
    if f.package_type == PackageType::Image {
        return Err(fail(
            "image functions need Docker to build, which accel does not use; build them with `sam build`".into(),
        ));
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
    unsupported_metadata(resource)?;
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
        stack_path: stack.stack_path.clone(),
        logical_ids: vec![resource.logical_id.clone()],
        source_dir: path.clone(),
        manifest: manifest(&workflow, path, selection),
        workflow,
        runtime,
        architecture: f.architecture.clone(),
        handler: f.handler.clone(),
        metadata: build_metadata(&resource.metadata),
        compatible_runtimes: Vec::new(),
    }))
}

fn layer_unit(stack: &Stack, layer: &Layer, selection: &Selection) -> Result<Option<BuildUnit>, BuildError> {
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
    unsupported_metadata(resource)?;
    if workflow.layer_subfolder(method).is_none() {
        return Err(fail(format!("'{method}' runtime is not supported for layers")));
    }
    Ok(Some(BuildUnit {
        kind: UnitKind::Layer(resource.full_path.clone()),
        stack_path: stack.stack_path.clone(),
        logical_ids: vec![resource.logical_id.clone()],
        source_dir: path.clone(),
        manifest: manifest(&workflow, path, selection),
        workflow,
        runtime: method.clone(),
        architecture: layer.build_architecture.clone(),
        handler: None,
        metadata: build_metadata(&resource.metadata),
        compatible_runtimes: layer.compatible_runtimes.clone(),
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

/// Makefile layout keys accel does not honour yet: refuse rather than build
/// something else than sam would.
fn unsupported_metadata(resource: &crate::template::Resource) -> Result<(), BuildError> {
    for key in ["ContextPath", "ProjectRootDirectory", "WorkingDirectory"] {
        if resource.metadata(key).is_some() {
            return Err(BuildError::Resource {
                resource: resource.full_path.clone(),
                message: format!("Metadata.{key} is not supported by accel yet; build this resource with `sam build`"),
            });
        }
    }
    Ok(())
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
