//! Rust with cargo-lambda, as sam's RustCargoLambdaBuilder: `cargo lambda
//! build --release` in the source folder, then the binary copied to the
//! artifact as `bootstrap`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;

use super::{WorkflowError, io_error, output, require, run};
use crate::builder::graph::BuildUnit;
use crate::builder::inputs;

/// Builds `unit`'s binary into `out/bootstrap`; returns the files the build
/// read outside the unit's folder (workspace manifests and lock file, path
/// dependencies), so the cache keys on them.
pub(super) async fn build(unit: &BuildUnit, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    require("cargo")?;
    require("cargo-lambda")?;
    let binary = match unit.build_properties().get("Binary") {
        None => None,
        Some(Value::String(binary)) => Some(binary.as_str()),
        Some(_) => return Err(WorkflowError::Property { name: "Binary", expected: "a string (a binary's name)" }),
    };
    // As sam: cargo writes to `target/` in the source folder (or the member's
    // folder of a workspace) unless the user chose another target folder.
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => unit.source_dir.join(dir),
        None => unit.source_dir.join("target"),
    };
    let mut cargo = cargo(unit, &target_dir);
    cargo.args(build_args(unit, binary, host_compiler_allowed(&unit.source_dir)));
    run(cargo, "RustCargoLambdaBuilder:CargoLambdaBuild").await?;

    // RustCopyAndRename: `target/lambda/<binary>/bootstrap`, or the only
    // binary cargo-lambda built.
    let lambda = target_dir.join("lambda");
    let folder = match binary {
        Some(binary) => lambda.join(binary),
        None => {
            let mut built: Vec<PathBuf> =
                std::fs::read_dir(&lambda).map_err(io_error(&lambda))?.flatten().map(|e| e.path()).collect();
            if built.len() != 1 {
                return Err(WorkflowError::CargoBinary(lambda));
            }
            built.remove(0)
        }
    };
    let bootstrap = folder.join("bootstrap");
    std::fs::copy(&bootstrap, out.join("bootstrap")).map_err(io_error(&bootstrap))?;
    read_outside(unit, binary, &target_dir).await
}

/// `cargo` in the unit's folder with the target folder the build uses (an
/// empty `CARGO_TARGET_DIR` would make cargo fail).
fn cargo(unit: &BuildUnit, target_dir: &Path) -> Command {
    let mut cargo = super::tool("cargo");
    cargo.current_dir(&unit.source_dir).env("CARGO_TARGET_DIR", target_dir);
    cargo
}

/// sam's `cargo lambda build` arguments, and `--compiler cargo` where the
/// host's own toolchain builds the binary (so zig is needed only to cross
/// compile or to link against provided.al2's older glibc).
fn build_args(unit: &BuildUnit, binary: Option<&str>, host_compiler_allowed: bool) -> Vec<String> {
    let mut args: Vec<String> = ["lambda", "build", "--release"].map(String::from).to_vec();
    let arch = unit.machine();
    let old_glibc = unit.runtime == "provided.al2";
    if old_glibc {
        // provided.al2 has glibc 2.26; cargo-lambda's default links newer.
        args.extend(["--target".to_string(), format!("{arch}-unknown-linux-gnu.2.26")]);
    } else if arch == "aarch64" {
        args.push("--arm64".to_string());
    }
    if host_compiler_allowed && !old_glibc && arch == std::env::consts::ARCH {
        args.extend(["--compiler", "cargo"].map(String::from));
    }
    if let Some(binary) = binary {
        args.extend(["--bin".to_string(), binary.to_string()]);
    }
    args
}

/// Whether accel may choose the compiler: not when the user chose one
/// (`CARGO_LAMBDA_COMPILER`, `CargoLambda.toml`, or `compiler` under
/// `[package|workspace.metadata.lambda.build]` in Cargo.toml).
fn host_compiler_allowed(source_dir: &Path) -> bool {
    if std::env::var_os("CARGO_LAMBDA_COMPILER").is_some() || source_dir.join("CargoLambda.toml").is_file() {
        return false;
    }
    let manifest: toml::Table =
        std::fs::read_to_string(source_dir.join("Cargo.toml")).ok().and_then(|t| t.parse().ok()).unwrap_or_default();
    !["package", "workspace"].iter().any(|section| {
        manifest
            .get(*section)
            .and_then(|s| s.get("metadata"))
            .and_then(|m| m.get("lambda"))
            .and_then(|l| l.get("build"))
            .and_then(|b| b.get("compiler"))
            .is_some()
    })
}

/// What the build read outside the unit's folder: the source files cargo's
/// dep-info lists and the `Cargo.toml` of each package they belong to, the
/// workspace's `Cargo.toml` and `Cargo.lock`, and cargo's configuration in
/// the folders above (`.cargo/config.toml`, `rust-toolchain.toml`).
/// Registry and git sources are left out (the lock file pins them), and so
/// is the target folder. Nothing here resolves or downloads crates. The
/// dep-info is the named binary's, else every binary's in the target folder.
async fn read_outside(
    unit: &BuildUnit,
    binary: Option<&str>,
    target_dir: &Path,
) -> Result<Vec<PathBuf>, WorkflowError> {
    let mut read = Vec::new();
    let arch = unit.machine();
    let release = target_dir.join(format!("{arch}-unknown-linux-gnu/release"));
    let dep_info = |path: &Path| match binary {
        Some(binary) => path.file_name().is_some_and(|name| *name == *format!("{binary}.d")),
        None => path.extension().is_some_and(|e| e == "d"),
    };
    for entry in std::fs::read_dir(&release).into_iter().flatten().flatten() {
        if dep_info(&entry.path()) {
            let text = std::fs::read_to_string(entry.path()).map_err(io_error(&entry.path()))?;
            read.extend(dep_info_sources(&text));
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let outside = |p: &Path| {
        !p.starts_with(&unit.source_dir)
            && !p.starts_with(target_dir)
            && cargo_home.as_ref().is_none_or(|home| !p.starts_with(home))
    };
    let mut read: Vec<PathBuf> = read.iter().map(|p| inputs::normalize(p)).filter(|p| outside(p)).collect();
    let manifests: Vec<PathBuf> = read
        .iter()
        .filter_map(|source| source.ancestors().map(|dir| dir.join("Cargo.toml")).find(|m| m.is_file()))
        .collect();
    read.extend(manifests);
    let mut locate = cargo(unit, target_dir);
    locate.args(["locate-project", "--workspace", "--message-format", "plain"]);
    let root = output(locate, "RustCargoLambdaBuilder:CargoLambdaBuild").await?;
    let root = PathBuf::from(String::from_utf8_lossy(&root).trim());
    read.extend([root.with_file_name("Cargo.lock"), root]);
    for dir in unit.source_dir.ancestors().skip(1) {
        let configs = [".cargo/config.toml", ".cargo/config", "rust-toolchain.toml", "rust-toolchain"];
        read.extend(configs.iter().map(|name| dir.join(name)).filter(|file| file.is_file()));
    }
    let mut read: Vec<PathBuf> = read.into_iter().filter(|p| outside(p)).collect();
    read.sort();
    read.dedup();
    Ok(read)
}

/// The prerequisites of a Makefile-style dep-info file (`out: a b\ c`),
/// with `\ ` unescaped.
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let Some((_, prerequisites)) = line.split_once(": ") else { continue };
        let mut current = String::new();
        let mut chars = prerequisites.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ' ' if !current.is_empty() => sources.push(PathBuf::from(std::mem::take(&mut current))),
                ' ' => {}
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            sources.push(PathBuf::from(current));
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function unit of `runtime` and `architecture`.
    fn unit(runtime: &str, architecture: &str) -> BuildUnit {
        BuildUnit::function(super::super::Workflow::CargoLambda, runtime, architecture, Path::new("/src"))
    }

    #[test]
    fn arguments_follow_sam_and_pick_the_host_compiler_on_a_matching_host() {
        let args = |runtime, arch, binary| build_args(&unit(runtime, arch), binary, true).join(" ");
        let host = if std::env::consts::ARCH == "x86_64" { "x86_64" } else { "arm64" };
        let other = if host == "x86_64" { "arm64" } else { "x86_64" };
        assert_eq!(args("provided.al2023", host, Some("hello")), "lambda build --release --compiler cargo --bin hello");
        assert!(args("provided.al2023", "arm64", None).contains("--arm64"));
        assert!(!args("provided.al2023", other, None).contains("--compiler"), "zig cross compiles");
        assert_eq!(
            args("provided.al2", "x86_64", None),
            "lambda build --release --target x86_64-unknown-linux-gnu.2.26",
            "glibc 2.26 needs zig"
        );
        assert!(!build_args(&unit("provided.al2023", host), None, false).join(" ").contains("--compiler"));
    }

    #[test]
    fn dep_info_lists_prerequisites_with_escaped_spaces() {
        let text = "/t/release/hello: /w/src/main.rs /w/my\\ lib/lib.rs\n\n/w/src/main.rs:\n";
        assert_eq!(dep_info_sources(text), [PathBuf::from("/w/src/main.rs"), PathBuf::from("/w/my lib/lib.rs")]);
    }

    #[test]
    fn a_compiler_in_cargo_toml_is_the_users_choice() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
        assert!(host_compiler_allowed(dir.path()));
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"a\"\n[package.metadata.lambda.build]\ncompiler = { type = \"cargo\" }\n",
        )
        .unwrap();
        assert!(!host_compiler_allowed(dir.path()));
    }
}
