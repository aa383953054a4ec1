//! Bearer-token authentication (JWT: HS256, RS256, ES256), scopes, and dev-token minting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;

/// Read accounts, balances and history.
pub const SCOPE_ACCOUNTS_READ: &str = "accounts:read";
/// Open and close accounts.
pub const SCOPE_ACCOUNTS_WRITE: &str = "accounts:write";
/// Read transaction status.
pub const SCOPE_TRANSACTIONS_READ: &str = "transactions:read";
/// Submit transactions.
pub const SCOPE_TRANSACTIONS_WRITE: &str = "transactions:write";
/// Operator scope: read and act on any account, transaction and audit record. Never part of
/// the default minted scopes; it must be asked for explicitly.
pub const SCOPE_ACCOUNTS_ADMIN: &str = "accounts:admin";
/// Every scope, space-separated (the dev-token default).
pub const ALL_SCOPES: &str = "accounts:read accounts:write transactions:read transactions:write";

/// Clock skew tolerated on `exp`/`nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Signature algorithms accepted for bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JwtAlgorithm {
    /// HMAC SHA-256 with a shared secret.
    #[value(name = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 SHA-256, public key PEM.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 SHA-256, public key PEM.
    #[value(name = "ES256")]
    Es256,
}

impl JwtAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

/// Why the authenticator cannot be built or a token minted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key material is unusable.
    #[error("invalid {algorithm:?} key: {source}")]
    Key {
        /// The algorithm.
        algorithm: JwtAlgorithm,
        /// Why.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// An HS256 secret that is too short to be safe.
    #[error("the HS256 secret must be at least 32 bytes, got {0}")]
    WeakSecret(usize),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Minimum HS256 secret length in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The claims the API reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client (rate-limit key).
    pub sub: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Audience (a string; arrays are accepted by the validator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    scopes: Vec<String>,
}

impl Principal {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `Ok` when the token grants `scope`, else `forbidden`.
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden { scope })
        }
    }
}

/// Verifies bearer tokens.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn hs256(secret: &[u8], audience: Option<&str>) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret(secret.len()));
        }
        Ok(Self::with_key(
            DecodingKey::from_secret(secret),
            JwtAlgorithm::Hs256,
            audience,
        ))
    }

    /// RS256 or ES256 with a public key in PEM.
    pub fn public_key(
        algorithm: JwtAlgorithm,
        pem: &[u8],
        audience: Option<&str>,
    ) -> Result<Self, AuthError> {
        let key = match algorithm {
            JwtAlgorithm::Hs256 => {
                return Err(AuthError::Key {
                    algorithm,
                    source: jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
                });
            }
            JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            JwtAlgorithm::Es256 => DecodingKey::from_ec_pem(pem),
        }
        .map_err(|source| AuthError::Key { algorithm, source })?;
        Ok(Self::with_key(key, algorithm, audience))
    }

    fn with_key(key: DecodingKey, algorithm: JwtAlgorithm, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(algorithm.algorithm());
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Authenticator { key, validation }
    }

    /// Verifies an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let header = authorization
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".to_owned()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| ApiError::Unauthorized(token_error(&e)))?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(ApiError::Unauthorized(
                "the token has an empty `sub`".into(),
            ));
        }
        Ok(Principal {
            subject: claims.sub,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

fn token_error(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::InvalidAudience => "the token's audience is not accepted".into(),
        K::ImmatureSignature => "the token is not valid yet".into(),
        K::InvalidSignature => "the token's signature is invalid".into(),
        K::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        K::MissingRequiredClaim(c) => format!("the token lacks the `{c}` claim"),
        _ => "the token is malformed".into(),
    }
}

/// Mints an HS256 development token.
pub fn mint_hs256(
    secret: &[u8],
    subject: &str,
    scope: &str,
    ttl: Duration,
    audience: Option<&str>,
) -> Result<String, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::WeakSecret(secret.len()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = Claims {
        sub: subject.to_owned(),
        scope: scope.split_whitespace().collect::<Vec<_>>().join(" "),
        exp: now + ttl.as_secs(),
        iat: Some(now),
        aud: audience.map(|a| serde_json::Value::String(a.to_owned())),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(AuthError::Sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify_and_carry_scopes() {
        let auth = Authenticator::hs256(SECRET, Some("ballast")).unwrap();
        let token = mint_hs256(
            SECRET,
            "alice",
            "accounts:read  transactions:write",
            Duration::from_secs(60),
            Some("ballast"),
        )
        .unwrap();
        let p = auth.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(p.subject, "alice");
        assert!(p.has_scope(SCOPE_ACCOUNTS_READ));
        assert!(!p.has_scope(SCOPE_ACCOUNTS_WRITE));
        assert!(p.require(SCOPE_ACCOUNTS_WRITE).is_err());
    }

    #[test]
    fn wrong_audience_secret_or_header_is_unauthorized() {
        let auth = Authenticator::hs256(SECRET, Some("ballast")).unwrap();
        let other_aud =
            mint_hs256(SECRET, "a", ALL_SCOPES, Duration::from_secs(60), Some("x")).unwrap();
        let other_key = mint_hs256(
            b"ffffffffffffffffffffffffffffffff",
            "a",
            ALL_SCOPES,
            Duration::from_secs(60),
            Some("ballast"),
        )
        .unwrap();
        for header in [
            None,
            Some("Basic abc".to_owned()),
            Some(format!("Bearer {other_aud}")),
            Some(format!("Bearer {other_key}")),
            Some("Bearer not.a.jwt".to_owned()),
        ] {
            let err = auth.authenticate(header.as_deref()).unwrap_err();
            assert_eq!(err.code(), "unauthorized", "{header:?}");
        }
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(matches!(
            Authenticator::hs256(b"short", None),
            Err(AuthError::WeakSecret(5))
        ));
    }
}
