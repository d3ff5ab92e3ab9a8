//! Ruby with Bundler, as sam's RubyBundlerBuilder: the source copied to the
//! artifact, then `bundle install` run there twice (without the development
//! and test groups, then in deployment mode), so gems land in
//! `vendor/bundle` beside `.bundle/config` and the `Gemfile.lock`.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;
use crate::builder::inputs;

/// Copies `unit`'s source into `out` and installs its gems there; returns
/// the local gem folders its Gemfile names outside the unit's folder (the
/// install reads them, so the cache keys on them).
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    fsops::copy_tree(&unit.source_dir, out, Workflow::Bundler.excludes()).map_err(io_error(&unit.source_dir))?;
    let gemfile = unit.source_dir.join("Gemfile");
    // sam runs Bundler anyway and, on its "Gemfile not found" exit, keeps the
    // copied source and removes the `.bundle` it left: the same tree.
    let Ok(text) = std::fs::read_to_string(&gemfile) else {
        return Ok(Vec::new());
    };
    let steps: [&[&str]; 4] = [
        &["config", "set", "--local", "without", "development:test"],
        &["install"],
        &["config", "set", "--local", "deployment", "true"],
        &["install"],
    ];
    for (index, args) in steps.into_iter().enumerate() {
        let mut bundle = Command::new("bundle");
        bundle.current_dir(out).args(args);
        let action =
            if index < 2 { "RubyBundlerBuilder:RubyBundle" } else { "RubyBundlerBuilder:RubyBundleDeployment" };
        run(bundle, action).await?;
    }
    let mut outside: Vec<PathBuf> = gemfile_paths(&text)
        .into_iter()
        .map(|path| inputs::normalize(&unit.source_dir.join(path)))
        .filter(|path| !path.starts_with(&unit.source_dir))
        .collect();
    outside.sort();
    outside.dedup();
    Ok(outside)
}

/// The local paths a Gemfile names: `path: "…"`, `:path => "…"` and
/// `path "…" do` blocks (the quoted string after each).
fn gemfile_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in text.lines().map(|l| l.split('#').next().unwrap_or_default()) {
        let mut rest = line;
        while let Some(at) = rest.find("path") {
            let after = &rest[at + "path".len()..];
            let before = rest[..at].trim_end();
            let word_start = before.is_empty() || before.ends_with([',', ':', '(']);
            let value =
                after.trim_start_matches([':', ' ']).trim_start_matches("=>").trim_start().trim_start_matches('(');
            if word_start
                && let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'')
                && let Some(end) = value[1..].find(quote)
            {
                paths.push(value[1..=end].to_string());
            }
            rest = after;
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemfile_local_paths_in_every_spelling() {
        let gemfile = r#"
source "https://rubygems.org"
gem "greeter", path: "gems/greeter"
gem 'shared', :path => '../shared' # a comment with path: "nope"
path "/opt/gems" do
  gem "other"
end
gem "pathname"
gem "rack", git: "https://example.com/rack.git"
"#;
        assert_eq!(gemfile_paths(gemfile), ["gems/greeter", "../shared", "/opt/gems"]);
    }
}
