//! Bearer-token authentication (JWT: HS256, RS256, ES256 with one key, or any asymmetric key of a
//! JSON Web Key Set chosen by `kid`), `aud`/`iss` checks, scopes, and dev-token minting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::jwks::JwksKeys;
use super::problem::ApiError;
use crate::transaction::Subject;

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
/// Every scope, space-separated (the dev-token default). Not the operator scope.
pub const ALL_SCOPES: &str = "accounts:read accounts:write transactions:read transactions:write";
/// Every scope the API knows, the operator scope included.
pub const KNOWN_SCOPES: [&str; 5] = [
    SCOPE_ACCOUNTS_READ,
    SCOPE_ACCOUNTS_WRITE,
    SCOPE_TRANSACTIONS_READ,
    SCOPE_TRANSACTIONS_WRITE,
    SCOPE_ACCOUNTS_ADMIN,
];

/// The first scope of a space-separated list that the API does not know, if any.
pub fn unknown_scope(scopes: &str) -> Option<&str> {
    scopes
        .split_whitespace()
        .find(|s| !KNOWN_SCOPES.contains(s))
}

/// Clock skew tolerated on `exp`/`nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Signature algorithms accepted for bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC SHA-256 with a shared secret.
    Hs256,
    /// RSA PKCS#1 v1.5 SHA-256, public key PEM.
    Rs256,
    /// ECDSA P-256 SHA-256, public key PEM.
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
    owner: Subject,
    scopes: Vec<String>,
}

impl Principal {
    /// A principal with the given `sub` and space-separated scopes (tests, tools).
    pub fn new(subject: Subject, scopes: &str) -> Self {
        Principal {
            subject: subject.as_str().to_owned(),
            owner: subject,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// The `sub` as an account owner / message principal.
    pub fn owner(&self) -> &Subject {
        &self.owner
    }

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
    keys: Keys,
    audience: Option<String>,
    issuer: Option<String>,
}

/// Where verification keys come from.
enum Keys {
    /// One key and its algorithm (HS256 secret or a public key PEM).
    Static {
        key: DecodingKey,
        algorithm: Algorithm,
    },
    /// A JSON Web Key Set, by `kid`.
    Jwks(JwksKeys),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Static { algorithm, .. } => format!("{algorithm:?} key"),
            Keys::Jwks(jwks) => format!("{jwks:?}"),
        };
        f.debug_struct("Authenticator")
            .field("keys", &keys)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Authenticator {
    /// HS256 with a shared secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn hs256(secret: &[u8], audience: Option<&str>) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret(secret.len()));
        }
        Ok(Self::with_keys(
            Keys::Static {
                key: DecodingKey::from_secret(secret),
                algorithm: Algorithm::HS256,
            },
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
        Ok(Self::with_keys(
            Keys::Static {
                key,
                algorithm: algorithm.algorithm(),
            },
            audience,
        ))
    }

    /// Keys from a JSON Web Key Set (see [`super::jwks`]); each token names its key by `kid`.
    pub fn jwks(keys: JwksKeys, audience: Option<&str>) -> Self {
        Self::with_keys(Keys::Jwks(keys), audience)
    }

    /// The key set, when tokens are verified against one (its background refresh and metric).
    pub fn jwks_keys(&self) -> Option<&JwksKeys> {
        match &self.keys {
            Keys::Jwks(keys) => Some(keys),
            Keys::Static { .. } => None,
        }
    }

    /// Also requires the `iss` claim to equal `issuer`.
    pub fn with_issuer(mut self, issuer: Option<&str>) -> Self {
        self.issuer = issuer.map(str::to_owned);
        self
    }

    fn with_keys(keys: Keys, audience: Option<&str>) -> Self {
        Authenticator {
            keys,
            audience: audience.map(str::to_owned),
            issuer: None,
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The key and algorithm that must have signed `token`.
    async fn key_for(&self, token: &str) -> Result<(DecodingKey, Algorithm), ApiError> {
        match &self.keys {
            Keys::Static { key, algorithm } => Ok((key.clone(), *algorithm)),
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|_| ApiError::Unauthorized("the token is malformed".into()))?;
                let kid = header.kid.ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the token has no `kid` header; the API verifies tokens against a key set"
                            .into(),
                    )
                })?;
                jwks.key(&kid).await.ok_or_else(|| {
                    ApiError::Unauthorized("the token's signing key is not known".into())
                })
            }
        }
    }

    /// Verifies an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
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
        let (key, algorithm) = self.key_for(token).await?;
        // The algorithm comes from our key, never from the token's header.
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(algorithm))
            .map_err(|e| ApiError::Unauthorized(token_error(&e)))?;
        let claims = data.claims;
        // The `sub` becomes an account owner and a message principal: hold it to that format.
        let owner = Subject::parse(&claims.sub)
            .map_err(|e| ApiError::Unauthorized(format!("the token's `sub` {e}")))?;
        Ok(Principal::new(owner, &claims.scope))
    }
}

fn token_error(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::InvalidAudience => "the token's audience is not accepted".into(),
        K::InvalidIssuer => "the token's issuer is not accepted".into(),
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

    #[tokio::test]
    async fn minted_tokens_verify_and_carry_scopes() {
        let auth = Authenticator::hs256(SECRET, Some("ballast")).unwrap();
        let token = mint_hs256(
            SECRET,
            "alice",
            "accounts:read  transactions:write",
            Duration::from_secs(60),
            Some("ballast"),
        )
        .unwrap();
        let p = auth
            .authenticate(Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert_eq!(p.subject, "alice");
        assert!(p.has_scope(SCOPE_ACCOUNTS_READ));
        assert!(!p.has_scope(SCOPE_ACCOUNTS_WRITE));
        assert!(p.require(SCOPE_ACCOUNTS_WRITE).is_err());
    }

    #[tokio::test]
    async fn wrong_audience_secret_or_header_is_unauthorized() {
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
            let err = auth.authenticate(header.as_deref()).await.unwrap_err();
            assert_eq!(err.code(), "unauthorized", "{header:?}");
        }
    }

    #[tokio::test]
    async fn issuer_is_required_and_checked_when_configured() {
        let auth = Authenticator::hs256(SECRET, None)
            .unwrap()
            .with_issuer(Some("https://idp.test"));
        let sign = |iss: Option<&str>| {
            let mut claims =
                serde_json::json!({"sub": "alice", "scope": ALL_SCOPES, "exp": u64::MAX / 2});
            if let Some(iss) = iss {
                claims["iss"] = iss.into();
            }
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        let ok = sign(Some("https://idp.test"));
        assert!(
            auth.authenticate(Some(&format!("Bearer {ok}")))
                .await
                .is_ok()
        );
        for bad in [sign(Some("https://evil.test")), sign(None)] {
            let err = auth
                .authenticate(Some(&format!("Bearer {bad}")))
                .await
                .unwrap_err();
            assert_eq!(err.code(), "unauthorized");
        }
    }

    #[tokio::test]
    async fn a_sub_that_cannot_be_an_owner_is_unauthorized() {
        let auth = Authenticator::hs256(SECRET, None).unwrap();
        for sub in ["", "a\u{0}b", &"x".repeat(256)] {
            let token = mint_hs256(SECRET, sub, ALL_SCOPES, Duration::from_secs(60), None).unwrap();
            let err = auth
                .authenticate(Some(&format!("Bearer {token}")))
                .await
                .unwrap_err();
            assert_eq!(err.code(), "unauthorized", "{sub:?}");
        }
    }

    #[test]
    fn unknown_scopes_are_found() {
        assert_eq!(unknown_scope(ALL_SCOPES), None);
        assert_eq!(unknown_scope("accounts:admin accounts:read"), None);
        assert_eq!(
            unknown_scope("accounts:read accounts:raed"),
            Some("accounts:raed")
        );
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(matches!(
            Authenticator::hs256(b"short", None),
            Err(AuthError::WeakSecret(5))
        ));
    }
}
