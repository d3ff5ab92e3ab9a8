//! Settings resolved once, before any work: the command line (with
//! samconfig values already in, see `cli`), the environment, and defaults,
//! turned into plain values each command runs from. Nothing below this
//! module reads the command line or the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::aws::{AwsOptions, Timeouts};
use crate::builder::graph::Selection;
use crate::builder::remote::{Location, Mode};
use crate::cli::args::LogsOutput;
use crate::cli::values::{self, ValueError};
use crate::cli::{BuildArgs, Cli, Command, GlobalArgs, LogsArgs, RemoteCacheArgs, SyncArgs, TemplateArgs};
use crate::layout::ProjectLayout;
use crate::logs::LogsRequest;
use crate::project::TemplateSource;
use crate::sync::CodeSyncRequest;
use crate::sync::infra::InfraRequest;
use crate::template::Pseudo;
use crate::template::parameters::{self, OverridesError};
use crate::watch::WatchOptions;

/// Why settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    /// Bad `--parameter-overrides`.
    #[error(transparent)]
    Overrides(#[from] OverridesError),
    /// Bad `--tags` or `--metadata`.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A `--start-time`/`--end-time` that does not parse.
    #[error("Unable to parse the time provided by '{0}'")]
    Time(&'static str),
    /// A stack name CloudFormation would refuse.
    #[error(
        "Invalid --stack-name '{0}': CloudFormation takes letters, digits and hyphens, starting with a letter, at most 128 characters"
    )]
    StackName(String),
    /// A `--remote-cache` that is not an S3 URL.
    #[error("Invalid --remote-cache '{0}': expected s3://bucket or s3://bucket/prefix")]
    RemoteCache(String),
}

/// Checks a stack name against CloudFormation's rule
/// (`[a-zA-Z][-a-zA-Z0-9]*`, at most 128 characters, or a stack ARN) before
/// any call is made.
fn stack_name(name: &str) -> Result<String, SettingsError> {
    let mut chars = name.chars();
    let valid = name.starts_with("arn:")
        || (name.len() <= 128
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if valid { Ok(name.to_string()) } else { Err(SettingsError::StackName(name.to_string())) }
}

/// What the process environment contributes, read once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (sam honours the latter,
    /// which the Rust SDK does not read).
    pub(crate) region: Option<String>,
    /// `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE` is set: the user's retry
    /// settings win over sam's.
    pub(crate) retry_configured: bool,
    /// Where sam keeps `metadata.json`: `$__SAM_CLI_APP_DIR`, else `~/.aws-sam`.
    pub(crate) app_dir: PathBuf,
    /// `NO_COLOR` is set.
    pub(crate) no_color: bool,
    /// `CI` is set: no progress bars.
    pub(crate) ci: bool,
    /// `SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS` is `1`, `true` or `yes`: expand
    /// `Fn::ForEach` unless `--no-language-extensions` is given (as sam).
    pub(crate) language_extensions: bool,
    /// Call time limits, `ACCEL_CONNECT_TIMEOUT`, `ACCEL_READ_TIMEOUT` and
    /// `ACCEL_OPERATION_TIMEOUT` (seconds) over the defaults.
    pub(crate) timeouts: Timeouts,
}

impl Environment {
    /// Reads this process's environment.
    pub(crate) fn read() -> Environment {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            retry_configured: std::env::var_os("AWS_MAX_ATTEMPTS").is_some()
                || std::env::var_os("AWS_RETRY_MODE").is_some(),
            app_dir: match std::env::var_os("__SAM_CLI_APP_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".aws-sam"),
            },
            no_color: std::env::var_os("NO_COLOR").is_some(),
            ci: std::env::var_os("CI").is_some(),
            language_extensions: var("SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS")
                .is_some_and(|v| ["1", "true", "yes"].contains(&v.trim().to_lowercase().as_str())),
            timeouts: {
                let seconds = |name: &str, default: Duration| {
                    var(name)
                        .and_then(|v| v.parse::<f64>().ok())
                        .filter(|s| *s > 0.0)
                        .map_or(default, Duration::from_secs_f64)
                };
                let default = Timeouts::default();
                Timeouts {
                    connect: seconds("ACCEL_CONNECT_TIMEOUT", default.connect),
                    read: seconds("ACCEL_READ_TIMEOUT", default.read),
                    operation: seconds("ACCEL_OPERATION_TIMEOUT", default.operation),
                }
            },
        }
    }
}

/// `accel build`.
#[derive(Debug, Clone)]
pub(crate) struct BuildSettings {
    /// The project's paths.
    pub(crate) layout: ProjectLayout,
    /// The template.
    pub(crate) source: TemplateSource,
    /// `--cached`.
    pub(crate) cached: bool,
    /// What to build.
    pub(crate) selection: Selection,
    /// `--build-in-source` / `--no-build-in-source` / unset.
    pub(crate) build_in_source: Option<bool>,
    /// `--remote-cache` and `--remote-cache-mode`.
    pub(crate) remote_cache: Option<(Location, Mode)>,
    /// The account and region (for the remote cache).
    pub(crate) aws: AwsOptions,
}

/// How `accel sync` runs.
#[derive(Debug, Clone)]
pub(crate) enum SyncMode {
    /// Build, then skip the deploy or deploy through CloudFormation.
    Infra,
    /// `--code`: the service APIs only.
    Code(CodeSyncRequest),
    /// `--watch`.
    Watch(Box<WatchOptions>),
}

/// `accel sync`.
#[derive(Debug, Clone)]
pub(crate) struct SyncSettings {
    /// The project's paths.
    pub(crate) layout: ProjectLayout,
    /// The template.
    pub(crate) source: TemplateSource,
    /// `--stack-name`.
    pub(crate) stack_name: String,
    /// The deploy settings.
    pub(crate) infra: InfraRequest,
    /// Infra, code or watch.
    pub(crate) mode: SyncMode,
    /// The account and region.
    pub(crate) aws: AwsOptions,
    /// Where sam remembers confirmed stacks.
    pub(crate) app_dir: PathBuf,
    /// `--dry-run`: print the plan (as JSON with `--output json`), change nothing.
    pub(crate) dry_run: Option<DryRun>,
    /// `--remote-cache` and `--remote-cache-mode`.
    pub(crate) remote_cache: Option<(Location, Mode)>,
    /// `--output json` (without `--dry-run`): events as JSON lines.
    pub(crate) json: bool,
}

/// How `--dry-run` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DryRun {
    /// For people.
    Text,
    /// `--output json`.
    Json,
}

/// `accel logs`.
#[derive(Debug, Clone)]
pub(crate) struct LogsSettings {
    /// What to read.
    pub(crate) request: LogsRequest,
    /// `--tail`.
    pub(crate) tail: bool,
    /// `--include-traces`.
    pub(crate) include_traces: bool,
    /// `--output json`.
    pub(crate) json: bool,
    /// The account and region.
    pub(crate) aws: AwsOptions,
}

/// One command's settings.
#[derive(Debug, Clone)]
pub(crate) enum Settings {
    /// `accel build`.
    Build(Box<BuildSettings>),
    /// `accel sync`.
    Sync(Box<SyncSettings>),
    /// `accel logs`.
    Logs(Box<LogsSettings>),
    /// `accel completion`: the shell to print the script for.
    Completion(clap_complete::Shell),
    /// `accel man`: the folder to write every page into, or `None` to print `accel.1`.
    Man(Option<PathBuf>),
}

/// Resolves the parsed command line, run in `cwd`, with `env`. `now_ms`
/// anchors relative times.
pub(crate) fn resolve(cli: &Cli, cwd: &Path, env: &Environment, now_ms: i64) -> Result<Settings, SettingsError> {
    let aws = aws_options(&cli.global, env);
    Ok(match &cli.command {
        Command::Build(args) => Settings::Build(Box::new(build(args, cwd, env, &aws)?)),
        Command::Sync(args) => Settings::Sync(Box::new(sync(args, cwd, env, aws)?)),
        Command::Logs(args) => Settings::Logs(Box::new(logs(args, now_ms, aws)?)),
        Command::Completion(args) => Settings::Completion(args.shell),
        Command::Man(args) => Settings::Man(args.out_dir.as_ref().map(|dir| cwd.join(dir))),
    })
}

fn aws_options(global: &GlobalArgs, env: &Environment) -> AwsOptions {
    AwsOptions {
        region: global.region.clone().or_else(|| env.region.clone()),
        profile: global.profile.clone(),
        default_retries: !env.retry_configured,
        timeouts: env.timeouts,
    }
}

fn template_source(
    args: &TemplateArgs,
    cwd: &Path,
    env: &Environment,
    aws: &AwsOptions,
) -> Result<TemplateSource, SettingsError> {
    Ok(TemplateSource {
        file: crate::template::resolve_template_path(cwd, args.template_file.as_deref()),
        overrides: parameters::parse(&args.parameter_overrides, cwd)?,
        base_dir: args.base_dir.as_ref().map(|b| cwd.join(b)),
        region: aws.region.clone().unwrap_or_else(|| Pseudo::default().region),
        // The flag wins over the environment variable.
        language_extensions: args.language_extensions || (env.language_extensions && !args.no_language_extensions),
    })
}

fn build(args: &BuildArgs, cwd: &Path, env: &Environment, aws: &AwsOptions) -> Result<BuildSettings, SettingsError> {
    Ok(BuildSettings {
        layout: ProjectLayout::new(cwd, Some(&args.build_dir), Some(&args.cache_dir)),
        source: template_source(&args.template, cwd, env, aws)?,
        cached: args.cached,
        selection: Selection {
            resource: args.resource_logical_id.clone(),
            only: None,
            exclude: args.exclude.clone(),
            manifest: args.manifest.as_ref().map(|m| cwd.join(m)),
        },
        build_in_source: match (args.template.build_in_source, args.template.no_build_in_source) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        remote_cache: remote_cache(&args.remote)?,
        aws: aws.clone(),
    })
}

fn sync(args: &SyncArgs, cwd: &Path, env: &Environment, aws: AwsOptions) -> Result<SyncSettings, SettingsError> {
    let source = template_source(&args.template, cwd, env, &aws)?;
    let stack = stack_name(&args.stack_name)?;
    let infra = InfraRequest {
        bucket: args.s3_bucket.clone(),
        prefix: args.s3_prefix.clone(),
        kms_key_id: args.kms_key_id.clone(),
        metadata: values::metadata(args.metadata.as_deref())?,
        role_arn: args.role_arn.clone(),
        capabilities: args.capabilities.iter().flat_map(|c| c.split_whitespace()).map(str::to_string).collect(),
        notification_arns: args.notification_arns.clone(),
        tags: values::tags(&args.tags)?,
        express: args.express,
        skip_deploy_sync: !args.no_skip_deploy_sync,
        dependency_layer: !args.no_dependency_layer,
        overrides: source.overrides.clone(),
        // In watch mode the first sync is sam's; later template edits hotswap.
        hotswap: args.hotswap && !args.watch,
    };
    let mode = if args.watch {
        SyncMode::Watch(Box::new(WatchOptions {
            code_only: args.code,
            excludes: args
                .watch_exclude
                .iter()
                .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            // `--code` never deploys: a change it cannot hotswap must not turn into one.
            hotswap: !args.no_hotswap && !args.code,
            infra: infra.clone(),
        }))
    } else if args.code {
        SyncMode::Code(CodeSyncRequest {
            resource_ids: args.resource_id.clone(),
            resource_types: args.resource.clone(),
        })
    } else {
        SyncMode::Infra
    };
    Ok(SyncSettings {
        layout: ProjectLayout::new(cwd, None, None),
        source,
        stack_name: stack,
        infra,
        mode,
        aws,
        app_dir: env.app_dir.clone(),
        remote_cache: remote_cache(&args.remote)?,
        dry_run: args.dry_run.then_some(if args.output.as_deref() == Some("json") {
            DryRun::Json
        } else {
            DryRun::Text
        }),
        json: !args.dry_run && args.output.as_deref() == Some("json"),
    })
}

fn remote_cache(args: &RemoteCacheArgs) -> Result<Option<(Location, Mode)>, SettingsError> {
    let Some(url) = &args.remote_cache else { return Ok(None) };
    let location = Location::parse(url).ok_or_else(|| SettingsError::RemoteCache(url.to_string()))?;
    Ok(Some((location, Mode::parse(&args.remote_cache_mode).unwrap_or(Mode::ReadWrite))))
}

fn logs(args: &LogsArgs, now_ms: i64, aws: AwsOptions) -> Result<LogsSettings, SettingsError> {
    let start_ms = crate::time::parse(&args.start_time, now_ms).ok_or(SettingsError::Time("start-time"))?;
    let end_ms = match &args.end_time {
        Some(end) => Some(crate::time::parse(end, now_ms).ok_or(SettingsError::Time("end-time"))?),
        None => None,
    };
    Ok(LogsSettings {
        request: LogsRequest {
            stack_name: args.stack_name.as_deref().map(stack_name).transpose()?,
            names: args.name.clone(),
            log_groups: args.cw_log_group.clone(),
            filter: args.filter.clone(),
            start_ms,
            end_ms: if args.tail { None } else { end_ms },
        },
        tail: args.tail,
        include_traces: args.include_traces,
        json: args.output == LogsOutput::Json,
        aws,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_cloudformations_rule() {
        for good in ["blog", "Blog-2", "a", &"a".repeat(128), "arn:aws:cloudformation:us-east-1:1:stack/x/y"] {
            assert!(stack_name(good).is_ok(), "{good}");
        }
        for bad in ["my_stack", "1stack", "-x", "", "x y", &"a".repeat(129)] {
            let error = stack_name(bad).unwrap_err();
            assert!(error.to_string().starts_with("Invalid --stack-name"), "{error}");
        }
    }
}
