//! `accel sync`: the safety prompt, then an infra sync, a code sync or the
//! watch loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::aws::Aws;
use crate::builder::remote::{Mode, RemoteCache};
use crate::deploy::{Deployed, StackOutput};
use crate::printer::Printer;
use crate::project::{Paths, Project};
use crate::report::Event;
use crate::settings::{DryRun, SyncMode, SyncSettings};
use crate::sync::infra::{self, InfraOutcome, InfraPlan};
use crate::sync::prompt::{self, Consent};
use crate::sync::{self, SyncEnv, apply, preview};

pub(super) async fn run(settings: &SyncSettings, printer: &Printer) -> Result<ExitCode> {
    // First: a template that does not load ends in an `error` event too.
    if settings.json {
        printer.enable_json();
    }
    printer.debug(format_args!("Using SAM Template at {}", settings.source.file.display()));
    let project = Project::load(&settings.source, Paths::Required)?;
    // The loops' artifacts (one per item, behind generated mappings) are not
    // packaged yet: a deploy would send local paths to CloudFormation.
    if !matches!(settings.mode, SyncMode::Code(_))
        && project.stack.stacks().iter().any(|s| s.foreach.as_ref().is_some_and(|f| f.has_resource_loops()))
    {
        anyhow::bail!(
            "accel sync deploys no Fn::ForEach (AWS::LanguageExtensions) templates yet: deploy with `sam sync --language-extensions`, then `accel sync --code --language-extensions` updates the functions' code"
        );
    }
    if let Some(output) = settings.dry_run {
        return dry_run(settings, &project, output, printer).await;
    }
    // sam asks on stdout; with `--output json` stdout carries only events.
    let mut prompt_output: Box<dyn std::io::Write> =
        if settings.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let consent = prompt::confirm(
        &settings.app_dir,
        &project.template_file,
        &settings.stack_name,
        &mut std::io::stdin().lock(),
        &mut prompt_output,
    )?;
    match consent {
        Consent::Proceed => {}
        Consent::ConfirmedBefore => printer.note(prompt::WARNING),
        Consent::Declined => return Ok(ExitCode::SUCCESS),
        Consent::Aborted => return Ok(ExitCode::FAILURE),
    }
    let aws = Aws::load(&settings.aws, printer).await?;
    let remote = remote_cache(settings, &aws);
    let env = sync_env(settings, &aws, remote.as_ref(), printer);
    let started = Instant::now();
    match &settings.mode {
        SyncMode::Watch(options) => crate::watch::watch(env, &settings.source, options).await?,
        SyncMode::Code(request) => {
            // sam warns and goes on with the others.
            let known =
                |id: &String| project.stack.all_resources().any(|(_, r)| r.full_path == *id || r.logical_id == *id);
            for id in request.resource_ids.iter().filter(|id| !known(id)) {
                printer.note(format_args!("Cannot create SyncFlow for {id}. Skipping."));
            }
            let deployed = sync::deployed(&aws, &settings.stack_name).await?;
            let selected = |r: &crate::template::Resource| request.selects(r);
            let synced = sync::code_sync(env, &project.stack, deployed, selected, sync::CodeSync::default())
                .await?
                .into_result()?;
            printer.note(apply::summary(&synced, started.elapsed()));
            printer.event(&done(&synced, started));
        }
        SyncMode::Infra => match infra::infra_sync(env, &project.stack, &settings.infra).await? {
            InfraOutcome::Skipped(synced) => {
                printer.note(format_args!("{} No CloudFormation deploy.", apply::summary(&synced, started.elapsed())));
                if let Some(note) = sync::drift::behind_note(&settings.layout.drift(), &settings.stack_name) {
                    printer.note(note);
                }
                printer.event(&done(&synced, started));
            }
            InfraOutcome::Deployed { how, outputs, uploaded } => {
                if !outputs.is_empty() && !printer.json() {
                    printer.out("\nCloudFormation outputs from deployed stack");
                }
                for output in outputs {
                    let StackOutput { key, description, value } = output;
                    printer.event(&Event::Output { key, description, value });
                }
                let what = match how {
                    Deployed::Created => "Stack creation succeeded.",
                    Deployed::Updated => "Stack update succeeded.",
                    Deployed::NoChanges => "No changes to deploy: the stack is up to date.",
                };
                printer.note(format_args!(
                    "\n{what} Sync infra completed in {} ms ({uploaded} object(s) uploaded).",
                    started.elapsed().as_millis()
                ));
                printer.event(&done(&[], started));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// The last event of a sync that succeeded.
fn done(synced: &[apply::Synced], started: Instant) -> Event {
    let updated = synced.iter().filter(|s| s.outcome == apply::Outcome::Updated).count();
    Event::Done {
        result: "succeeded",
        duration_ms: started.elapsed().as_millis(),
        updated,
        unchanged: synced.len() - updated,
    }
}

/// `--dry-run`: the plan, printed; every AWS call made only reads.
async fn dry_run(settings: &SyncSettings, project: &Project, output: DryRun, printer: &Printer) -> Result<ExitCode> {
    let aws = Aws::load(&settings.aws, printer).await?;
    let remote = remote_cache(settings, &aws);
    let env = sync_env(settings, &aws, remote.as_ref(), printer);
    let stack = &project.stack;
    let plan = match &settings.mode {
        SyncMode::Code(request) => {
            let deployed = sync::deployed(&aws, &settings.stack_name).await?;
            let plan = sync::code_plan(env, stack, &deployed, |r| request.selects(r), &[]).await?;
            InfraPlan::Skip { deployed, plan }
        }
        SyncMode::Infra => infra::prepare(env, stack, &settings.infra).await?.plan,
        SyncMode::Watch(_) => anyhow::bail!("--dry-run cannot be used with --watch"),
    };
    let code_only = matches!(settings.mode, SyncMode::Code(_));
    match output {
        DryRun::Text => printer.out(preview::text(&settings.stack_name, stack, &plan, code_only)),
        DryRun::Json => printer.out(preview::json(&settings.stack_name, stack, &plan, code_only)),
    }
    Ok(ExitCode::SUCCESS)
}

/// What every sync works with, from the settings.
fn sync_env<'a>(
    settings: &'a SyncSettings,
    aws: &'a Aws,
    remote: Option<&'a Arc<RemoteCache>>,
    printer: &'a Printer,
) -> SyncEnv<'a> {
    SyncEnv { aws, layout: &settings.layout, stack_name: &settings.stack_name, printer, remote }
}

/// The `--remote-cache` of the sync's builds, if one is set; a dry run
/// only reads it (it changes nothing anywhere).
fn remote_cache(settings: &SyncSettings, aws: &Aws) -> Option<Arc<RemoteCache>> {
    let (location, mode) = settings.remote_cache.clone()?;
    let mode = if settings.dry_run.is_some() { Mode::Read } else { mode };
    Some(Arc::new(RemoteCache::new(aws.s3(), location, mode)))
}
