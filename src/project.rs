//! The project a command works on: its template tree, loaded and checked.

use std::path::PathBuf;

use crate::template::parameters::Overrides;
use crate::template::{LoadOptions, Pseudo, Stack, TemplateError};

/// Where a template comes from and how to resolve it, settled before any
/// work (see `settings`).
#[derive(Debug, Clone)]
pub(crate) struct TemplateSource {
    /// Absolute path of the root template.
    pub(crate) file: PathBuf,
    /// `--parameter-overrides` of the root stack.
    pub(crate) overrides: Overrides,
    /// `--base-dir`, absolute.
    pub(crate) base_dir: Option<PathBuf>,
    /// The region `AWS::Region` resolves to.
    pub(crate) region: String,
    /// Expand `Fn::ForEach` loops (`--language-extensions` or its variable).
    pub(crate) language_extensions: bool,
}

/// What a command needs of the local paths a template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paths {
    /// They must exist (sync deploys them).
    Required,
    /// Missing ones are reported and left out (`sam build` warns and goes on).
    Optional,
}

/// A loaded and checked template tree.
#[derive(Debug)]
pub(crate) struct Project {
    /// Absolute path of the root template.
    pub(crate) template_file: PathBuf,
    /// The root stack and its nested stacks.
    pub(crate) stack: Stack,
    /// Local paths that do not exist (with [`Paths::Optional`]).
    pub(crate) missing: Vec<TemplateError>,
}

impl Project {
    /// Loads and validates the template tree `source` names.
    pub(crate) fn load(source: &TemplateSource, paths: Paths) -> Result<Self, TemplateError> {
        let options = LoadOptions {
            overrides: source.overrides.clone(),
            pseudo: Pseudo { region: source.region.clone(), ..Pseudo::default() },
            base_dir: source.base_dir.clone(),
            language_extensions: source.language_extensions,
        };
        let stack = Stack::load(&source.file, &options)?;
        stack.validate()?;
        let mut missing = stack.missing_paths();
        if paths == Paths::Required && !missing.is_empty() {
            return Err(missing.remove(0));
        }
        Ok(Project { template_file: source.file.clone(), stack, missing })
    }
}
