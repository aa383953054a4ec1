//! `ballast trace export`: a queue's CloudWatch history as a trace for `ballast simulate`.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;

use crate::cli::TraceExportArgs;
use crate::simulate::export::export_trace;

/// Resolves the blueprint's queue to its physical name and prints the trace.
pub async fn export(args: &TraceExportArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let loaded = args.values.load(&args.blueprint)?;
    let bp = &loaded.blueprint;
    let queue = bp.queue(&args.queue).with_context(|| {
        let names: Vec<&str> = bp.spec.queues.iter().map(|q| q.name.as_str()).collect();
        format!(
            "{}: no queue named `{}` (hint: --queue takes a queue's `name`; the blueprint has: {})",
            args.blueprint.display(),
            args.queue,
            names.join(", ")
        )
    })?;
    let sdk = ballast_aws::load_sdk_config_with_default_region(
        &args.aws.options(),
        Some(&bp.metadata.region),
    )
    .await?;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let text = export_trace(&cw, &bp.queue_name(queue), args.since, SystemTime::now()).await?;
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
