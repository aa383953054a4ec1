//! Whether output may be coloured: only on a terminal, and never when `NO_COLOR` is set to a
//! non-empty value (<https://no-color.org>). The logs of both binaries follow it, so a log file
//! or a pipe never receives escape codes.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The variable that turns colour off whatever the terminal (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// Whether to colour what is written to `stream` (e.g. `std::io::stderr()`), given the
/// process environment.
pub fn colour_enabled(stream: &impl IsTerminal) -> bool {
    colour_allowed(stream.is_terminal(), std::env::var_os(NO_COLOR).as_deref())
}

/// The rule itself: a terminal, and `NO_COLOR` unset or empty (the convention says an empty
/// value does not count as set).
pub fn colour_allowed(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
        assert!(!colour_allowed(false, Some(OsStr::new("1"))));
    }
}
