//! The `accel` binary: parse the command line, run the command, map the
//! outcome to sam's exit codes (0 success, 1 error, 2 usage error).

use std::path::Path;
use std::process::ExitCode;

use accel::build::graph::Selection;
use accel::build::{self, BuildOptions};
use accel::cli::{self, BuildArgs, CliError, Command, GlobalArgs, Invocation, SyncArgs};
use accel::project::Project;
use anyhow::{Result, bail};

fn main() -> ExitCode {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => return fail(anyhow::anyhow!("cannot read the current directory: {e}")),
    };
    let invocation = match cli::parse(std::env::args_os(), &cwd) {
        Ok(invocation) => invocation,
        Err(CliError::Clap(e)) => e.exit(),
        Err(e) => return fail(e.into()),
    };
    if let Err(e) = cli::check_usage(&invocation.cli) {
        e.exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e.into()),
    };
    match runtime.block_on(run(invocation, &cwd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    note(format_args!("Error: {error:#}"));
    ExitCode::from(1)
}

async fn run(invocation: Invocation, cwd: &Path) -> Result<()> {
    let Invocation { cli, .. } = invocation;
    if let Some(reason) = cli::unsupported_feature(&cli) {
        bail!(reason);
    }
    match &cli.command {
        Command::Build(args) => run_build(cwd, args, &cli.global).await,
        Command::Sync(args) => run_sync(cwd, args, &cli.global).await,
        Command::Logs(args) => run_logs(args, &cli.global).await,
    }
}

async fn run_build(cwd: &Path, args: &BuildArgs, global: &GlobalArgs) -> Result<()> {
    let project = Project::load(cwd, &args.template, global)?;
    if let Some(id) = &args.resource_logical_id
        && args.exclude.contains(id)
    {
        note(format_args!("Resource expected to be built, but marked as excluded.\nBuilding anyways..."));
    }
    let options = BuildOptions {
        build_dir: cwd.join(&args.build_dir),
        cache_dir: cwd.join(&args.cache_dir),
        deps_dir: cwd.join(".aws-sam/deps"),
        cached: args.cached,
        selection: Selection {
            resource: args.resource_logical_id.clone(),
            exclude: args.exclude.clone(),
            manifest: args.manifest.as_ref().map(|m| cwd.join(m)),
        },
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        dependency_layer: None,
    };
    let progress = TerminalProgress::new();
    let result = build::build(&project.stack, cwd, &options, &progress).await;
    progress.finish();
    if let Ok(report) = &result
        && report.cleaned > 0
    {
        note(format_args!("Removed {} cache entries unused for a day", report.cleaned));
    }
    if let Err(e) = result {
        say(format_args!("\nBuild Failed"));
        return Err(e.into());
    }
    let shown = |p: &Path| p.strip_prefix(cwd).unwrap_or(p).display().to_string();
    let template = options.build_dir.join("template.yaml");
    let custom = args.build_dir != Path::new(".aws-sam/build");
    let template_flag = if custom { format!(" -t {}", shown(&template)) } else { String::new() };
    let deploy_flag = if custom { format!(" --template-file {}", shown(&template)) } else { String::new() };
    say(format_args!(
        "\nBuild Succeeded\n\nBuilt Artifacts  : {}\nBuilt Template   : {}\n\nCommands you can use next\n=========================\n[*] Validate SAM template: sam validate\n[*] Invoke Function: sam local invoke{template_flag}\n[*] Test Function in the Cloud: accel sync --stack-name {{{{stack-name}}}} --watch\n[*] Deploy: sam deploy --guided{deploy_flag}",
        shown(&options.build_dir),
        shown(&template)
    ));
    Ok(())
}

/// A progress bar on a terminal; plain lines elsewhere (CI, pipes, NO_COLOR
/// logs). Either way each unit ends with one line saying what it did.
struct TerminalProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl TerminalProgress {
    fn new() -> Self {
        use std::io::IsTerminal;
        let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = interactive.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} building {pos}/{len} {wide_msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        TerminalProgress { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl build::Progress for TerminalProgress {
    fn start(&self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn built(&self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(label.to_string());
        }
    }

    fn done(&self, report: &build::UnitReport) {
        match &self.bar {
            Some(bar) => bar.println(report.to_string()),
            None => note(format_args!("{report}")),
        }
    }
}

async fn run_sync(cwd: &Path, args: &SyncArgs, global: &GlobalArgs) -> Result<()> {
    use accel::sync::{self, prompt};
    let project = Project::load(cwd, &args.template, global)?;
    let consent = prompt::confirm(
        &prompt::app_dir(),
        &project.template_file,
        &args.stack_name,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
    )?;
    match consent {
        prompt::Consent::Proceed => {}
        prompt::Consent::Declined => return Ok(()),
        prompt::Consent::Aborted => std::process::exit(1),
    }
    let aws = accel::aws::Aws::load(&accel::aws::AwsOptions {
        region: global.region.clone(),
        profile: global.profile.clone(),
    })
    .await?;
    if args.watch {
        let options = accel::watch::WatchOptions {
            code_only: args.code,
            excludes: args
                .watch_exclude
                .iter()
                .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            infra: infra_request(args, &project)?,
        };
        let load = || Project::load(cwd, &args.template, global);
        accel::watch::watch(&aws, cwd, &load, &options, &Terminal).await?;
        return Ok(());
    }
    if args.code {
        let request = sync::CodeSyncRequest {
            stack_name: args.stack_name.clone(),
            resource_ids: args.resource_id.clone(),
            resource_types: args.resource.clone(),
        };
        let started = std::time::Instant::now();
        let synced = sync::code_sync(&aws, &project.stack, cwd, &request, &Terminal).await?;
        note(format_args!("{}", sync_summary(&synced, started)));
        return Ok(());
    }
    let request = infra_request(args, &project)?;
    let started = std::time::Instant::now();
    match sync::infra::infra_sync(&aws, &project.stack, cwd, &request, &Terminal).await? {
        sync::infra::InfraOutcome::Skipped(synced) => {
            note(format_args!("{} No CloudFormation deploy.", sync_summary(&synced, started)));
        }
        sync::infra::InfraOutcome::Deployed { how, outputs, uploaded } => {
            if !outputs.is_empty() {
                say(format_args!("\nCloudFormation outputs from deployed stack"));
                for output in &outputs {
                    let description = output.description.as_deref().unwrap_or("-");
                    say(format_args!(
                        "Key         {}\nDescription {description}\nValue       {}\n",
                        output.key, output.value
                    ));
                }
            }
            let what = match how {
                accel::deploy::Deployed::Created => "Stack creation succeeded.",
                accel::deploy::Deployed::Updated => "Stack update succeeded.",
                accel::deploy::Deployed::NoChanges => "No changes to deploy: the stack is up to date.",
            };
            note(format_args!(
                "\n{what} Sync infra completed in {} ms ({uploaded} object(s) uploaded).",
                started.elapsed().as_millis()
            ));
        }
    }
    Ok(())
}

async fn run_logs(args: &cli::LogsArgs, global: &GlobalArgs) -> Result<()> {
    use accel::logs::{self, Format, Item, LogsRequest};
    use std::io::{IsTerminal, Write};
    let now = logs::time_now_ms();
    let start_ms = accel::time::parse(&args.start_time, now)
        .ok_or_else(|| anyhow::anyhow!("Unable to parse the time provided by '--start-time'"))?;
    let end_ms = match &args.end_time {
        Some(end) => Some(
            accel::time::parse(end, now)
                .ok_or_else(|| anyhow::anyhow!("Unable to parse the time provided by '--end-time'"))?,
        ),
        None => None,
    };
    let request = LogsRequest {
        stack_name: args.stack_name.clone(),
        names: args.name.clone(),
        log_groups: args.cw_log_group.clone(),
        filter: args.filter.clone(),
        start_ms,
        end_ms: if args.tail { None } else { end_ms },
    };
    let aws = accel::aws::Aws::load(&accel::aws::AwsOptions {
        region: global.region.clone(),
        profile: global.profile.clone(),
    })
    .await?;
    let (sources, notes) = logs::sources(&aws, &request).await?;
    for line in notes {
        note(format_args!("{line}"));
    }
    let format = Format {
        json: args.output == cli::args::LogsOutput::Json,
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        filter: args.filter.clone(),
    };
    let mut stdout = std::io::stdout().lock();
    let mut print = |item: Item| {
        let _ = stdout.write_all(format.render(&item).as_bytes());
        let _ = stdout.flush();
    };
    if args.tail {
        return Ok(logs::tail(&aws, &sources, &request, args.include_traces, &mut print).await?);
    }
    let mut items: Vec<Item> = logs::fetch(&aws, &sources, &request).await?.into_iter().map(Item::Log).collect();
    if args.include_traces {
        let traces = logs::fetch_traces(&aws, start_ms, end_ms.unwrap_or(now)).await?;
        items.extend(traces.into_iter().map(Item::Trace));
        items.sort_by_key(Item::timestamp);
    }
    items.into_iter().for_each(print);
    Ok(())
}

/// The infra sync settings the flags ask for.
fn infra_request(args: &SyncArgs, project: &Project) -> Result<accel::sync::infra::InfraRequest> {
    Ok(accel::sync::infra::InfraRequest {
        stack_name: args.stack_name.clone(),
        bucket: args.s3_bucket.clone(),
        prefix: args.s3_prefix.clone(),
        kms_key_id: args.kms_key_id.clone(),
        metadata: cli::values::metadata(args.metadata.as_deref()).map_err(anyhow::Error::msg)?,
        role_arn: args.role_arn.clone(),
        capabilities: args.capabilities.iter().flat_map(|c| c.split_whitespace()).map(str::to_string).collect(),
        notification_arns: args.notification_arns.clone(),
        tags: cli::values::tags(&args.tags).map_err(anyhow::Error::msg)?,
        express: args.express,
        skip_deploy_sync: !args.no_skip_deploy_sync,
        dependency_layer: !args.no_dependency_layer,
        overrides: project.overrides.clone(),
    })
}

/// Infra sync output: progress on stderr, stack events on stdout (as sam).
struct Terminal;

impl accel::sync::Reporter for Terminal {
    fn note(&self, line: &str) {
        note(format_args!("{line}"));
    }

    fn event(&self, line: &str) {
        say(format_args!("{line}"));
    }

    fn synced(&self, synced: &accel::sync::flows::Synced) {
        print_updated(synced);
    }
}

impl accel::watch::WatchReporter for Terminal {
    fn error(&self, line: &str) {
        note(format_args!("{line}"));
    }
}

/// One line per updated resource; unchanged ones only count in the summary.
fn print_updated(synced: &accel::sync::flows::Synced) {
    if synced.outcome == accel::sync::flows::Outcome::Updated {
        note(format_args!("{synced}"));
    }
}

fn sync_summary(synced: &[accel::sync::flows::Synced], started: std::time::Instant) -> String {
    let updated = synced.iter().filter(|s| s.outcome == accel::sync::flows::Outcome::Updated).count();
    format!(
        "Code sync done in {} ms: {updated} updated, {} unchanged.",
        started.elapsed().as_millis(),
        synced.len() - updated
    )
}

/// Writes a line to stdout; a closed pipe (`accel build | head`) is not an error.
fn say(text: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Writes a line to stderr, ignoring a closed stream.
fn note(text: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
