//! `ballast-worker token`: mints a development bearer token (HS256).

use std::io::Write;
use std::process::ExitCode;

use super::serve::{ServeError, hs256_secret};
use crate::api::auth::{mint_hs256, unknown_scope};
use crate::cli::TokenArgs;

/// `token`: prints a development token.
pub fn run(args: &TokenArgs) -> Result<ExitCode, ServeError> {
    let token = token_command(args)?;
    writeln!(std::io::stdout().lock(), "{token}").map_err(ServeError::Stdout)?;
    Ok(ExitCode::SUCCESS)
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
    use crate::api::auth::KNOWN_SCOPES;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
        for known in KNOWN_SCOPES {
            assert!(text.contains(known), "{text}");
        }
    }
}
