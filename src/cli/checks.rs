//! Checks of a parsed command line: sam's usage errors (exit 2), and the
//! flags accel accepts but whose feature it does not provide (exit 1).

use clap::CommandFactory;

use super::args::{self, Cli, Command};

/// Usage errors that sam reports with exit code 2, checked once samconfig
/// values are in.
pub(crate) fn check_usage(cli: &Cli) -> Result<(), clap::Error> {
    let usage = |command: &str, message: String| {
        let mut root = Cli::command();
        let sub = root.find_subcommand_mut(command).cloned().unwrap_or_default();
        sub.bin_name(format!("accel {command}")).error(clap::error::ErrorKind::MissingRequiredArgument, message)
    };
    let needs_container = |command: &str, flag: &str| {
        usage(
            command,
            format!("Missing required parameter, need the --use-container flag in order to use --{flag} flag."),
        )
    };
    let container_checks = |command: &str, c: &args::ContainerArgs, in_source: bool| {
        if !c.use_container {
            if !c.build_image.is_empty() {
                return Err(needs_container(command, "build-image"));
            }
            if c.container_env_var_file.is_some() {
                return Err(needs_container(command, "container-env-var-file"));
            }
        } else if in_source {
            return Err(usage(
                command,
                "You must not provide both the --build-in-source and --use-container parameters.".into(),
            ));
        }
        Ok(())
    };
    match &cli.command {
        Command::Build(b) => {
            container_checks("build", &b.container, b.template.build_in_source)?;
            if !b.container.use_container {
                if !b.container_env_var.is_empty() {
                    return Err(needs_container("build", "container-env-var"));
                }
                if b.mount_with.is_some() {
                    return Err(needs_container("build", "mount-with"));
                }
            }
            if b.hook_name.is_none()
                && (b.skip_prepare_infra || b.prepare_infra || b.terraform_project_root_path.is_some())
            {
                return Err(usage("build", "Missing required parameter --hook-name.".into()));
            }
            if let Ok(mode) = std::env::var("SAM_BUILD_MODE")
                && !mode.is_empty()
                && mode != "debug"
            {
                return Err(usage(
                    "build",
                    "Invalid value for 'mode': invalid choice (SAM_BUILD_MODE must be 'debug')".into(),
                ));
            }
        }
        Command::Sync(s) => container_checks("sync", &s.container, s.template.build_in_source)?,
        Command::Logs(l) => {
            if l.stack_name.is_none() && l.cw_log_group.is_empty() {
                return Err(usage("logs", "Missing option. Please provide '--stack-name' or '--cw-log-group'".into()));
            }
            if l.stack_name.is_none() && !l.name.is_empty() {
                return Err(usage(
                    "logs",
                    "Missing option. Please provide '--stack-name' when using '--name' option".into(),
                ));
            }
        }
        Command::Completion(_) | Command::Man(_) => {}
    }
    Ok(())
}

/// Flags accel accepts for compatibility but whose feature it does not
/// provide (Docker, hooks): the one-line reason, naming the missing piece.
pub(crate) fn unsupported_feature(cli: &Cli) -> Option<String> {
    let docker = |flag: &str| {
        Some(format!(
            "{flag} needs Docker, which accel does not use: it builds and syncs Zip packages on the host. Run without {flag}, or use `sam` for container builds and image functions."
        ))
    };
    let container = match &cli.command {
        Command::Build(b) => {
            if b.use_buildkit {
                return docker("--use-buildkit");
            }
            if let Some(hook) = &b.hook_name {
                return Some(format!(
                    "--hook-name {hook}: hooks (Terraform projects) are not supported by accel; it builds SAM templates."
                ));
            }
            &b.container
        }
        Command::Sync(s) => {
            if s.image_repository.is_some() || !s.image_repositories.is_empty() {
                return docker("--image-repository");
            }
            if s.template.build_in_source {
                return Some("--build-in-source is not supported by accel sync yet; build in source with `accel build --build-in-source`, or sync without it.".into());
            }
            &s.container
        }
        Command::Logs(_) | Command::Completion(_) | Command::Man(_) => return None,
    };
    if container.use_container {
        return docker("--use-container");
    }
    None
}
