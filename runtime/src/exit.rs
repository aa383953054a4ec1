//! How both binaries end: the exit code of a command, or its error rendered once on standard
//! error.
//!
//! Two conventions of command-line tools live here:
//!
//! - **A closed pipe is not an error.** Rust ignores `SIGPIPE`, so `ballast plan | head -1`
//!   sees its next write fail with `BrokenPipe` instead of being killed. Like ripgrep, the
//!   process then ends quietly with exit code 0: the reader asked for no more output, nothing
//!   failed. (A C tool killed by `SIGPIPE` reports 141 in a shell; ripgrep and most Rust tools
//!   chose 0, and a pipeline's status is its last command's anyway.)
//! - **Every cause once.** Many errors say their cause in their own message *and* return it
//!   as their `source()` (`cannot read x: permission denied`, an AWS error whose message is
//!   the SDK's failure). The report prints the chain but leaves out a cause whose text an
//!   earlier line already contains, so the reader sees each fact once.

use std::error::Error;
use std::io::ErrorKind;
use std::process::ExitCode;

/// The process exit code of a command's result: its own code, 0 after a closed pipe, or 1
/// after printing the error with [`report`] on standard error.
pub fn exit_code<E>(result: Result<ExitCode, E>) -> ExitCode
where
    E: AsRef<dyn Error + Send + Sync + 'static>,
{
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(error.as_ref()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Whether `error`, or any of its causes, is a write to a closed pipe. A JSON writer's error is
/// looked into too: `serde_json::Error` keeps the I/O error inside rather than as its source.
pub fn is_broken_pipe(error: &(dyn Error + 'static)) -> bool {
    causes(error).any(|cause| {
        let kind = if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            Some(io.kind())
        } else {
            cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
        };
        kind == Some(ErrorKind::BrokenPipe)
    })
}

/// `Error: <error>` and, below, each cause not already said by an earlier line:
///
/// ```text
/// Error: observing queue/transactions
///
/// Caused by:
///     sqs:GetQueueUrl failed: dispatch failure: io error: Connection refused (os error 111)
/// ```
pub fn report(error: &(dyn Error + 'static)) -> String {
    let mut lines: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        if text.is_empty() || lines.iter().any(|line| line.contains(&text)) {
            continue;
        }
        lines.push(text);
    }
    let mut lines = lines.into_iter();
    let mut out = format!("Error: {}", lines.next().unwrap_or_default());
    let rest: Vec<String> = lines.collect();
    match rest.as_slice() {
        [] => {}
        [only] => out.push_str(&format!("\n\nCaused by:\n    {only}")),
        many => {
            out.push_str("\n\nCaused by:");
            for (i, cause) in many.iter().enumerate() {
                out.push_str(&format!("\n    {i}: {cause}"));
            }
        }
    }
    out
}

/// `error` and its sources, outermost first.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn Error + 'static)| (*e).source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{context}")]
    struct Context {
        context: String,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    }

    fn wrap(context: &str, source: impl Error + Send + Sync + 'static) -> Context {
        Context {
            context: context.to_owned(),
            source: Box::new(source),
        }
    }

    #[test]
    fn a_cause_already_in_an_earlier_line_is_left_out() {
        let io = std::io::Error::new(ErrorKind::ConnectionRefused, "Connection refused");
        // The middle error repeats its cause in its message, as thiserror's `{source}` does.
        let error = wrap(
            "observing",
            wrap("sqs:GetQueueUrl failed: Connection refused", io),
        );
        assert_eq!(
            report(&error),
            "Error: observing\n\nCaused by:\n    sqs:GetQueueUrl failed: Connection refused"
        );
    }

    #[test]
    fn distinct_causes_are_numbered() {
        let io = std::io::Error::other("disk full");
        let error = wrap("saving", wrap("writing plan.json", io));
        assert_eq!(
            report(&error),
            "Error: saving\n\nCaused by:\n    0: writing plan.json\n    1: disk full"
        );
        assert!(!is_broken_pipe(&error));
    }

    struct Closed;

    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_anywhere_in_the_chain_ends_quietly() {
        let pipe = std::io::Error::from(ErrorKind::BrokenPipe);
        let error = wrap("printing the plan", pipe);
        assert!(is_broken_pipe(&error));
        let json = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        assert!(is_broken_pipe(&json), "{json}");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(error);
        assert_eq!(
            exit_code::<Box<dyn Error + Send + Sync>>(Err(boxed)),
            ExitCode::SUCCESS
        );
        let failed: Box<dyn Error + Send + Sync> = Box::new(std::io::Error::other("x"));
        assert_eq!(exit_code(Err(failed)), ExitCode::FAILURE);
        assert_eq!(
            exit_code::<Box<dyn Error + Send + Sync>>(Ok(ExitCode::from(2))),
            ExitCode::from(2)
        );
    }
}
