//! `ballast-worker serve`: the ingest and accounts API, with the sweeper and the bill-payment
//! runner beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::api::auth::{AuthError, Authenticator, KNOWN_SCOPES};
use crate::api::jwks::{JwksError, JwksKeys, JwksSource, JwksTimers};
use crate::api::rate::RateLimit;
use crate::api::sweep::{SweepError, Sweeper};
use crate::api::tls::{TlsError, server_config};
use crate::api::{ApiConfig, ApiState};
use crate::bills::runner::{BillRunner, RunError};
use crate::cli::ServeArgs;
use crate::config::{ConfigError, load_blueprint, resolve};
use crate::ledger::Ledger;
use ballast_runtime::{Clock, SystemClock};

/// Environment variable holding the HS256 secret.
pub const HS256_SECRET_ENV: &str = "BALLAST_JWT_HS256_SECRET";

/// Why `serve` or `token` failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Targets or blueprint.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// AWS configuration.
    #[error(transparent)]
    AwsConfig(#[from] ballast_aws::ConfigError),
    /// Key material.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No key configured.
    #[error(
        "no token key configured; hint: set {HS256_SECRET_ENV}, --jwt-hs256-secret-file, \
         --jwt-public-key-file, --jwks-url or --jwks-file"
    )]
    NoKey,
    /// A key file cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// A command's output could not be written (e.g. a closed pipe).
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    /// Plain HTTP on a non-loopback address without `--insecure-http`.
    #[error(
        "refusing to serve plain HTTP on the non-loopback address {addr}: bearer tokens and \
         account data would cross the network unencrypted; hint: pass --tls-cert and --tls-key, \
         listen on 127.0.0.1 behind a TLS-terminating proxy, or pass --insecure-http if TLS is \
         terminated elsewhere on a trusted network"
    )]
    PlaintextListen {
        /// The listen address.
        addr: SocketAddr,
    },
    /// The key set.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// The TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `token --scope` names a scope the API does not know.
    #[error(
        "unknown scope {scope:?}; hint: the known scopes are {}",
        KNOWN_SCOPES.join(", ")
    )]
    UnknownScope {
        /// The scope as given.
        scope: String,
    },
    /// A sweep failed.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// A bill-payment pass failed.
    #[error(transparent)]
    Bills(#[from] RunError),
}

pub(crate) fn read_key(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::ReadKey {
        path: path.to_owned(),
        source,
    })
}

/// The HS256 secret from the file (trailing newline trimmed) or the environment.
pub(crate) fn hs256_secret(file: Option<&Path>) -> Result<Option<Vec<u8>>, ServeError> {
    if let Some(path) = file {
        let mut bytes = read_key(path)?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        return Ok(Some(bytes));
    }
    Ok(std::env::var(HS256_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes))
}

/// Builds the authenticator from the flags (loading the key set once when one is configured).
pub async fn authenticator(
    args: &ServeArgs,
    clock: Arc<dyn Clock>,
) -> Result<Authenticator, ServeError> {
    let audience = args.jwt_audience.as_deref();
    let issuer = args.issuer.as_deref();
    let jwks_source = match (&args.jwks_url, &args.jwks_file) {
        (Some(url), _) => Some(JwksSource::url(url)?),
        (None, Some(path)) => Some(JwksSource::File(path.clone())),
        (None, None) => None,
    };
    if let Some(source) = jwks_source {
        let timers = JwksTimers {
            refresh: args.jwks_refresh,
            min_refetch: args.jwks_min_refetch,
        };
        let keys = JwksKeys::load(source, timers, clock).await?;
        return Ok(Authenticator::jwks(keys, audience).with_issuer(issuer));
    }
    if let Some(path) = &args.jwt_public_key_file {
        return Ok(Authenticator::public_key(
            args.jwt_algorithm.into(),
            &read_key(path)?,
            audience,
        )?
        .with_issuer(issuer));
    }
    let secret = hs256_secret(args.jwt_hs256_secret_file.as_deref())?.ok_or(ServeError::NoKey)?;
    Ok(Authenticator::hs256(&secret, audience)?.with_issuer(issuer))
}

/// Refuses plain HTTP on a non-loopback address unless `--insecure-http` says so.
pub fn check_transport(args: &ServeArgs) -> Result<(), ServeError> {
    if args.tls_cert.is_none() && !args.insecure_http && !args.listen.ip().is_loopback() {
        return Err(ServeError::PlaintextListen { addr: args.listen });
    }
    Ok(())
}

/// `serve`: runs the API until `shutdown` fires.
pub async fn run(args: &ServeArgs, shutdown: CancellationToken) -> Result<ExitCode, ServeError> {
    serve_command(args, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the API until `shutdown` fires.
pub async fn serve_command(
    args: &ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    // Before anything else: nothing should start listening in the clear by accident.
    check_transport(args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server_config(cert, key)?),
        _ => None,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let auth = authenticator(args, clock.clone()).await?;
    let IngestParts {
        ledger,
        sqs,
        queue_url,
    } = ingest_parts(&args.target.config()).await?;
    let config = ApiConfig {
        body_limit: args.body_limit,
        rate_limit: RateLimit {
            per_second: args.rate_limit,
            burst: args.rate_burst,
        },
        trusted_proxies: args.trusted_proxies.clone(),
        sweep_after: args.sweep_after,
    };
    let sweeper = Sweeper::new(
        ledger.clone(),
        sqs.clone(),
        queue_url.clone(),
        args.sweep_after,
    );
    let runner = BillRunner::new(
        ledger.clone(),
        sqs.clone(),
        queue_url.clone(),
        args.sweep_after,
    );
    let jwks = auth.jwks_keys().cloned();
    let state = ApiState::new(ledger, sqs, queue_url, auth, config, clock.clone());
    // The bill runner, like the sweeper, stops with the server; concurrent runners are safe
    // (see `crate::bills::runner`). Its passes are counted on the API's `/metrics`.
    let runner = runner.with_metrics(state.metrics().bill_payments.clone());
    let billing = (!args.bills_interval.is_zero()).then(|| {
        let interval = args.bills_interval;
        let token = shutdown.clone();
        tokio::spawn(async move { runner.run(clock, interval, token).await })
    });
    // The sweeper stops with the server (same token); several `serve` processes may sweep at
    // once, the claim condition keeps each re-send single.
    let sweeping = (!args.sweep_interval.is_zero()).then(|| {
        let interval = args.sweep_interval;
        let token = shutdown.clone();
        tokio::spawn(async move { sweeper.run(interval, token).await })
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: args.listen,
            source,
        })?;
    // The key set's background refresh stops with the server (same token).
    let jwks_refresh = jwks.map(|keys| tokio::spawn(keys.run_refresh(shutdown.clone())));
    let served = match tls {
        Some(config) => crate::api::serve_tls(state, listener, config, shutdown.clone()).await,
        None => crate::api::serve(state, listener, shutdown.clone()).await,
    };
    shutdown.cancel();
    if let Some(task) = jwks_refresh
        && let Err(error) = task.await
    {
        tracing::error!(%error, "the JWKS refresh task failed");
    }
    if let Some(task) = sweeping
        && let Err(error) = task.await
    {
        tracing::error!(%error, "the sweeper task failed");
    }
    if let Some(task) = billing
        && let Err(error) = task.await
    {
        tracing::error!(%error, "the bill runner task failed");
    }
    served.map_err(ServeError::Serve)
}

/// What the ingest path writes to, resolved from the blueprint and flags: the ledger's tables,
/// the SQS client and the transactions queue's URL (`serve`, `sweep`, `bills run-due`).
pub struct IngestParts {
    pub ledger: Ledger,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// Resolves [`IngestParts`] for `target`.
pub async fn ingest_parts(target: &crate::config::TargetConfig) -> Result<IngestParts, ServeError> {
    let blueprint = load_blueprint(target)?;
    let targets = resolve(target, blueprint.as_ref())?;
    let sdk = ballast_aws::load_sdk_config_with_default_region(
        &targets.aws,
        targets.default_region.as_deref(),
    )
    .await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let queue_url = targets
        .queue()?
        .url(&sqs)
        .await
        .map_err(ConfigError::from)?;
    let (accounts, transactions) = targets.tables()?;
    Ok(IngestParts {
        ledger: Ledger::new(ddb, accounts, transactions),
        sqs,
        queue_url,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn serve_and_token_parse_with_defaults() {
        let cli = Cli::try_parse_from([
            "ballast-worker",
            "serve",
            "--blueprint",
            "b.yaml",
            "--listen",
            "127.0.0.1:9000",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(args.body_limit, 64 * 1024);
        assert_eq!(args.rate_burst, 100);
        let cli = Cli::try_parse_from(["ballast-worker", "token", "--sub", "alice", "--ttl", "1h"])
            .unwrap();
        let Command::Token(args) = cli.command else {
            panic!("not token")
        };
        assert_eq!(args.ttl, std::time::Duration::from_secs(3600));
        assert_eq!(args.scope, crate::api::auth::ALL_SCOPES);
    }

    fn serve_args(extra: &[&str]) -> crate::cli::ServeArgs {
        let mut argv = vec!["ballast-worker", "serve", "--blueprint", "b.yaml"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args,
            _ => panic!("not serve"),
        }
    }

    #[tokio::test]
    async fn plain_http_on_a_public_address_is_refused_with_a_hint() {
        let args = serve_args(&["--listen", "0.0.0.0:8080"]);
        let err = super::serve_command(&args, tokio_util::sync::CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, super::ServeError::PlaintextListen { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("0.0.0.0:8080")
                && text.contains("--tls-cert")
                && text.contains("--insecure-http"),
            "{text}"
        );
        for ok in [
            serve_args(&["--listen", "0.0.0.0:8080", "--insecure-http"]),
            serve_args(&["--listen", "127.0.0.1:8080"]),
            serve_args(&["--listen", "[::1]:8080"]),
            serve_args(&[
                "--listen",
                "10.0.0.5:8443",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ]),
        ] {
            super::check_transport(&ok).unwrap();
        }
        // Half a TLS configuration, or TLS and --insecure-http together, is a usage error.
        for bad in [
            vec!["--tls-cert", "c.pem"],
            vec!["--tls-key", "k.pem"],
            vec![
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--insecure-http",
            ],
        ] {
            let mut argv = vec!["ballast-worker", "serve", "--blueprint", "b.yaml"];
            argv.extend(bad);
            assert!(Cli::try_parse_from(argv).is_err());
        }
    }
}
