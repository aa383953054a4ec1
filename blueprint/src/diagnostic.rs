//! Problems found in a blueprint, each with a position, a field path and a hint.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Position {
    /// Which file: 0 is the blueprint, `n` its `n`-th values file (see `values.rs`). First, so
    /// that positions sort file by file.
    #[serde(skip)]
    pub source: u8,
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// A position in the blueprint file itself.
    pub const fn new(line: usize, column: usize) -> Self {
        Position {
            source: 0,
            line,
            column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub position: Position,
    /// Dotted field path, e.g. `spec.queues[0].visibilityTimeout`; empty for the document.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// The values file the position is in, when it is not the blueprint itself (set when the
    /// diagnostics of a blueprint and its values files are gathered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<str>>,
}

impl Diagnostic {
    pub fn error(position: Position, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            position,
            path: path.into(),
            message: message.into(),
            hint: None,
            file: None,
        }
    }

    pub fn warning(
        position: Position,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(position, path, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COLUMN: error: message (at path)` and, on a second line, the hint. `file` is
    /// the blueprint's; a diagnostic in a values file names that file instead.
    pub fn render(&self, file: &str) -> String {
        let file = self.file.as_deref().unwrap_or(file);
        let mut out = format!(
            "{file}:{}:{}: {}: {}",
            self.position.line,
            self.position.column,
            match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            self.message
        );
        if !self.path.is_empty() {
            out.push_str(&format!(" (at {})", self.path));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
        out
    }
}

/// All the problems of one file, in source order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Diagnostics {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.render(&self.file))?;
        }
        Ok(())
    }
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
