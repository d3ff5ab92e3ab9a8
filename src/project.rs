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
}

/// A loaded and checked template tree.
#[derive(Debug)]
pub(crate) struct Project {
    /// Absolute path of the root template.
    pub(crate) template_file: PathBuf,
    /// The root stack and its nested stacks.
    pub(crate) stack: Stack,
}

impl Project {
    /// Loads and validates the template tree `source` names.
    pub(crate) fn load(source: &TemplateSource) -> Result<Self, TemplateError> {
        let options = LoadOptions {
            overrides: source.overrides.clone(),
            pseudo: Pseudo { region: source.region.clone(), ..Pseudo::default() },
            base_dir: source.base_dir.clone(),
        };
        let stack = Stack::load(&source.file, &options)?;
        stack.validate()?;
        Ok(Project { template_file: source.file.clone(), stack })
    }
}
