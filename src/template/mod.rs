//! The SAM template model: reading YAML/JSON with short-form tags
//! ([`yaml`]), local resolution of intrinsics ([`intrinsics`]), `Globals`
//! ([`globals`]), parameter overrides ([`parameters`]), nested stacks loaded
//! recursively ([`stack`]) and typed views of the resources accel builds and
//! syncs ([`resources`]).

pub(crate) mod cdk;
mod emit;
pub(crate) mod foreach;
pub(crate) mod globals;
pub(crate) mod intrinsics;
pub(crate) mod kind;
pub(crate) mod parameters;
pub(crate) mod resources;
pub(crate) mod stack;
pub(crate) mod yaml;

use std::path::{Path, PathBuf};

pub(crate) use intrinsics::Pseudo;
pub(crate) use resources::{CodeLocation, Function, Layer};
pub(crate) use stack::{LoadOptions, Resource, Stack};

/// The template names sam looks for, in order, when none is given.
pub(crate) const DEFAULT_TEMPLATE_NAMES: [&str; 3] = ["template.yaml", "template.yml", "template.json"];

/// Everything that can be wrong with a template; each renders as one line
/// naming the file and, where known, the line and the resource.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    /// The template file does not exist.
    #[error("Template file not found at {}", .0.display())]
    NotFound(PathBuf),
    /// The file is not valid YAML/JSON.
    #[error("{}: {message}", location(file, *line, *column))]
    Parse {
        /// The template file.
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// One resource is wrong.
    #[error("{}: resource {resource}: {message}", location(file, *line, None))]
    Resource {
        /// The template file.
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// Full path of the resource (`Child/Logical`).
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// A section of the template is wrong.
    #[error("{}: {message}", location(file, *line, None))]
    Invalid {
        /// The template file.
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

fn location(file: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", file.display()),
        (Some(l), None) => format!("{}:{l}", file.display()),
        _ => file.display().to_string(),
    }
}

/// The template a command uses: `given` (relative to `cwd`), or the first of
/// [`DEFAULT_TEMPLATE_NAMES`] in `cwd`, or — like sam — `template.yml`, which
/// then fails as not found.
pub(crate) fn resolve_template_path(cwd: &Path, given: Option<&Path>) -> PathBuf {
    match given {
        Some(path) => cwd.join(path),
        None => DEFAULT_TEMPLATE_NAMES
            .iter()
            .map(|name| cwd.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| cwd.join("template.yml")),
    }
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod fuzz_tests;
