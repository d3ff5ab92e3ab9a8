//! What an install ships beside the binary, both rendered from the flag
//! definitions: shell completion scripts and man pages. Each script must
//! know every command `accel --help` lists, and parse in its shell.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use crate::support::TestContext;

/// Flags every script and page must know: sync's required one, a container
/// flag, and a long form behind one of sam's two-letter shorts (`-cd`).
const FLAGS: [&str; 3] = ["--stack-name", "--use-container", "--cache-dir"];

/// The commands `accel --help` lists (clap's `help` aside), in its order.
fn commands(ctx: &TestContext) -> Vec<String> {
    let help = ctx.accel(&["--help"]).assert_success().stdout;
    let listed: Vec<String> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect();
    assert!(listed.len() >= 5, "no command list in:\n{help}");
    listed
}

/// `accel completion SHELL`, which must succeed.
fn script(ctx: &TestContext, shell: &str) -> String {
    let out = ctx.accel(&["completion", shell]).assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    out.stdout
}

/// Runs `program args` (a shell), or returns `None` where it is not
/// installed (zsh and fish often are not); `.ci/run` installs both, so CI
/// always runs every check.
fn shell(program: &str, args: &[&str], dir: &Path) -> Option<std::process::Output> {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(output) => Some(output),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

fn assert_ran(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_shell_completes_every_command_and_flag() {
    let ctx = TestContext::new();
    let commands = commands(&ctx);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let text = script(&ctx, shell);
        // fish declares long flags without their dashes (`-l stack-name`).
        let flags = FLAGS.iter().chain(&["--out-dir"]).map(|flag| flag.trim_start_matches('-'));
        for word in commands.iter().map(String::as_str).chain(flags) {
            assert!(text.contains(word), "`accel completion {shell}` does not name {word}");
        }
    }
    // The shell names its case-insensitively, as sam's choice flags do.
    assert_eq!(script(&ctx, "BASH"), script(&ctx, "bash"));
}

#[test]
fn completion_scripts_parse_and_complete_in_their_shells() {
    let ctx = TestContext::new();
    let commands = commands(&ctx);
    for (name, shell_name) in [("accel.bash", "bash"), ("_accel", "zsh"), ("accel.fish", "fish")] {
        ctx.write(name, &script(&ctx, shell_name));
        let check = if shell_name == "fish" { "--no-execute" } else { "-n" };
        if let Some(out) = shell(shell_name, &[check, name], ctx.path()) {
            assert_ran(&format!("{shell_name} {check} {name}"), &out);
        }
    }
    // bash and fish run their scripts: the words offered after `accel ` and
    // after `accel sync --st`.
    let bash = r#"source accel.bash
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _accel accel "${@: -1}" "${@: -2:1}"; printf '%s\n' "${COMPREPLY[@]}"; }
complete_words accel ''
complete_words accel sync --st"#;
    let fish = "source accel.fish; complete -C 'accel '; complete -C 'accel sync --st'";
    for (program, args) in [("bash", ["-c", bash]), ("fish", ["-c", fish])] {
        let Some(out) = shell(program, &args, ctx.path()) else { continue };
        assert_ran(program, &out);
        let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split('\t').next())
            .map(String::from)
            .collect();
        for word in commands.iter().chain([&"--stack-name".to_string()]) {
            assert!(offered.contains(word), "{program} does not offer {word}: {offered:?}");
        }
    }
}

#[test]
fn completion_reads_no_samconfig() {
    let ctx = TestContext::new();
    ctx.write("samconfig.toml", "not [ toml");
    script(&ctx, "bash");
    ctx.accel(&["man"]).assert_success();
}

#[test]
fn man_prints_the_tool_page() {
    let ctx = TestContext::new();
    let page = ctx.accel(&["man"]).assert_success().stdout;
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "not roff:\n{page}");
    assert!(page.contains("\n.TH accel 1 "), "no title line:\n{page}");
    assert!(page.contains(".SH SYNOPSIS"), "{page}");
    for command in commands(&ctx) {
        assert!(page.contains(&format!("accel\\-{}(1)", roff(&command))), "accel.1 does not list {command}");
    }
}

#[test]
fn man_out_dir_writes_a_page_per_command() {
    let ctx = TestContext::new();
    let out = ctx.accel(&["man", "--out-dir", "share/man/man1"]).assert_success();
    let dir = ctx.join("share/man/man1");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut expected: Vec<String> =
        std::iter::once("accel.1".to_string()).chain(commands(&ctx).iter().map(|c| format!("accel-{c}.1"))).collect();
    expected.sort();
    assert_eq!(names, expected);
    // It names what it wrote, one path a line.
    assert_eq!(out.stdout.lines().count(), expected.len(), "{out}");
    assert_eq!(ctx.read("share/man/man1/accel.1"), ctx.accel(&["man"]).assert_success().stdout);
    for command in commands(&ctx) {
        let page = ctx.read(&format!("share/man/man1/accel-{command}.1"));
        assert!(page.contains(&format!("\n.TH accel-{command} 1 ")), "accel-{command}.1:\n{page}");
    }
    let sync = ctx.read("share/man/man1/accel-sync.1");
    let build = ctx.read("share/man/man1/accel-build.1");
    for flag in FLAGS {
        let flag = roff(flag);
        assert!(sync.contains(&flag) || build.contains(&flag), "no page documents {flag}");
    }
    assert!(sync.contains(&roff("--stack-name")), "{sync}");
    // The short of sam's that clap cannot declare is documented in its help text.
    assert!(build.contains(&roff("(short -cd)")), "{build}");
}

/// `text` as roff writes it: every hyphen escaped.
fn roff(text: &str) -> String {
    text.replace('-', "\\-")
}
