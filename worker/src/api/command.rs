//! `ballast-worker serve` and `ballast-worker token`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::auth::{
    ALL_SCOPES, AuthError, Authenticator, JwtAlgorithm, KNOWN_SCOPES, mint_hs256, unknown_scope,
};
use super::jwks::{JwksError, JwksKeys, JwksSource, JwksTimers};
use super::rate::{Clock, RateLimit, SystemClock};
use super::sweep::{SweepError, SweepReport, Sweeper};
use super::tls::{TlsError, server_config};
use super::{ApiConfig, ApiState, DEFAULT_BODY_LIMIT};
use crate::cli::{TargetArgs, parse_duration};
use crate::config::{ConfigError, load_blueprint, resolve};
use crate::ledger::Ledger;

/// Environment variable holding the HS256 secret.
pub const HS256_SECRET_ENV: &str = "BALLAST_JWT_HS256_SECRET";

/// `serve` arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BALLAST_LISTEN")]
    pub listen: SocketAddr,
    /// File holding the HS256 secret (else $BALLAST_JWT_HS256_SECRET).
    #[arg(long)]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// PEM public key for RS256/ES256 tokens (with --jwt-algorithm).
    #[arg(long, conflicts_with = "jwt_hs256_secret_file")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Algorithm of --jwt-public-key-file.
    #[arg(long, value_enum, default_value = "RS256")]
    pub jwt_algorithm: JwtAlgorithm,
    /// Verify tokens against the JSON Web Key Set at this URL (https, or http on loopback);
    /// re-read periodically and on an unknown `kid`, so key rotation needs no restart.
    #[arg(long, env = "BALLAST_JWKS_URL", conflicts_with_all = ["jwt_hs256_secret_file", "jwt_public_key_file", "jwks_file"])]
    pub jwks_url: Option<String>,
    /// Verify tokens against the JSON Web Key Set in this file (re-read like --jwks-url).
    #[arg(long, conflicts_with_all = ["jwt_hs256_secret_file", "jwt_public_key_file"])]
    pub jwks_file: Option<PathBuf>,
    /// Re-read the key set when it is older than this.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub jwks_refresh: Duration,
    /// At most one key-set read per this interval caused by unknown `kid`s or failed reads.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub jwks_min_refetch: Duration,
    /// Required `aud` claim.
    #[arg(long, env = "BALLAST_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required `iss` claim (the identity provider's issuer URL).
    #[arg(
        long = "issuer",
        visible_alias = "jwt-issuer",
        env = "BALLAST_JWT_ISSUER"
    )]
    pub issuer: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (e.g. behind a TLS-terminating proxy on the
    /// same host or a service mesh). Without it, such a listen address needs --tls-cert.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Sustained requests per second per client (JWT `sub`); 0 disables rate limiting.
    #[arg(long, default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Requests a client may burst.
    #[arg(long, default_value_t = 100)]
    pub rate_burst: u32,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// A reverse proxy whose `X-Forwarded-For` is believed for the audit records' client
    /// address (repeatable). Without it, the TCP peer is recorded.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<IpAddr>,
    /// How long after its record an accepted transaction without a ledger result is sent
    /// again by the sweeper.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sweep_after: Duration,
    /// Pause between two sweeps; `0s` runs no sweeper in this process.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
}

/// `sweep` arguments.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Records older than this without a ledger result are sent again.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sweep_after: Duration,
    /// Keep sweeping every `--sweep-interval` until SIGTERM (default: one pass).
    #[arg(long)]
    pub watch: bool,
    /// Pause between two sweeps with `--watch`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
}

/// `token` arguments.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The client id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Space-separated scopes.
    #[arg(long, default_value = ALL_SCOPES)]
    pub scope: String,
    /// Lifetime, e.g. `1h`, `30m`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// `aud` claim.
    #[arg(long, env = "BALLAST_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// File holding the HS256 secret (else $BALLAST_JWT_HS256_SECRET).
    #[arg(long)]
    pub jwt_hs256_secret_file: Option<PathBuf>,
}

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
}

fn read_key(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::ReadKey {
        path: path.to_owned(),
        source,
    })
}

/// The HS256 secret from the file (trailing newline trimmed) or the environment.
fn hs256_secret(file: Option<&Path>) -> Result<Option<Vec<u8>>, ServeError> {
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
        return Ok(
            Authenticator::public_key(args.jwt_algorithm, &read_key(path)?, audience)?
                .with_issuer(issuer),
        );
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
    let blueprint = load_blueprint(&args.target)?;
    let targets = resolve(&args.target, blueprint.as_ref())?;
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
    let ledger = Ledger::new(ddb, accounts, transactions);
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
    let state = ApiState::new(ledger, sqs, queue_url, auth, config, clock);
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
    let served = match tls {
        Some(config) => super::serve_tls(state, listener, config, shutdown.clone()).await,
        None => super::serve(state, listener, shutdown.clone()).await,
    };
    shutdown.cancel();
    if let Some(task) = sweeping
        && let Err(error) = task.await
    {
        tracing::error!(%error, "the sweeper task failed");
    }
    served.map_err(ServeError::Serve)
}

/// One sweep (or, with `--watch`, sweeps until `shutdown`); returns the last report.
pub async fn sweep_command(
    args: &SweepArgs,
    shutdown: CancellationToken,
) -> Result<SweepReport, ServeError> {
    let blueprint = load_blueprint(&args.target)?;
    let targets = resolve(&args.target, blueprint.as_ref())?;
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
    let sweeper = Sweeper::new(
        Ledger::new(ddb, accounts, transactions),
        sqs,
        queue_url,
        args.sweep_after,
    );
    if args.watch {
        sweeper.run(args.sweep_interval, shutdown).await;
        return Ok(SweepReport::default());
    }
    Ok(sweeper.sweep_once(time::OffsetDateTime::now_utc()).await?)
}

/// Mints a development token (HS256).
pub fn token_command(args: &TokenArgs) -> Result<String, ServeError> {
    // A typo (`account:read`) would mint a token that silently cannot do what was meant.
    if let Some(scope) = unknown_scope(&args.scope) {
        return Err(ServeError::UnknownScope {
            scope: scope.to_owned(),
        });
    }
    let secret = hs256_secret(args.jwt_hs256_secret_file.as_deref())?.ok_or(ServeError::NoKey)?;
    Ok(mint_hs256(
        &secret,
        &args.sub,
        &args.scope,
        args.ttl,
        args.audience.as_deref(),
    )?)
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
        assert_eq!(args.scope, super::ALL_SCOPES);
    }

    fn serve_args(extra: &[&str]) -> super::ServeArgs {
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

    #[test]
    fn token_refuses_unknown_scopes_and_lists_the_known_ones() {
        let args = match Cli::try_parse_from([
            "ballast-worker",
            "token",
            "--sub",
            "alice",
            "--scope",
            "accounts:read account:write",
        ])
        .unwrap()
        .command
        {
            Command::Token(args) => args,
            _ => panic!("not token"),
        };
        let err = super::token_command(&args).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"account:write\""), "{text}");
        for known in super::KNOWN_SCOPES {
            assert!(text.contains(known), "{text}");
        }
    }
}
