//! The project a command works on: its template (found as sam finds it) and
//! the options to load it with, taken from the command line.

use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, TemplateArgs};
use crate::template::parameters::{self, OverridesError};
use crate::template::{self, LoadOptions, Pseudo, Stack, TemplateError};

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// Bad `--parameter-overrides`.
    #[error(transparent)]
    Overrides(#[from] OverridesError),
    /// A bad template.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// A loaded and checked template tree.
#[derive(Debug)]
pub struct Project {
    /// Absolute path of the root template.
    pub template_file: PathBuf,
    /// The root stack and its nested stacks.
    pub stack: Stack,
    /// `--parameter-overrides` of the root stack.
    pub overrides: parameters::Overrides,
}

impl Project {
    /// Finds, loads and validates the template named by `args` (or the
    /// default one in `cwd`).
    pub fn load(cwd: &Path, args: &TemplateArgs, global: &GlobalArgs) -> Result<Self, ProjectError> {
        let template_file = template::resolve_template_path(cwd, args.template_file.as_deref());
        let overrides = parameters::parse(&args.parameter_overrides, cwd)?;
        let options = LoadOptions {
            overrides: overrides.clone(),
            pseudo: Pseudo { region: local_region(global), ..Pseudo::default() },
            base_dir: args.base_dir.as_ref().map(|b| cwd.join(b)),
        };
        let stack = Stack::load(&template_file, &options)?;
        stack.validate()?;
        Ok(Project { template_file, stack, overrides })
    }
}

/// The region used for `AWS::Region` in local resolution.
fn local_region(global: &GlobalArgs) -> String {
    global
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| Pseudo::default().region)
}
