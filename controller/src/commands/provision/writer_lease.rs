//! The writer lease and the suspension record: taken by `apply` and `destroy`, recorded by
//! `suspend`/`resume`, broken by `force-unlock`.

use super::*;

/// How long the CLI's writer lease lasts unless renewed, and how often it is renewed. Short, so
/// that an apply killed with SIGKILL (which cannot release it) blocks the next writer for at most
/// this long; renewed three times per period, so two slow DynamoDB answers in a row do not lose
/// it.
pub(super) const LEASE_DURATION: Duration = Duration::from_secs(15);
pub(super) const LEASE_RENEW_EVERY: Duration = Duration::from_secs(5);

/// Takes the blueprint's writer lease (the one a controller running it holds) before anything is
/// written, or fails naming whoever holds it. `apply` and `destroy` never write without it.
pub(super) async fn take_writer_lease(
    dynamodb: &aws_sdk_dynamodb::Client,
    bp: &Blueprint,
    table: &str,
) -> anyhow::Result<HeldLease> {
    lease::ensure_table(dynamodb, table)
        .await
        .with_context(|| format!("preparing the lease table `{table}`"))?;
    let spec = LeaseSpec {
        name: blueprint_lease_name(&bp.metadata.name),
        holder: format!("cli@{}", default_holder()),
        duration: LEASE_DURATION,
    };
    let lease = DynamoLease::new(
        dynamodb.clone(),
        table.to_string(),
        spec,
        Arc::new(SystemClock::new()),
    );
    match lease
        .try_acquire()
        .await
        .with_context(|| format!("taking the writer lease in `{table}`"))?
    {
        LeaseStatus::Held { until } => {
            tracing::info!(lease = %lease.spec().name, holder = %lease.spec().holder, until = %format_time(until), "took the writer lease");
            Ok(HeldLease::start(lease.into(), LEASE_RENEW_EVERY))
        }
        LeaseStatus::HeldByOther { holder, until } => bail!(
            "another writer holds the lease for blueprint {}: {holder} until {}; wait for it or stop that controller \
             (a writer that was killed cannot release it: `ballast force-unlock FILE` removes it after asking)",
            bp.metadata.name,
            format_time(until)
        ),
    }
}

/// Refuses to write while the blueprint is suspended (`ballast suspend`), naming who suspended
/// it, when and why. Read under the writer lease, so a controller cannot be converging at the
/// same time; `--ignore-suspension` writes once and leaves the suspension in place (an operator
/// fixing something by blueprint while the controller stays paused).
pub(super) async fn check_not_suspended(
    dynamodb: &aws_sdk_dynamodb::Client,
    bp: &Blueprint,
    args: &crate::cli::ApplyArgs,
    verb: &str,
) -> anyhow::Result<()> {
    let table = &args.lease_table;
    let Some(suspension) = Suspensions::new(dynamodb.clone(), table.clone())
        .read(&bp.metadata.name)
        .await
        .with_context(|| format!("reading the blueprint's suspension in `{table}`"))?
    else {
        return Ok(());
    };
    if args.ignore_suspension {
        tracing::warn!(blueprint = %bp.metadata.name, %suspension, "blueprint is suspended; going on (--ignore-suspension)");
        return Ok(());
    }
    bail!(
        "blueprint `{}` is {suspension}; refusing to {verb}, nothing was changed. \
         `ballast resume {}` ends the suspension (a running controller then converges at its next resync); \
         `--ignore-suspension` would {verb} once and keep it suspended",
        bp.metadata.name,
        args.file.display()
    )
}

/// `ballast suspend`: records the suspension in the lease table. It takes no lease, so an
/// apply in progress finishes; a running controller stops writing at its next resync.
pub async fn suspend(
    args: &crate::cli::SuspendArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values.files)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = &args.lease_table;
    lease::ensure_table(&dynamodb, table)
        .await
        .with_context(|| format!("preparing the lease table `{table}`"))?;
    let suspension = Suspension {
        by: args.by.clone().unwrap_or_else(default_suspender),
        at: std::time::SystemTime::now(),
        reason: args.reason.clone(),
    };
    let name = &bp.metadata.name;
    match Suspensions::new(dynamodb, table.clone())
        .suspend(name, &suspension)
        .await
        .with_context(|| format!("recording the suspension in `{table}`"))?
    {
        SuspendOutcome::Suspended => writeln!(
            out,
            "Blueprint `{name}` is {suspension}.\n`ballast apply` and `ballast destroy` refuse, and `ballast run` observes and reports only \
             (from its next resync), until `ballast resume {}`.",
            args.file.display()
        )?,
        SuspendOutcome::AlreadySuspended(existing) => writeln!(
            out,
            "Blueprint `{name}` is already {existing}; that record is kept."
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `ballast resume`: removes the suspension record.
pub async fn resume(
    args: &crate::cli::ResumeArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values.files)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let table = &args.lease_table;
    let name = &bp.metadata.name;
    match Suspensions::new(aws_sdk_dynamodb::Client::new(&config), table.clone())
        .resume(name)
        .await
        .with_context(|| format!("removing the suspension in `{table}`"))?
    {
        Some(was) => writeln!(
            out,
            "Resumed blueprint `{name}` (it was {was}); a running controller converges at its next resync."
        )?,
        None => writeln!(out, "Blueprint `{name}` was not suspended.")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` under the lease: stops it if the lease is lost, and releases the lease at the
/// end, also on error.
pub(super) async fn holding<T>(
    mut held: HeldLease,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let result = tokio::select! {
        result = work => result,
        lost = held.lost() => Err(anyhow::Error::new(lost)
            .context("stopped before finishing: the writer lease was lost; run it again to converge")),
    };
    if let Err(error) = held.release().await {
        tracing::warn!(%error, "could not release the writer lease; it expires on its own");
    }
    result
}

/// `ballast force-unlock`: removes the blueprint's writer lease after showing who holds it and
/// asking. Only the lease shown is removed (a conditional delete on its holder and expiry); if the
/// holder is in fact alive, its next renewal fails and it stops writing.
pub async fn force_unlock(
    args: &crate::cli::ApplyArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values.files)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let spec = LeaseSpec {
        name: blueprint_lease_name(&bp.metadata.name),
        holder: format!("cli@{}", default_holder()),
        duration: LEASE_DURATION,
    };
    let lease = DynamoLease::new(
        aws_sdk_dynamodb::Client::new(&config),
        args.lease_table.clone(),
        spec,
        Arc::new(SystemClock::new()),
    );
    let table = &args.lease_table;
    let Some(record) = lease
        .read()
        .await
        .with_context(|| format!("reading the writer lease in `{table}`"))?
    else {
        writeln!(
            out,
            "No writer lease is held for blueprint `{}`.",
            bp.metadata.name
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let state = if record.expires_at < std::time::SystemTime::now() {
        "expired at"
    } else {
        "valid until"
    };
    writeln!(
        out,
        "The writer lease of blueprint `{}` is held by {} ({state} {}).",
        bp.metadata.name,
        record.holder,
        format_time(record.expires_at)
    )?;
    out.flush()?;
    if !confirm(
        "If that writer is still running, removing its lease lets two writers change the stack at once. Remove it?",
        args.auto_approve,
    )? {
        writeln!(out, "Lease kept.")?;
        return Ok(ExitCode::FAILURE);
    }
    if lease
        .force_release(&record)
        .await
        .with_context(|| format!("removing the writer lease in `{table}`"))?
    {
        writeln!(out, "Removed the writer lease held by {}.", record.holder)?;
        Ok(ExitCode::SUCCESS)
    } else {
        bail!(
            "the lease changed after it was shown (renewed or taken by another writer); nothing was removed: run force-unlock again to see who holds it now"
        )
    }
}
