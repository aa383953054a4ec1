//! What both binaries' command lines share beyond their flags: the `--version` text, the
//! environment help under `--help`, and the `completions` and `man` commands, generated from
//! each binary's own clap [`Command`] so they never drift from the flags.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// `--version` of both binaries: the workspace version and the git revision of the build
/// (`build.rs`: `unknown` outside a git checkout, `-dirty` when tracked files differed).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BALLAST_GIT_REVISION"),
    ")"
);

/// The `Environment:` section under `--help` of both binaries; `default_filter` is the
/// binary's log filter when neither variable is set.
pub fn environment_help(default_filter: &str) -> String {
    format!(
        "Environment:\n  \
         BALLAST_LOG         Log filter, in tracing's EnvFilter syntax (e.g. `debug` or\n                      \
         `info,ballast_aws=debug`); else RUST_LOG; default `{default_filter}`\n  \
         BALLAST_LOG_FORMAT  Log format, `text` or `json` (as --log-format)\n  \
         NO_COLOR            When set and not empty, logs are never coloured (they are\n                      \
         coloured only when standard error is a terminal)\n\n\
         Logs go to standard error; standard output carries only the command's output."
    )
}

/// `--values FILE` (repeatable) of every command that reads a blueprint, in both binaries: the
/// environment's values files laid over it, in order, the last one winning
/// ([`ballast_blueprint::load_with_values`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ValuesArgs {
    /// A values file laid over the blueprint (repeatable, in order, the last one winning):
    /// one environment's names, sizes and counts. See README, "Environments".
    // The id is the flag's name: `files` is taken by commands' own positional arguments.
    #[arg(id = "values", long = "values", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl ValuesArgs {
    /// Loads `blueprint` with these values files laid over it.
    pub fn load(
        &self,
        blueprint: &Path,
    ) -> Result<ballast_blueprint::Loaded, ballast_blueprint::LoadError> {
        ballast_blueprint::load_with_values(blueprint, &self.files)
    }
}

/// `completions SHELL`: the completion script for one shell, on standard output.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `man`: the manual page, on standard output, or every page into a directory.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write the page of the command and one per subcommand (`NAME.1`, `NAME-SUB.1`, …) into
    /// this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Why a completion script or manual page could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CliAssetError {
    /// Writing to standard output (or the given writer) failed, e.g. a closed pipe.
    #[error("cannot write the output")]
    Write(#[source] std::io::Error),
    /// A page could not be written into `--dir`.
    #[error("cannot write {}", path.display())]
    File {
        /// The page's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `man`: the page of `command` on `out`, or with `--dir` every page into the directory (made
/// if missing) and their paths on `out`, one per line.
pub fn run_man(
    command: &Command,
    args: &ManArgs,
    out: &mut impl Write,
) -> Result<(), CliAssetError> {
    let Some(dir) = &args.dir else {
        return write_man(command, out);
    };
    std::fs::create_dir_all(dir).map_err(|source| CliAssetError::File {
        path: dir.clone(),
        source,
    })?;
    for path in write_man_pages(command, dir)? {
        writeln!(out, "{}", path.display()).map_err(CliAssetError::Write)?;
    }
    Ok(())
}

/// Writes the completion script of `command` for `shell` to `out`.
pub fn write_completions(
    command: &mut Command,
    shell: Shell,
    out: &mut impl Write,
) -> Result<(), CliAssetError> {
    // clap_complete panics when its writer fails; it writes into memory here, and only the
    // copy to `out` can fail (a closed pipe), as a typed error.
    let mut script = Vec::new();
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, command, name, &mut script);
    out.write_all(&script).map_err(CliAssetError::Write)
}

/// Writes the manual page of `command` (section 1) to `out`.
pub fn write_man(command: &Command, out: &mut impl Write) -> Result<(), CliAssetError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(CliAssetError::Write)?;
    out.write_all(&page).map_err(CliAssetError::Write)
}

/// Writes the page of `command` and of each subcommand, recursively, into `dir`
/// (`ballast.1`, `ballast-plan.1`, `ballast-fleet-local.1`, …); returns the files written.
pub fn write_man_pages(command: &Command, dir: &Path) -> Result<Vec<PathBuf>, CliAssetError> {
    // Building names each subcommand as `man` looks it up (`ballast-plan`, its display name)
    // and as it is typed (`ballast plan`, its bin name, in the SYNOPSIS).
    let mut command = command.clone();
    command.build();
    let mut written = Vec::new();
    write_pages(&command, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: &Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliAssetError> {
    let name = command.get_display_name().unwrap_or(command.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    write_man(command, &mut page)?;
    std::fs::write(&path, page).map_err(|source| CliAssetError::File {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    // clap's generated `help` subcommand gets no page of its own.
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Debug, Parser)]
    #[command(name = "tool", version = VERSION, after_help = environment_help("info"))]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        /// Run it.
        Run,
        /// Shell completions.
        Completions(CompletionsArgs),
    }

    #[test]
    fn the_version_names_the_revision_of_the_build() {
        let revision = env!("BALLAST_GIT_REVISION");
        assert!(!revision.is_empty());
        assert_eq!(
            VERSION,
            format!("{} ({revision})", env!("CARGO_PKG_VERSION"))
        );
        let version = Cli::command().render_version().to_string();
        assert_eq!(version, format!("tool {VERSION}\n"));
    }

    #[test]
    fn the_help_documents_the_log_variables_and_no_color() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "BALLAST_LOG ",
            "RUST_LOG",
            "BALLAST_LOG_FORMAT",
            "NO_COLOR",
            "`info`",
        ] {
            assert!(help.contains(needle), "{needle} missing from\n{help}");
        }
    }

    #[test]
    fn completions_and_man_pages_come_from_the_command() {
        let mut bash = Vec::new();
        write_completions(&mut Cli::command(), Shell::Bash, &mut bash).unwrap();
        let bash = String::from_utf8(bash).unwrap();
        assert!(bash.contains("complete -F _tool"), "{bash}");
        assert!(bash.contains("completions"), "{bash}");

        let dir = std::env::temp_dir().join(format!("ballast-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let written = write_man_pages(&Cli::command(), &dir).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-run.1", "tool-completions.1"]);
        let run = std::fs::read_to_string(dir.join("tool-run.1")).unwrap();
        let run = run.replace("\\-", "-");
        assert!(run.contains(".TH tool-run 1"), "{run}");
        assert!(
            run.contains("tool run"),
            "the synopsis shows how it is typed: {run}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_closed_writer_is_a_typed_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = write_completions(&mut Cli::command(), Shell::Zsh, &mut Closed).unwrap_err();
        assert!(
            matches!(err, CliAssetError::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
        );
    }
}
