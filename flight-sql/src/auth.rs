//! Bearer-token authentication for every call but the handshake.
//!
//! With a token configured, each request must carry `authorization: Bearer
//! <token>`, or Basic credentials whose password is the token. With user
//! accounts configured, a client logs in through the handshake with Basic
//! credentials and gets a signed bearer token that expires. The handshake
//! answers with the bearer header, which is how Flight clients log in.

use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::Status;
use tower::{Layer, Service};

/// The path of the handshake RPC, which authenticates on its own.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

use openduck_coordinator::Principal;

use crate::accounts::{constant_time_eq, TokenIssuer, UserAccounts};

/// What clients must present.
#[derive(Clone)]
pub(crate) struct Credentials {
    token: Option<Arc<str>>,
    accounts: Option<Arc<UserAccounts>>,
    issuer: TokenIssuer,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("accounts", &self.accounts)
            .finish()
    }
}

/// The verdict on an `authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No token is configured: everyone may call.
    Open,
    /// The header carries the token, or a user's signed token: who sends it.
    Accepted(Principal),
    /// No or wrong credentials.
    Refused,
}

impl Credentials {
    /// Credentials with a static token only (`None`: open to all).
    #[cfg(test)]
    pub(crate) fn new(token: Option<String>) -> Self {
        Credentials::with_accounts(token, None, std::time::Duration::from_secs(3600))
    }

    /// A static token, user accounts, or both; tokens of logged-in users last `token_ttl`.
    pub(crate) fn with_accounts(
        token: Option<String>,
        accounts: Option<Arc<UserAccounts>>,
        token_ttl: std::time::Duration,
    ) -> Self {
        Credentials {
            token: token.filter(|token| !token.is_empty()).map(Arc::from),
            accounts,
            issuer: TokenIssuer::random(token_ttl),
        }
    }

    /// Whether anything is required of clients.
    pub(crate) fn required(&self) -> bool {
        self.token.is_some() || self.accounts.is_some()
    }

    /// Judges an `authorization` header value: the static token (Bearer, or
    /// as the Basic password with any user name), or a user's signed token.
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Verdict {
        if !self.required() {
            return Verdict::Open;
        }
        let Some(header) = header.and_then(|value| std::str::from_utf8(value).ok()) else {
            return Verdict::Refused;
        };
        let is_token = |presented: &[u8]| {
            self.token
                .as_deref()
                .is_some_and(|token| constant_time_eq(presented, token.as_bytes()))
        };
        let principal = if let Some(bearer) = strip_scheme(header, "Bearer") {
            if is_token(bearer.as_bytes()) {
                Some(Principal::Token)
            } else if let Some(accounts) = &self.accounts {
                self.issuer.verify(bearer).map(|name| accounts.principal(name))
            } else {
                None
            }
        } else if let Some(basic) = strip_scheme(header, "Basic") {
            basic_credentials(basic)
                .is_some_and(|(_, password)| is_token(password.as_bytes()))
                .then_some(Principal::Token)
        } else {
            None
        };
        principal.map_or(Verdict::Refused, Verdict::Accepted)
    }

    /// The handshake: checks the credentials and returns the bearer token the
    /// client uses from now on (`None` on an open server). A user account
    /// logs in with Basic credentials and gets a signed token that expires.
    pub(crate) async fn login(&self, header: Option<&[u8]>) -> Result<Option<String>, ()> {
        match self.check(header) {
            Verdict::Open => return Ok(None),
            Verdict::Accepted(_) => {
                let text = header
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .unwrap_or_default();
                return Ok(match strip_scheme(text, "Bearer") {
                    Some(bearer) => Some(bearer.to_string()),
                    None => self.token.as_deref().map(str::to_string),
                });
            }
            Verdict::Refused => {}
        }
        let accounts = self.accounts.as_ref().ok_or(())?;
        let text = header.and_then(|value| std::str::from_utf8(value).ok()).ok_or(())?;
        let (user, password) = strip_scheme(text, "Basic").and_then(basic_credentials).ok_or(())?;
        if accounts.login(&user, &password).await {
            tracing::info!(user, "user logged in");
            Ok(Some(self.issuer.issue(&user)))
        } else {
            tracing::info!(user, "login refused");
            Err(())
        }
    }
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// Standard base64, with or without padding: Go's Flight client sends Basic
/// credentials unpadded.
const BASIC: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(BASIC.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A tower layer that refuses unauthenticated calls with `Unauthenticated`.
#[derive(Debug, Clone)]
pub(crate) struct AuthLayer {
    credentials: Credentials,
}

impl AuthLayer {
    pub(crate) fn new(credentials: Credentials) -> Self {
        AuthLayer { credentials }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            credentials: self.credentials.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated<S> {
    inner: S,
    credentials: Credentials,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Authenticated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Logging in, and health checks (probes carry no credentials), are open.
        let path = request.uri().path();
        let verdict = if path == HANDSHAKE_PATH || path.starts_with(openduck_remote::HEALTH_PATH_PREFIX) {
            Verdict::Open
        } else {
            let header = request.headers().get(http::header::AUTHORIZATION);
            self.credentials.check(header.map(|value| value.as_bytes()))
        };
        let principal = match verdict {
            Verdict::Refused => {
                let status = Status::unauthenticated("missing or invalid credentials");
                return Box::pin(async move { Ok(status.into_http()) });
            }
            Verdict::Open => Principal::Anonymous,
            Verdict::Accepted(principal) => principal,
        };
        let mut request = request;
        request.extensions_mut().insert(principal);
        // The clone may not be ready; swap so that the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn without_a_token_everyone_may_call() {
        assert_eq!(Credentials::new(None).check(None), Verdict::Open);
        assert_eq!(Credentials::new(Some(String::new())).check(None), Verdict::Open);
    }

    #[test]
    fn accepts_bearer_and_basic_with_the_token() {
        let credentials = Credentials::new(Some("s3cret".into()));
        assert_eq!(
            credentials.check(Some(b"Bearer s3cret")),
            Verdict::Accepted(Principal::Token)
        );
        assert_eq!(
            credentials.check(Some(b"bearer s3cret")),
            Verdict::Accepted(Principal::Token)
        );
        assert_eq!(
            credentials.check(Some(&basic("anyone", "s3cret"))),
            Verdict::Accepted(Principal::Token)
        );
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("analyst:s3cret");
        assert_eq!(
            credentials.check(Some(format!("Basic {unpadded}").as_bytes())),
            Verdict::Accepted(Principal::Token)
        );
    }

    #[test]
    fn a_user_token_names_its_user() {
        // A hash that parses (no password matches it: logging in is not tested here).
        let hash = format!("$pbkdf2-sha256$1${}${}", "A".repeat(22), "A".repeat(43));
        let accounts = Arc::new(UserAccounts::parse(&format!("ann:{hash}:read-only")).unwrap());
        let credentials = Credentials::with_accounts(
            Some("s3cret".into()),
            Some(accounts),
            std::time::Duration::from_secs(60),
        );
        let bearer = format!("Bearer {}", credentials.issuer.issue("ann"));
        assert_eq!(
            credentials.check(Some(bearer.as_bytes())),
            Verdict::Accepted(Principal::User {
                name: "ann".into(),
                read_only: true,
                grants: None,
            })
        );
        assert_eq!(
            credentials.check(Some(b"Bearer s3cret")),
            Verdict::Accepted(Principal::Token)
        );
    }

    #[test]
    fn refuses_everything_else() {
        let credentials = Credentials::new(Some("s3cret".into()));
        for header in [&b"Bearer wrong"[..], b"Bearer s3cret2", b"s3cret", b"Basic !!!", b""] {
            assert_eq!(credentials.check(Some(header)), Verdict::Refused, "{header:?}");
        }
        assert_eq!(credentials.check(Some(&basic("s3cret", "nope"))), Verdict::Refused);
        assert_eq!(credentials.check(None), Verdict::Refused);
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKEN: &str = "the-static-token-0123456789";

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// Any bytes in `authorization`: refused, never a panic, unless
            /// they present the token.
            #[test]
            fn random_headers_are_refused(header in prop::collection::vec(any::<u8>(), 0..256)) {
                let credentials = Credentials::new(Some(TOKEN.into()));
                prop_assert_eq!(credentials.check(Some(&header)), Verdict::Refused);
                prop_assert!(credentials.issuer.verify(&String::from_utf8_lossy(&header)).is_none());
            }

            /// A header that differs from a valid one in one byte is refused
            /// unless it still presents the token (case of the scheme, spaces
            /// around the value).
            #[test]
            fn changed_headers_are_refused(basic_form in any::<bool>(), at in any::<usize>(), byte in any::<u8>()) {
                let credentials = Credentials::new(Some(TOKEN.into()));
                let mut header = if basic_form { basic("user", TOKEN) } else { format!("Bearer {TOKEN}").into_bytes() };
                let at = at % header.len();
                header[at] = byte;
                let verdict = credentials.check(Some(&header));
                let text = String::from_utf8_lossy(&header).into_owned();
                let presents = match text.split_once(' ') {
                    Some((scheme, value)) if scheme.eq_ignore_ascii_case("bearer") => value.trim() == TOKEN,
                    Some((scheme, value)) if scheme.eq_ignore_ascii_case("basic") => {
                        basic_credentials(value.trim()).is_some_and(|(_, password)| password == TOKEN)
                    }
                    _ => false,
                };
                prop_assert_eq!(verdict == Verdict::Accepted(Principal::Token), presents, "{:?}", text);
            }
        }
    }
}
