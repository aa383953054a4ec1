use std::io::Write;
use std::process::ExitCode;

use ballast_blueprint::{Diagnostic, LoadError, dependency_order};

use crate::ci;
use crate::cli::{ReportFormat, ValidateArgs};

#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
    /// Why the file could not be read at all (missing, unreadable); it has no diagnostics then.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    hint: Option<&'static str>,
}

/// Validates every file and reports every problem of each; never touches AWS.
pub fn run(
    args: &ValidateArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<ExitCode> {
    let mut reports = Vec::new();
    for path in &args.files {
        let file = path.display().to_string();
        let report = match ballast_blueprint::load_with_values(path, &args.values.files) {
            Ok(loaded) => FileReport {
                file,
                valid: true,
                diagnostics: loaded.warnings,
                resources: dependency_order(&loaded.blueprint)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                error: None,
                hint: None,
            },
            Err(LoadError::Invalid(diagnostics)) => FileReport {
                file,
                valid: false,
                diagnostics: diagnostics.items,
                resources: Vec::new(),
                error: None,
                hint: None,
            },
            Err(io @ LoadError::Io { .. }) => FileReport {
                file,
                valid: false,
                diagnostics: Vec::new(),
                resources: Vec::new(),
                hint: io.hint(),
                error: Some(io.to_string()),
            },
        };
        reports.push(report);
    }
    let all_valid = reports.iter().all(|r| r.valid);
    match args.output {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &reports)?;
            writeln!(out)?;
        }
        ReportFormat::Github => {
            for report in &reports {
                write!(
                    out,
                    "{}",
                    ci::diagnostics_annotations(&report.file, &report.diagnostics)
                )?;
                if let Some(error) = &report.error {
                    let hint = report
                        .hint
                        .map(|h| format!("\nhint: {h}"))
                        .unwrap_or_default();
                    write!(
                        out,
                        "{}",
                        ci::file_annotation(&report.file, &format!("{error}{hint}"))
                    )?;
                }
            }
        }
        ReportFormat::Markdown => {
            writeln!(out, "### Ballast validate\n")?;
            for report in &reports {
                let verdict = match (&report.error, report.valid) {
                    (Some(error), _) => format!("cannot be read: {error}"),
                    (None, true) => format!("valid ({} resources)", report.resources.len()),
                    (None, false) => "invalid".to_string(),
                };
                writeln!(out, "- `{}`: {verdict}", report.file)?;
                let table = ci::diagnostics_markdown(&report.file, &report.diagnostics);
                if !table.is_empty() {
                    writeln!(out, "\n{table}")?;
                }
            }
        }
        ReportFormat::Text => {
            for report in &reports {
                for d in &report.diagnostics {
                    writeln!(err, "{}", d.render(&report.file))?;
                }
                if report.valid {
                    writeln!(
                        out,
                        "{}: valid ({} resources)",
                        report.file,
                        report.resources.len()
                    )?;
                    if args.list {
                        for (i, resource) in report.resources.iter().enumerate() {
                            writeln!(out, "  {:>2}. {resource}", i + 1)?;
                        }
                    }
                } else if let Some(error) = &report.error {
                    writeln!(err, "{}: error: {error}", report.file)?;
                    if let Some(hint) = report.hint {
                        writeln!(err, "  hint: {hint}")?;
                    }
                } else {
                    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
                    writeln!(
                        err,
                        "{}: invalid ({errors} error{})",
                        report.file,
                        if errors == 1 { "" } else { "s" }
                    )?;
                }
            }
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
