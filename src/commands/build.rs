//! `accel build`: load the template, build, say where the artifacts are.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::builder::remote::RemoteCache;
use crate::builder::{self, BuildOptions};
use crate::printer::Printer;
use crate::project::{Paths, Project};
use crate::settings::BuildSettings;

pub(super) async fn run(settings: &BuildSettings, printer: &Printer) -> Result<ExitCode> {
    printer.debug(format_args!("Using SAM Template at {}", settings.source.file.display()));
    let project = Project::load(&settings.source, Paths::Optional)?;
    // As sam: a path that is not there is reported, and nothing is built from it.
    for missing in &project.missing {
        printer.note(format_args!("Warning: {missing}; skipping it"));
    }
    let selection = &settings.selection;
    if let Some(id) = &selection.resource
        && selection.exclude.contains(id)
    {
        printer.note("Resource expected to be built, but marked as excluded.\nBuilding anyways...");
    }
    let layout = &settings.layout;
    let mut options = BuildOptions::new(layout, layout.build_dir().to_path_buf(), settings.cached, None);
    options.selection = selection.clone();
    options.build_in_source = settings.build_in_source;
    options.progress = builder::Progress::Every;
    if let Some((location, mode)) = &settings.remote_cache {
        let aws = crate::aws::Aws::load(&settings.aws, printer).await?;
        options.remote = Some(std::sync::Arc::new(RemoteCache::new(aws.s3(), location.clone(), *mode)));
    }
    let report = match builder::build(&project.stack, layout.root(), &options, printer).await {
        Ok(report) => report,
        Err(e) => {
            printer.out("\nBuild Failed");
            return Err(e.into());
        }
    };
    if report.cleaned > 0 {
        printer.note(format_args!("Removed {} cache entries unused for a day", report.cleaned));
    }
    let shown = |p: &Path| p.strip_prefix(layout.root()).unwrap_or(p).display().to_string();
    let template = layout.build_dir().join("template.yaml");
    let custom = !layout.default_build_dir();
    let template_flag = if custom { format!(" -t {}", shown(&template)) } else { String::new() };
    let deploy_flag = if custom { format!(" --template-file {}", shown(&template)) } else { String::new() };
    printer.out(format_args!(
        "\nBuild Succeeded\n\nBuilt Artifacts  : {}\nBuilt Template   : {}\n\nCommands you can use next\n=========================\n[*] Validate SAM template: sam validate\n[*] Invoke Function: sam local invoke{template_flag}\n[*] Test Function in the Cloud: accel sync --stack-name {{{{stack-name}}}} --watch\n[*] Deploy: sam deploy --guided{deploy_flag}",
        shown(layout.build_dir()),
        shown(&template)
    ));
    Ok(ExitCode::SUCCESS)
}
