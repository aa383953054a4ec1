use std::io::Write;
use std::process::ExitCode;

/// The committed `blueprints/schema.json` is this output; a test keeps the two identical.
pub fn render() -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(ballast_blueprint::json_schema())?;
    text.push('\n');
    Ok(text)
}

pub fn run(out: &mut impl Write) -> std::io::Result<ExitCode> {
    out.write_all(render()?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
