//! Every flag of `accel build`, `accel sync` and `accel logs`, defined and
//! documented in one place. Names, short forms and defaults follow `sam`
//! (spec §0, §1.1, §2.1, §4.1) so existing scripts and `samconfig.toml` files
//! work unchanged. `accel completion` and `accel man` are accel's own: they
//! render this definition as shell completions and man pages.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sam's two-letter short options, which clap cannot declare as shorts; they
/// are rewritten to their long form before parsing.
pub(crate) const TWO_LETTER_SHORTS: [(&str, &str); 4] =
    [("-bi", "--build-image"), ("-cd", "--cache-dir"), ("-ef", "--container-env-var-file"), ("-mw", "--mount-with")];

/// accel: the fast inner loop for AWS SAM projects.
#[derive(Debug, Parser)]
#[command(name = "accel", bin_name = "accel", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

/// The subcommands: drop-in replacements for their `sam` namesakes.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build the functions and layers of a SAM template into .aws-sam/build.
    Build(BuildArgs),
    /// Deploy a stack and keep it in sync with local code (SAM Accelerate).
    Sync(SyncArgs),
    /// Fetch or tail the logs (and traces) of a deployed stack.
    Logs(LogsArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    Completion(CompletionArgs),
    /// Print the man page, or write one page per command into a folder.
    Man(ManArgs),
}

impl Command {
    /// Whether the command is one of sam's, and so reads samconfig files;
    /// accel's own commands (completion, man) read none.
    pub(crate) fn reads_samconfig(name: &str) -> bool {
        matches!(name, "build" | "sync" | "logs")
    }
}

/// Options that every command accepts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Turn on debug logging.
    #[arg(long, global = true, env = "SAM_DEBUG", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub(crate) debug: bool,
    /// Turn on all beta features for this run.
    #[arg(long, global = true, overrides_with = "no_beta_features")]
    pub(crate) beta_features: bool,
    /// Turn off all beta features for this run.
    #[arg(long, global = true, overrides_with = "beta_features")]
    pub(crate) no_beta_features: bool,
    /// AWS region to use (also sets AWS::Region for local resolution).
    #[arg(long, global = true, value_parser = parse_region)]
    pub(crate) region: Option<String>,
    /// AWS profile from the credentials and config files.
    #[arg(long, global = true)]
    pub(crate) profile: Option<String>,
    /// samconfig file, relative to the template's folder or absolute.
    #[arg(long, global = true, default_value = "samconfig.toml")]
    pub(crate) config_file: String,
    /// Environment (top-level section) of the samconfig file to read.
    #[arg(long, global = true, default_value = "default")]
    pub(crate) config_env: String,
    /// Save the flags given on the command line to the samconfig file.
    #[arg(long, global = true)]
    pub(crate) save_params: bool,
}

/// Template selection and parameters, shared by build and sync.
#[derive(Debug, Clone, Args)]
pub(crate) struct TemplateArgs {
    /// SAM template to use [default: the first of template.yaml, template.yml, template.json].
    #[arg(short = 't', long = "template-file", visible_alias = "template", env = "SAM_TEMPLATE_FILE")]
    pub(crate) template_file: Option<PathBuf>,
    /// Template parameter values: `Key=Value ...`, `ParameterKey=K,ParameterValue=V ...` or `file://params.toml`.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) parameter_overrides: Vec<String>,
    /// Expand AWS::LanguageExtensions (Fn::ForEach) locally.
    #[arg(long, overrides_with = "no_language_extensions")]
    pub(crate) language_extensions: bool,
    /// Do not expand AWS::LanguageExtensions locally.
    #[arg(long, overrides_with = "language_extensions")]
    pub(crate) no_language_extensions: bool,
    /// Root folder for relative CodeUri/ContentUri paths [default: the template's folder].
    #[arg(short = 's', long)]
    pub(crate) base_dir: Option<PathBuf>,
    /// Build inside the source folder (npm, esbuild and makefile builds).
    #[arg(long, overrides_with = "no_build_in_source")]
    pub(crate) build_in_source: bool,
    /// Build in a scratch folder (the default).
    #[arg(long, overrides_with = "build_in_source")]
    pub(crate) no_build_in_source: bool,
}

/// `accel build` flags (spec §1.1).
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildArgs {
    /// Build only this function or layer (`Func` or `Child/Func`).
    #[arg(value_name = "RESOURCE_LOGICAL_ID")]
    pub(crate) resource_logical_id: Option<String>,
    #[command(flatten)]
    pub(crate) template: TemplateArgs,
    /// Build independent resources concurrently (accel always does; kept for compatibility).
    #[arg(short = 'p', long)]
    pub(crate) parallel: bool,
    /// Logical id to skip when building everything (repeatable).
    #[arg(short = 'x', long, action = clap::ArgAction::Append)]
    pub(crate) exclude: Vec<String>,
    #[command(flatten)]
    pub(crate) remote: RemoteCacheArgs,
    /// Dependency manifest to use for every function and layer instead of the default one.
    #[arg(short = 'm', long)]
    pub(crate) manifest: Option<PathBuf>,
    /// Reuse dependencies and code from the build cache when their inputs are unchanged.
    #[arg(short = 'c', long, overrides_with = "no_cached")]
    pub(crate) cached: bool,
    /// Build everything from scratch.
    #[arg(long, overrides_with = "cached")]
    pub(crate) no_cached: bool,
    /// Output folder.
    #[arg(short = 'b', long, default_value = crate::layout::DEFAULT_BUILD_DIR)]
    pub(crate) build_dir: PathBuf,
    /// Cache folder, used with --cached (short -cd).
    #[arg(long, default_value = crate::layout::DEFAULT_CACHE_DIR)]
    pub(crate) cache_dir: PathBuf,
    /// Hook package that prepares a non-SAM project (only `terraform` exists; not supported by accel).
    #[arg(long)]
    pub(crate) hook_name: Option<String>,
    /// Skip the hook's infrastructure preparation (needs --hook-name).
    #[arg(long, overrides_with = "prepare_infra")]
    pub(crate) skip_prepare_infra: bool,
    /// Run the hook's infrastructure preparation (needs --hook-name).
    #[arg(long, overrides_with = "skip_prepare_infra")]
    pub(crate) prepare_infra: bool,
    /// Terraform project root (needs --hook-name).
    #[arg(long)]
    pub(crate) terraform_project_root_path: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) container: ContainerArgs,
    /// Build inside containers with `docker buildx` (needs Docker).
    #[arg(long, overrides_with = "no_use_buildkit")]
    pub(crate) use_buildkit: bool,
    /// Build images with the Docker SDK.
    #[arg(long, overrides_with = "use_buildkit")]
    pub(crate) no_use_buildkit: bool,
    /// Environment variable for build containers: `Func.VAR=value` or `VAR=value` (repeatable; needs --use-container).
    #[arg(short = 'e', long, action = clap::ArgAction::Append)]
    pub(crate) container_env_var: Vec<String>,
    /// How the source is mounted into build containers: READ or WRITE (needs --use-container; short -mw).
    #[arg(long, ignore_case = true, value_enum)]
    pub(crate) mount_with: Option<MountMode>,
    /// Do not pull build images (needs --use-container).
    #[arg(long, env = "SAM_SKIP_PULL_IMAGE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub(crate) skip_pull_image: bool,
    /// Docker network for build containers (needs --use-container).
    #[arg(long, env = "SAM_DOCKER_NETWORK")]
    pub(crate) docker_network: Option<String>,
    /// Mount top-level symlinks into build containers.
    #[arg(long, overrides_with = "no_mount_symlinks")]
    pub(crate) mount_symlinks: bool,
    /// Do not mount symlinks into build containers.
    #[arg(long, overrides_with = "mount_symlinks")]
    pub(crate) no_mount_symlinks: bool,
}

/// Flags of container builds, which need Docker.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Container options (need Docker)")]
pub(crate) struct ContainerArgs {
    /// Build inside Lambda-like containers (needs Docker).
    #[arg(short = 'u', long, overrides_with = "no_use_container")]
    pub(crate) use_container: bool,
    /// Build on the host (the default).
    #[arg(long, overrides_with = "use_container")]
    pub(crate) no_use_container: bool,
    /// Build image: `uri` for every resource or `Func=uri` (repeatable; needs --use-container; short -bi).
    #[arg(long, action = clap::ArgAction::Append)]
    pub(crate) build_image: Vec<String>,
    /// JSON file of environment variables for build containers (needs --use-container; short -ef).
    #[arg(long)]
    pub(crate) container_env_var_file: Option<PathBuf>,
}

/// The remote build cache, shared by build and sync.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteCacheArgs {
    /// Share built dependencies and code through S3 (`s3://bucket/prefix`): a fresh machine downloads what another built (build: with --cached).
    #[arg(long, env = "ACCEL_REMOTE_CACHE", value_name = "S3_URL")]
    pub(crate) remote_cache: Option<String>,
    /// What this machine does with --remote-cache (`read` for untrusted code, e.g. pull requests).
    #[arg(long, value_parser = ["read", "write", "read-write"], default_value = "read-write")]
    pub(crate) remote_cache_mode: String,
}

/// `accel sync` flags (spec §2.1).
#[derive(Debug, Clone, Args)]
pub(crate) struct SyncArgs {
    /// Name of the CloudFormation stack to deploy and keep in sync.
    #[arg(long, required = true)]
    pub(crate) stack_name: String,
    #[command(flatten)]
    pub(crate) template: TemplateArgs,
    /// Sync only code and definitions through the service APIs, with no CloudFormation deploy.
    #[arg(long)]
    pub(crate) code: bool,
    /// Watch local files and sync every change.
    #[arg(long, overrides_with = "no_watch")]
    pub(crate) watch: bool,
    /// Sync once and exit (the default).
    #[arg(long, overrides_with = "watch")]
    pub(crate) no_watch: bool,
    /// With --code: sync only this resource (`Id` or `Child/Id`; repeatable).
    #[arg(long, action = clap::ArgAction::Append)]
    pub(crate) resource_id: Vec<String>,
    /// With --code: sync every resource of this type (repeatable).
    #[arg(long, action = clap::ArgAction::Append, value_parser = clap::builder::PossibleValuesParser::new(crate::template::kind::code_sync_types()))]
    pub(crate) resource: Vec<String>,
    /// Move Python/Node/Java dependencies into a layer per function, so code syncs send only your code (default).
    #[arg(long, overrides_with = "no_dependency_layer")]
    pub(crate) dependency_layer: bool,
    /// Keep dependencies inside each function's package.
    #[arg(long, overrides_with = "dependency_layer")]
    pub(crate) no_dependency_layer: bool,
    /// Skip the first CloudFormation deploy when the template has not changed (default).
    #[arg(long, overrides_with = "no_skip_deploy_sync")]
    pub(crate) skip_deploy_sync: bool,
    /// Always run the first CloudFormation deploy.
    #[arg(long, overrides_with = "skip_deploy_sync")]
    pub(crate) no_skip_deploy_sync: bool,
    /// Deploy with CloudFormation Express mode.
    #[arg(long, overrides_with = "no_express")]
    pub(crate) express: bool,
    /// Deploy without Express mode (the default).
    #[arg(long, overrides_with = "express")]
    pub(crate) no_express: bool,
    /// Apply configuration changes the service APIs can make (Lambda environment, memory, timeout, layers …) without a CloudFormation deploy, and deploy the rest (default with --watch).
    #[arg(long, overrides_with = "no_hotswap")]
    pub(crate) hotswap: bool,
    /// Deploy every template change beyond code through CloudFormation, as sam does.
    #[arg(long, overrides_with = "hotswap")]
    pub(crate) no_hotswap: bool,
    /// Print what the sync would do (per resource: code, config or CloudFormation, and why) and change nothing.
    #[arg(long, conflicts_with = "watch")]
    pub(crate) dry_run: bool,
    /// `text` (default) or `json`: one JSON object per line on stdout for each event (resource, action, api, duration_ms, result); with --dry-run, the plan as one JSON document.
    #[arg(long, value_parser = ["text", "json"])]
    pub(crate) output: Option<String>,
    #[command(flatten)]
    pub(crate) remote: RemoteCacheArgs,
    /// Ignore changes matching `ResourceId=path-fragment` in watch mode (repeatable).
    #[arg(long, action = clap::ArgAction::Append, value_parser = parse_key_value)]
    pub(crate) watch_exclude: Vec<String>,
    /// S3 bucket for artifacts [default: the bucket of the managed stack aws-sam-cli-managed-default].
    #[arg(long)]
    pub(crate) s3_bucket: Option<String>,
    /// Key prefix for uploaded artifacts.
    #[arg(long)]
    pub(crate) s3_prefix: Option<String>,
    /// KMS key for server-side encryption of uploads (AES256 without it).
    #[arg(long)]
    pub(crate) kms_key_id: Option<String>,
    /// IAM role CloudFormation assumes for the deploy.
    #[arg(long)]
    pub(crate) role_arn: Option<String>,
    /// Capabilities granted to CloudFormation.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append, default_values = ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])]
    pub(crate) capabilities: Vec<String>,
    /// SNS topics for stack events.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) notification_arns: Vec<String>,
    /// Stack tags: `key=value ...`.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) tags: Vec<String>,
    /// S3 object metadata for uploads: `k=v,k2=v2` or a JSON object.
    #[arg(long)]
    pub(crate) metadata: Option<String>,
    #[command(flatten)]
    pub(crate) container: ContainerArgs,
    /// ECR repository for every image function (image functions need Docker).
    #[arg(long, conflicts_with = "image_repositories")]
    pub(crate) image_repository: Option<String>,
    /// ECR repository for one image function: `FuncId=uri` (repeatable).
    #[arg(long, action = clap::ArgAction::Append, value_parser = parse_key_value)]
    pub(crate) image_repositories: Vec<String>,
}

/// `accel logs` flags (spec §4.1).
#[derive(Debug, Clone, Args)]
pub(crate) struct LogsArgs {
    /// Resource whose logs to show: `LogicalId` or `Child/LogicalId` (repeatable) [default: every resource].
    #[arg(short = 'n', long, action = clap::ArgAction::Append)]
    pub(crate) name: Vec<String>,
    /// Deployed stack to read resources from.
    #[arg(long)]
    pub(crate) stack_name: Option<String>,
    /// CloudWatch Logs filter pattern.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Follow new events as they arrive.
    #[arg(short = 't', long)]
    pub(crate) tail: bool,
    /// Also show X-Ray traces.
    #[arg(short = 'i', long)]
    pub(crate) include_traces: bool,
    /// Extra CloudWatch log group to read (repeatable).
    #[arg(long, action = clap::ArgAction::Append)]
    pub(crate) cw_log_group: Vec<String>,
    /// Start of the time window: "10m ago", "yesterday", ISO-8601 …
    #[arg(short = 's', long, default_value = "10m ago")]
    pub(crate) start_time: String,
    /// End of the time window [default: now].
    #[arg(short = 'e', long)]
    pub(crate) end_time: Option<String>,
    /// Output format.
    #[arg(long, value_enum, ignore_case = true, default_value = "text")]
    pub(crate) output: LogsOutput,
}

/// Where each shell reads completions from (also in the man page and README).
const COMPLETION_SETUP: &str = "Install the script where the shell looks for it:
  bash:       accel completion bash > ~/.local/share/bash-completion/completions/accel
  zsh:        accel completion zsh > ~/.zfunc/_accel   (fpath+=~/.zfunc before compinit)
  fish:       accel completion fish > ~/.config/fish/completions/accel.fish
  powershell: accel completion powershell | Out-String | Invoke-Expression   (in $PROFILE)";

/// `accel completion` flags.
#[derive(Debug, Clone, Args)]
#[command(after_help = COMPLETION_SETUP)]
pub(crate) struct CompletionArgs {
    /// The shell to print the script for.
    #[arg(value_enum, ignore_case = true)]
    pub(crate) shell: clap_complete::Shell,
}

/// `accel man` flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct ManArgs {
    /// Write `accel.1` and one page per command (`accel-build.1`, `accel-sync.1`, …) into this folder,
    /// created if missing, instead of printing `accel.1`.
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,
}

/// Mount mode of the source in build containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub(crate) enum MountMode {
    /// Read-only.
    Read,
    /// Read-write.
    Write,
}

/// Output format of `accel logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogsOutput {
    /// `<stream> <timestamp> <message>` lines.
    Text,
    /// One JSON object per event.
    Json,
}

/// A flag value clap rejects, with sam's message.
#[derive(Debug, thiserror::Error)]
enum FlagValueError {
    /// Not a region name.
    #[error("Provided region: {0} doesn't match a supported format")]
    Region(String),
    /// Not `Key=Value`.
    #[error("Argument must be a key, value pair in the format Key=Value.")]
    KeyValue,
}

/// botocore accepts a region that is a valid host label.
fn parse_region(value: &str) -> Result<String, FlagValueError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok { Ok(value.to_string()) } else { Err(FlagValueError::Region(value.to_string())) }
}

/// `Key=Value` with exactly one `=`, as sam demands of --watch-exclude.
fn parse_key_value(value: &str) -> Result<String, FlagValueError> {
    if value.matches('=').count() == 1 { Ok(value.to_string()) } else { Err(FlagValueError::KeyValue) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn region_format() {
        assert!(parse_region("eu-west-1").is_ok());
        assert!(parse_region("eu_west-1").is_err());
        assert!(parse_region("-x").is_err());
    }

    #[test]
    fn watch_exclude_needs_one_equals() {
        assert!(parse_key_value("Fn=node_modules").is_ok());
        assert!(parse_key_value("Fn").is_err());
        assert!(parse_key_value("a=b=c").is_err());
    }
}
