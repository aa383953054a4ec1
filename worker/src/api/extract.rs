//! axum extractors of the caller: [`Authorized<S>`] yields the [`Principal`] the auth middleware
//! verified, and only when its token carries the scope `S` (as in axum's `jwt` example), so a
//! handler states its scope in its signature instead of checking it by hand.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::auth::{
    Principal, SCOPE_ACCOUNTS_ADMIN, SCOPE_ACCOUNTS_READ, SCOPE_ACCOUNTS_WRITE,
    SCOPE_TRANSACTIONS_READ, SCOPE_TRANSACTIONS_WRITE,
};
use super::problem::ApiError;

/// A scope a handler requires.
pub trait Scope {
    /// The scope's name in the token's `scope` claim.
    const NAME: &'static str;
}

/// `accounts:read`.
#[derive(Debug)]
pub struct AccountsRead;
impl Scope for AccountsRead {
    const NAME: &'static str = SCOPE_ACCOUNTS_READ;
}

/// `accounts:write`.
#[derive(Debug)]
pub struct AccountsWrite;
impl Scope for AccountsWrite {
    const NAME: &'static str = SCOPE_ACCOUNTS_WRITE;
}

/// `transactions:read`.
#[derive(Debug)]
pub struct TransactionsRead;
impl Scope for TransactionsRead {
    const NAME: &'static str = SCOPE_TRANSACTIONS_READ;
}

/// `transactions:write`.
#[derive(Debug)]
pub struct TransactionsWrite;
impl Scope for TransactionsWrite {
    const NAME: &'static str = SCOPE_TRANSACTIONS_WRITE;
}

/// `accounts:admin` (operators).
#[derive(Debug)]
pub struct AccountsAdmin;
impl Scope for AccountsAdmin {
    const NAME: &'static str = SCOPE_ACCOUNTS_ADMIN;
}

/// The verified caller, holding scope `S`; rejected with 403 (problem+json naming the scope)
/// otherwise, and with 401 when no principal was verified (a route outside the auth layer).
#[derive(Debug)]
pub struct Authorized<S> {
    /// The caller.
    pub principal: Principal,
    scope: PhantomData<S>,
}

impl<S: Scope, St: Send + Sync> FromRequestParts<St> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("no verified bearer token".into()))?;
        principal.require(S::NAME)?;
        Ok(Authorized {
            principal,
            scope: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;

    use super::*;
    use crate::transaction::Subject;

    async fn extract<S: Scope>(principal: Option<Principal>) -> Result<Principal, ApiError> {
        let (mut parts, ()) = Request::builder().body(()).unwrap().into_parts();
        if let Some(principal) = principal {
            parts.extensions.insert(principal);
        }
        Authorized::<S>::from_request_parts(&mut parts, &())
            .await
            .map(|a| a.principal)
    }

    #[tokio::test]
    async fn the_scope_is_required_with_the_existing_status_codes() {
        let alice = Principal::new(Subject::parse("alice").unwrap(), "accounts:read");
        assert_eq!(
            extract::<AccountsRead>(Some(alice.clone())).await.unwrap(),
            alice
        );
        let denied = extract::<AccountsWrite>(Some(alice)).await.unwrap_err();
        assert!(
            matches!(denied, ApiError::Forbidden { scope } if scope == SCOPE_ACCOUNTS_WRITE),
            "{denied:?}"
        );
        assert_eq!(denied.into_response().status(), StatusCode::FORBIDDEN);
        let anonymous = extract::<AccountsAdmin>(None).await.unwrap_err();
        assert_eq!(anonymous.into_response().status(), StatusCode::UNAUTHORIZED);
    }
}
