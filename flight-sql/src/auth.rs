//! Bearer-token authentication for every call but the handshake.
//!
//! With a token configured, each request must carry `authorization: Bearer
//! <token>`, or Basic credentials whose password is the token. The handshake
//! checks Basic credentials itself and answers with the bearer header, which
//! is how Flight clients log in.

use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::Status;
use tower::{Layer, Service};

/// The path of the handshake RPC, which authenticates on its own.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// What clients must present.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The verdict on an `authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No token is configured: everyone may call.
    Open,
    /// The header carries the token.
    Accepted,
    /// No or wrong credentials.
    Refused,
}

impl Credentials {
    pub(crate) fn new(token: Option<String>) -> Self {
        Credentials {
            token: token.filter(|token| !token.is_empty()).map(Arc::from),
        }
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Judges an `authorization` header value (Bearer token, or Basic with the
    /// token as password and any user name).
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Verdict {
        let Some(token) = self.token.as_deref() else {
            return Verdict::Open;
        };
        let Some(header) = header.and_then(|value| std::str::from_utf8(value).ok()) else {
            return Verdict::Refused;
        };
        let presented = if let Some(bearer) = strip_scheme(header, "Bearer") {
            Some(bearer.as_bytes().to_vec())
        } else if let Some(basic) = strip_scheme(header, "Basic") {
            basic_password(basic)
        } else {
            None
        };
        match presented {
            Some(presented) if constant_time_eq(&presented, token.as_bytes()) => Verdict::Accepted,
            _ => Verdict::Refused,
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

fn basic_password(encoded: &str) -> Option<Vec<u8>> {
    let decoded = BASIC.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let verdict = if request.uri().path() == HANDSHAKE_PATH {
            Verdict::Open
        } else {
            let header = request.headers().get(http::header::AUTHORIZATION);
            self.credentials.check(header.map(|value| value.as_bytes()))
        };
        if verdict == Verdict::Refused {
            let status = Status::unauthenticated("missing or invalid credentials");
            return Box::pin(async move { Ok(status.into_http()) });
        }
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
        assert_eq!(credentials.check(Some(b"Bearer s3cret")), Verdict::Accepted);
        assert_eq!(credentials.check(Some(b"bearer s3cret")), Verdict::Accepted);
        assert_eq!(credentials.check(Some(&basic("anyone", "s3cret"))), Verdict::Accepted);
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("analyst:s3cret");
        assert_eq!(credentials.check(Some(format!("Basic {unpadded}").as_bytes())), Verdict::Accepted);
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
}
