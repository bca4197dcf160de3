//! What a client presents to the service: a bearer token and, for a user account, the
//! name and password it logs in with again when the service's token runs out.
//!
//! The service's tokens (`odt1.<user>.<expiry in Unix ms>.<mac>`) say when they expire, so
//! a client logs in again shortly before (30 s, or a quarter of a shorter lifetime), by
//! its own clock. A token the service refuses
//! anyway (a clock that is off, a restarted service) is replaced once, and the call tried
//! again ([`crate::Client`] does that for every call that can be repeated).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before its expiry a token is replaced, at most (at most a quarter of its
/// lifetime, too).
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// A client's credentials, shared by the connections of one attachment.
pub(crate) struct Credentials {
    /// A user account's name and password. Never printed.
    login: Option<(String, String)>,
    /// The bearer token in use. Never printed.
    token: Mutex<Option<Token>>,
    /// Held while logging in, so that threads that find the token due at once log in once.
    logging_in: Mutex<()>,
}

struct Token {
    bearer: String,
    /// When to replace it (Unix time), if it says when it expires.
    renew_at: Option<Duration>,
}

impl Token {
    fn new(bearer: String) -> Token {
        let renew_at = expiry(&bearer).map(|expires| {
            let lifetime = expires.saturating_sub(now());
            expires.saturating_sub(RENEW_BEFORE.min(lifetime / 4))
        });
        Token { bearer, renew_at }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.login.as_ref().map(|(user, _)| user))
            .field("token", &self.bearer().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// `token` as given, or none; with `login`, the token comes from logging in.
    pub(crate) fn new(token: Option<String>, login: Option<(String, String)>) -> Self {
        Credentials {
            login,
            token: Mutex::new(token.map(Token::new)),
            logging_in: Mutex::new(()),
        }
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token to present, if any.
    pub(crate) fn bearer(&self) -> Option<String> {
        self.token().as_ref().map(|token| token.bearer.clone())
    }

    /// Whether the client presents anything (a token, or a login).
    pub(crate) fn present(&self) -> bool {
        self.login.is_some() || self.token().is_some()
    }

    /// The name and password to log in with, for a user account.
    pub(crate) fn login(&self) -> Option<(&str, &str)> {
        self.login
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Whether `other` presents the same principal: the same user account, or the same
    /// token given as it is (or neither).
    pub(crate) fn same_principal(&self, other: &Credentials) -> bool {
        match (&self.login, &other.login) {
            (Some(login), Some(other)) => login == other,
            (None, None) => self.bearer() == other.bearer(),
            _ => false,
        }
    }

    /// Uses `token` from now on.
    pub(crate) fn renewed(&self, token: String) {
        *self.token() = Some(Token::new(token));
    }

    /// Logs in with `log_in` unless another thread did since `seen` was the token:
    /// concurrent callers that find the same token due or refused log in once.
    pub(crate) fn log_in_once<E>(
        &self,
        seen: Option<&str>,
        log_in: impl FnOnce(&str, &str) -> Result<String, E>,
    ) -> Result<(), E> {
        let Some((user, password)) = self.login() else {
            return Ok(());
        };
        let _one_at_a_time = self.logging_in.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.bearer().as_deref() != seen {
            return Ok(());
        }
        self.renewed(log_in(user, password)?);
        Ok(())
    }

    /// Stops renewing the current token ahead of time (renewing it failed): it is
    /// renewed when the service refuses it.
    pub(crate) fn postpone(&self) {
        if let Some(token) = self.token().as_mut() {
            token.renew_at = None;
        }
    }

    /// Whether this client logs in and its token is about to expire (or it has none yet).
    pub(crate) fn due(&self) -> bool {
        if self.login.is_none() {
            return false;
        }
        match &*self.token() {
            None => true,
            Some(token) => token.renew_at.is_some_and(|renew_at| now() >= renew_at),
        }
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// When a token of the service expires, if it says.
fn expiry(token: &str) -> Option<Duration> {
    let mut parts = token.split('.');
    let (Some("odt1"), Some(_user), Some(expires)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    expires.parse().ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_expiring_in(seconds: i64) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        format!("odt1.YWxpY2U.{}.mac", now + seconds * 1000)
    }

    #[test]
    fn a_login_renews_its_token_shortly_before_it_expires() {
        let login = Some(("alice".to_owned(), "secret".to_owned()));
        let fresh = Credentials::new(Some(token_expiring_in(3600)), login.clone());
        assert!(!fresh.due());
        let old = Credentials::new(Some(token_expiring_in(10)), login.clone());
        assert!(!old.due(), "a short-lived token is kept for three quarters of its life");
        let expired = Credentials::new(Some(token_expiring_in(0)), login.clone());
        assert!(expired.due());
        assert!(Credentials::new(None, login.clone()).due());
        // A token that does not say when it expires is renewed when refused.
        assert!(!Credentials::new(Some("opaque".into()), login).due());
        // A token given as it is cannot be renewed.
        assert!(!Credentials::new(Some(token_expiring_in(1)), None).due());
    }

    #[test]
    fn the_same_account_or_token_is_the_same_principal() {
        let alice = || Some(("alice".to_owned(), "pw".to_owned()));
        // Each logs in for a token of its own.
        let one = Credentials::new(Some("t1".into()), alice());
        assert!(one.same_principal(&Credentials::new(Some("t2".into()), alice())));
        assert!(!one.same_principal(&Credentials::new(None, Some(("bob".into(), "pw".into())))));
        assert!(!one.same_principal(&Credentials::new(Some("t1".into()), None)));
        let token = Credentials::new(Some("t".into()), None);
        assert!(token.same_principal(&Credentials::new(Some("t".into()), None)));
        assert!(!token.same_principal(&Credentials::new(Some("u".into()), None)));
        assert!(!token.same_principal(&Credentials::new(None, None)));
        assert!(Credentials::new(None, None).same_principal(&Credentials::new(None, None)));
    }

    #[test]
    fn threads_that_find_the_same_token_due_log_in_once() {
        let credentials = Credentials::new(Some(token_expiring_in(0)), Some(("alice".into(), "pw".into())));
        let seen = credentials.bearer();
        let logins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    credentials
                        .log_in_once(seen.as_deref(), |user, password| {
                            assert_eq!((user, password), ("alice", "pw"));
                            logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok::<_, ()>(token_expiring_in(3600))
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(logins.into_inner(), 1);
        assert!(!credentials.due());
        // A failed renewal ahead of time is not tried again for the same token.
        let failing = Credentials::new(Some(token_expiring_in(0)), Some(("alice".into(), "pw".into())));
        failing.postpone();
        assert!(!failing.due());
    }

    #[test]
    fn never_prints_the_token_or_the_password() {
        let credentials = Credentials::new(Some(token_expiring_in(60)), Some(("alice".into(), "hunter2".into())));
        let shown = format!("{credentials:?}");
        assert!(shown.contains("alice") && !shown.contains("hunter2") && !shown.contains("odt1"));
    }
}
