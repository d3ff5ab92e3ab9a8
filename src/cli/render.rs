//! The flag definitions of [`args`](super::args) rendered for people and
//! shells: completion scripts and man pages, so both always match the parser.

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// One man page: its file name (`accel.1`, `accel-build.1`, …) and roff text.
#[derive(Debug)]
pub(crate) struct ManPage {
    /// File name, section suffix included.
    pub(crate) file_name: String,
    /// The page, in roff.
    pub(crate) roff: Vec<u8>,
}

/// The completion script of `shell` for every command and flag.
pub(crate) fn completion(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    // The parser's own definition, so `accel help <TAB>` completes too.
    clap_complete::generate(shell, &mut Cli::command(), "accel", &mut script);
    script
}

/// `accel.1`, the tool's page, which lists the commands.
pub(crate) fn man_page() -> ManPage {
    man_page_of(man_definition())
}

/// `accel.1`, then one page per visible command in help order.
pub(crate) fn man_pages() -> Vec<ManPage> {
    let root = man_definition();
    let commands: Vec<clap::Command> = root.get_subcommands().filter(|c| !c.is_hide_set()).cloned().collect();
    std::iter::once(root).chain(commands).map(man_page_of).collect()
}

/// The parser's definition for man pages: built (so subcommands know their
/// `accel-NAME` page names) and without clap's `help` subcommand, which
/// has no page.
fn man_definition() -> clap::Command {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    cli
}

/// The page of `command` (the tool or one of its commands).
fn man_page_of(command: clap::Command) -> ManPage {
    // Every page's footer names the tool, not the subcommand.
    let source = format!("accel {}", command.get_version().unwrap_or_default());
    let man = clap_mangen::Man::new(command).source(source);
    let mut roff = Vec::new();
    man.render(&mut roff).expect("rendering into memory cannot fail");
    ManPage { file_name: man.get_filename(), roff }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_the_tool_and_each_command() {
        let names: Vec<String> = man_pages().into_iter().map(|p| p.file_name).collect();
        assert_eq!(
            names,
            ["accel.1", "accel-build.1", "accel-sync.1", "accel-logs.1", "accel-completion.1", "accel-man.1"]
        );
    }
}
