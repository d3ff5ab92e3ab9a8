//! The command line: flag definitions ([`args`]), samconfig files
//! ([`samconfig`]) and the parse that combines them with sam's precedence:
//! command line > environment variable > samconfig > built-in default; and
//! the same definitions rendered as completions and man pages ([`render`]).

pub(crate) mod args;
mod checks;
pub(crate) mod render;
pub(crate) mod samconfig;
pub(crate) mod values;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

pub(crate) use args::{BuildArgs, Cli, Command, GlobalArgs, LogsArgs, RemoteCacheArgs, SyncArgs, TemplateArgs};
pub(crate) use checks::{check_usage, unsupported_feature};
use samconfig::{OptionKind, SamConfig, SamConfigError};

/// Errors of the parse itself; clap's own errors carry their exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Usage error, `--help` or `--version`: clap prints and picks the exit code.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The samconfig file could not be used.
    #[error(transparent)]
    SamConfig(#[from] SamConfigError),
}

/// A parsed command line and what the parse has to say about it.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// Flags after samconfig values were applied.
    pub(crate) cli: Cli,
    /// Messages for the user (e.g. which of several samconfig files was used).
    pub(crate) notes: Vec<String>,
}

/// Parses `argv` (program name first), applying the samconfig file found next
/// to the template.
pub(crate) fn parse<I, T>(argv: I, cwd: &Path) -> Result<Parsed, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut argv = rewrite_two_letter_shorts(argv.into_iter().map(Into::into).collect());
    let mut config = SamConfig::default();
    let mut save_to = None;
    let mut notes = Vec::new();

    // A forgiving first pass finds the command, the template and the config
    // file; the strict parse runs once the config values are in argv.
    let probe = Cli::command().ignore_errors(true).try_get_matches_from(&argv);
    if let Ok(matches) = probe
        && let Some((name, sub)) = matches.subcommand()
        && Command::reads_samconfig(name)
    {
        let template = sub.try_get_one::<PathBuf>("template_file").ok().flatten();
        let dir = project_dir(cwd, template.map(PathBuf::as_path));
        let file = string_arg(sub, "config_file").unwrap_or(samconfig::DEFAULT_CONFIG_FILE.into());
        let env = string_arg(sub, "config_env").unwrap_or("default".into());
        if sub.get_flag("save_params") {
            let params = given_parameters(name, &matches, sub);
            save_to = Some((dir.join(&file), env.clone(), name.to_string(), params));
        }
        let (found, note) = samconfig::locate(&dir, &file)?;
        notes.extend(note);
        if let Some(path) = found {
            config = samconfig::load(&path, &env, name)?;
            let extra = config_tokens(name, &matches, sub, &config)?;
            let at = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
            argv.splice(at..at, extra);
        }
    }
    let matches = Cli::command().try_get_matches_from(&argv).map_err(|e| with_usage(e, &argv))?;
    let cli = Cli::from_arg_matches(&matches)?;
    if let Some((path, env, command, params)) = save_to {
        let path = config.path.clone().unwrap_or(path);
        samconfig::save(&path, &env, &command, &params)?;
    }
    Ok(Parsed { cli, notes })
}

/// The folder whose samconfig applies: the template's, else the cwd.
pub(crate) fn project_dir(cwd: &Path, template: Option<&Path>) -> PathBuf {
    template.map(|t| cwd.join(t)).and_then(|t| t.parent().map(Path::to_path_buf)).unwrap_or_else(|| cwd.to_path_buf())
}

/// The options given on the command line, as samconfig keys and values, for
/// `--save-params` (which saves neither itself nor the config file's name).
fn given_parameters(command: &str, top: &ArgMatches, sub: &ArgMatches) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut root = Cli::command();
    root.build();
    let mut params = serde_json::Map::new();
    let Some(cmd) = root.find_subcommand(command) else {
        return params;
    };
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if matches!(id, "save_params" | "config_file" | "config_env" | "help" | "version") {
            continue;
        }
        let Some(m) = [sub, top].into_iter().find(|m| source(m, id) == Some(ValueSource::CommandLine)) else {
            continue;
        };
        let raw: Vec<String> =
            m.get_raw(id).map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect()).unwrap_or_default();
        let max = arg.get_num_args().map(|r| r.max_values()).unwrap_or(1);
        let (key, value) = if max == 0 {
            match long.strip_prefix("no-") {
                Some(positive) if cmd.get_arguments().any(|a| a.get_long() == Some(positive)) => {
                    (positive.replace('-', "_"), Value::Bool(false))
                }
                _ => (id.to_string(), Value::Bool(true)),
            }
        } else if max > 1 || matches!(arg.get_action(), clap::ArgAction::Append) {
            (id.to_string(), Value::Array(raw.into_iter().map(Value::String).collect()))
        } else {
            (id.to_string(), raw.into_iter().next().map(Value::String).unwrap_or(Value::Null))
        };
        params.insert(key, value);
    }
    params
}

/// sam prints the usage line with every usage error; clap leaves it out of
/// some (invalid values), so add the command's usage where it is missing.
fn with_usage(mut error: clap::Error, argv: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || error.get(ContextKind::Usage).is_some()
    {
        return error;
    }
    let mut root = Cli::command();
    root.build();
    let usage = match argv.iter().find_map(|a| root.find_subcommand(a.to_str()?)) {
        Some(sub) => sub.clone().bin_name(format!("accel {}", sub.get_name())).render_usage(),
        None => root.render_usage(),
    };
    error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    error
}

/// How an option takes values: none (a switch), one, or several.
fn option_kind(arg: &clap::Arg) -> OptionKind {
    let max = arg.get_num_args().map(|r| r.max_values()).unwrap_or(1);
    if max == 0 {
        OptionKind::Switch
    } else if max > 1 || matches!(arg.get_action(), clap::ArgAction::Append) {
        OptionKind::Many
    } else {
        OptionKind::Single
    }
}

/// Where an argument's value came from; `None` also for ids the matches do
/// not know (`value_source` panics on those).
fn source(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    matches.try_contains_id(id).ok()?;
    matches.value_source(id)
}

fn string_arg(matches: &ArgMatches, id: &str) -> Option<String> {
    matches.try_get_one::<String>(id).ok().flatten().cloned()
}

/// Rewrites `-bi`, `-cd`, `-ef`, `-mw` (also `-bi=x`) to their long forms.
pub(crate) fn rewrite_two_letter_shorts(argv: Vec<OsString>) -> Vec<OsString> {
    let mut after_terminator = false;
    argv.into_iter()
        .map(|arg| {
            if after_terminator {
                return arg;
            }
            let Some(text) = arg.to_str() else { return arg };
            if text == "--" {
                after_terminator = true;
                return arg;
            }
            for (short, long) in args::TWO_LETTER_SHORTS {
                if text == short {
                    return OsString::from(long);
                }
                if let Some(value) = text.strip_prefix(short).and_then(|rest| rest.strip_prefix('=')) {
                    return OsString::from(format!("{long}={value}"));
                }
            }
            arg
        })
        .collect()
}

/// Command-line tokens for the config values the user did not give on the
/// command line or through an environment variable.
fn config_tokens(
    command: &str,
    top: &ArgMatches,
    sub: &ArgMatches,
    config: &SamConfig,
) -> Result<Vec<OsString>, clap::Error> {
    let mut root = Cli::command();
    root.build();
    let Some(cmd) = root.find_subcommand(command) else {
        return Ok(Vec::new());
    };
    let given = |id: &str| {
        [top, sub].iter().any(|m| matches!(source(m, id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)))
    };
    let mut tokens = Vec::new();
    for (key, value) in &config.parameters {
        let long = key.replace('_', "-");
        let Some(arg) = cmd.get_arguments().find(|a| {
            a.get_long() == Some(long.as_str()) || a.get_all_aliases().is_some_and(|al| al.contains(&long.as_str()))
        }) else {
            continue; // sam ignores keys that are not options of the command
        };
        let long = arg.get_long().unwrap_or_default().to_string();
        let negation = cmd.get_arguments().find(|a| a.get_long() == Some(format!("no-{long}").as_str()));
        if given(arg.get_id().as_str()) || negation.is_some_and(|n| given(n.get_id().as_str())) {
            continue;
        }
        let kind = option_kind(arg);
        let Some(more) = samconfig::tokens_for(&long, kind, negation.and_then(|n| n.get_long()), value) else {
            // sam's click refuses it the same way, with the usage line and exit 2.
            let short = arg.get_short().map(|s| format!(" / '-{s}'")).unwrap_or_default();
            let shown = value.as_str().map_or_else(|| value.to_string(), str::to_string);
            let message = format!("Invalid value for '--{long}'{short}: '{shown}' is not a valid boolean.");
            let mut cmd = cmd.clone().bin_name(format!("accel {command}"));
            let usage = cmd.render_usage();
            let mut error = cmd.error(clap::error::ErrorKind::InvalidValue, message);
            error.insert(clap::error::ContextKind::Usage, clap::error::ContextValue::StyledStr(usage));
            return Err(error);
        };
        tokens.extend(more);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn two_letter_shorts_are_rewritten_before_the_terminator_only() {
        let out = rewrite_two_letter_shorts(os(&["accel", "build", "-bi", "img", "-cd=c", "--", "-mw"]));
        assert_eq!(out, os(&["accel", "build", "--build-image", "img", "--cache-dir=c", "--", "-mw"]));
    }

    #[test]
    fn samconfig_fills_only_what_the_command_line_leaves_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("samconfig.toml"),
            "version = 0.1\n[default.sync.parameters]\nstack_name = \"from-config\"\nwatch = true\ns3_prefix = \"p\"\ncapabilities = \"CAPABILITY_IAM\"\n[default.build.parameters]\ncached = true\n",
        )
        .unwrap();
        let inv = parse(os(&["accel", "sync", "--no-watch"]), dir.path()).unwrap().cli;
        let Command::Sync(sync) = inv.command else { panic!("sync expected") };
        assert_eq!(sync.stack_name, "from-config");
        assert!(!sync.watch && sync.no_watch, "--no-watch on the command line beats watch = true");
        assert_eq!(sync.s3_prefix.as_deref(), Some("p"));
        assert_eq!(sync.capabilities, ["CAPABILITY_IAM"]);

        let inv = parse(os(&["accel", "sync", "--stack-name", "cli"]), dir.path()).unwrap().cli;
        let Command::Sync(sync) = inv.command else { panic!("sync expected") };
        assert_eq!(sync.stack_name, "cli");

        let inv = parse(os(&["accel", "build", "--no-cached"]), dir.path()).unwrap().cli;
        let Command::Build(build) = inv.command else { panic!("build expected") };
        assert!(!build.cached);
        let inv = parse(os(&["accel", "build"]), dir.path()).unwrap().cli;
        let Command::Build(build) = inv.command else { panic!("build expected") };
        assert!(build.cached);
    }

    #[test]
    fn save_params_writes_what_the_command_line_gave() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("samconfig.toml"),
            "# team config\nversion = 0.1\n[default.sync.parameters]\nwatch = true\n",
        )
        .unwrap();
        let argv = [
            "accel",
            "sync",
            "--stack-name",
            "blog",
            "--no-dependency-layer",
            "--region",
            "eu-west-1",
            "--tags",
            "a=1",
            "b=2",
            "--save-params",
        ];
        parse(os(&argv), dir.path()).unwrap();
        let saved = std::fs::read_to_string(dir.path().join("samconfig.toml")).unwrap();
        assert!(saved.starts_with("# team config"), "comments survive: {saved}");
        let config = samconfig::load(&dir.path().join("samconfig.toml"), "default", "sync").unwrap();
        assert_eq!(config.parameters["stack_name"], serde_json::json!("blog"));
        assert_eq!(config.parameters["dependency_layer"], serde_json::json!(false));
        assert_eq!(config.parameters["tags"], serde_json::json!(["a=1", "b=2"]));
        assert_eq!(config.parameters["watch"], serde_json::json!(true), "other keys stay");
        assert_eq!(config.parameters["region"], serde_json::json!("eu-west-1"), "region goes to the global section");
        assert!(!config.parameters.contains_key("save_params"));
        // The saved file then drives a run with no flags.
        let inv = parse(os(&["accel", "sync"]), dir.path()).unwrap().cli;
        let Command::Sync(sync) = inv.command else { panic!("sync expected") };
        assert_eq!((sync.stack_name.as_str(), sync.no_dependency_layer), ("blog", true));
    }

    #[test]
    fn config_env_selects_the_section() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("samconfig.toml"),
            "version = 0.1\n[prod.logs.parameters]\nstack_name = \"prod-stack\"\n[prod.global.parameters]\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let inv = parse(os(&["accel", "logs", "--config-env", "prod"]), dir.path()).unwrap().cli;
        assert_eq!(inv.global.region.as_deref(), Some("eu-west-1"));
        let Command::Logs(logs) = inv.command else { panic!("logs expected") };
        assert_eq!(logs.stack_name.as_deref(), Some("prod-stack"));
    }

    #[test]
    fn samconfig_is_read_next_to_the_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(
            dir.path().join("app/samconfig.toml"),
            "version = 0.1\n[default.build.parameters]\nexclude = [\"A\", \"B\"]\n",
        )
        .unwrap();
        let inv = parse(os(&["accel", "build", "-t", "app/template.yaml"]), dir.path()).unwrap().cli;
        let Command::Build(build) = inv.command else { panic!("build expected") };
        assert_eq!(build.exclude, ["A", "B"]);
    }
}
