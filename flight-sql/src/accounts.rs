//! User accounts: a file of users with salted password hashes, logins through
//! Handshake with Basic credentials, and the signed, expiring bearer tokens
//! a login returns.
//!
//! The file holds one account per line, `name:hash` or `name:hash:read-only`
//! (a user who may only query), where `hash` is
//! `$pbkdf2-sha256$<iterations>$<salt, base64>$<key, base64>`; blank lines and
//! lines starting with `#` are ignored. `openduck passwd` writes such lines.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::Sha256;

use crate::error::{Error, Result};

/// PBKDF2 rounds for new hashes (OWASP's 2023 advice for PBKDF2-HMAC-SHA256).
const ITERATIONS: u32 = 600_000;
const SCHEME: &str = "pbkdf2-sha256";
const KEY_LEN: usize = 32;
/// Failed logins of one name slow further attempts down, up to this delay.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// Most names whose failures are remembered.
const MAX_TRACKED: usize = 10_000;

/// A salted hash of `password`, in the users file format.
pub(crate) fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let key = derive(password, salt, iterations);
    format!(
        "${SCHEME}${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(key)
    )
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut key);
    key
}

/// A parsed password hash.
#[derive(Clone)]
struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    key: Vec<u8>,
}

impl PasswordHash {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix('$')?.split('$');
        if parts.next()? != SCHEME {
            return None;
        }
        let iterations = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let key = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        (parts.next().is_none() && key.len() == KEY_LEN).then_some(PasswordHash { iterations, salt, key })
    }

    fn verify(&self, password: &str) -> bool {
        constant_time_eq(&derive(password, &self.salt, self.iterations), &self.key)
    }
}

/// What an account may do, after its hash in the users file.
const READ_ONLY: &str = "read-only";

/// One account of a users file.
#[derive(Clone)]
struct Account {
    hash: PasswordHash,
    read_only: bool,
}

/// The accounts of a users file.
pub struct UserAccounts {
    users: HashMap<String, Account>,
    /// Compared against when the name is unknown, so that the time taken does
    /// not tell which names exist.
    decoy: PasswordHash,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for UserAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAccounts")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl UserAccounts {
    /// Reads a users file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::Config(format!("cannot read the users file {}: {error}", path.display())))?;
        Self::parse(&text).map_err(|message| Error::Config(format!("{}: {message}", path.display())))
    }

    /// Parses the users file format.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut users = HashMap::new();
        let mut iterations = ITERATIONS;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, rest) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected name:hash", number + 1))?;
            if is_reserved(name) {
                return Err(format!(
                    "line {}: {name:?} is reserved (the query history names the token's holder and anonymous clients so)",
                    number + 1
                ));
            }
            let (hash, read_only) = match rest.split_once(':') {
                None => (rest, false),
                Some((hash, READ_ONLY)) => (hash, true),
                Some((_, role)) => {
                    return Err(format!(
                        "line {}: {name:?} has role {role:?}; the one role is {READ_ONLY:?}",
                        number + 1
                    ))
                }
            };
            let hash = PasswordHash::parse(hash).ok_or_else(|| {
                format!(
                    "line {}: the hash of {name:?} is not ${SCHEME}$<iterations>$<salt>$<key>",
                    number + 1
                )
            })?;
            iterations = hash.iterations;
            if users.insert(name.to_string(), Account { hash, read_only }).is_some() {
                return Err(format!("line {}: user {name:?} appears twice", number + 1));
            }
        }
        let decoy = PasswordHash::parse(&hash_with("", b"openduck-decoy", iterations)).expect("a valid hash");
        Ok(UserAccounts {
            users,
            decoy,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a name and password. After a failure, waits longer the more
    /// often that name failed recently, slowing down guessing.
    pub(crate) async fn login(&self, name: &str, password: &str) -> bool {
        let hash = self.users.get(name).map(|account| account.hash.clone());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let password = password.to_string();
        let valid = tokio::task::spawn_blocking(move || hash.verify(&password))
            .await
            .unwrap_or(false)
            && known;
        if valid {
            self.failures.lock().remove(name);
            return true;
        }
        let failures = {
            let mut failures = self.failures.lock();
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
            let count = failures.entry(name.to_string()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let delay = Duration::from_millis(100u64 << failures.min(10).saturating_sub(1)).min(MAX_FAILURE_DELAY);
        tokio::time::sleep(delay).await;
        false
    }
}

impl UserAccounts {
    /// Whether `name` may only query (unknown names may do nothing at all).
    pub(crate) fn is_read_only(&self, name: &str) -> bool {
        self.users.get(name).is_none_or(|account| account.read_only)
    }
}

/// Whether a user name is one the query history uses for callers that are
/// not accounts.
pub fn is_reserved(name: &str) -> bool {
    matches!(name, "token" | "anonymous")
}

/// The line of the users file for an account (`openduck passwd` writes it).
pub fn account_line(name: &str, password: &str, read_only: bool) -> String {
    let role = if read_only {
        format!(":{READ_ONLY}")
    } else {
        String::new()
    };
    format!("{name}:{}{role}", hash_password(password))
}

/// Issues and checks the bearer tokens of logged-in users: the user name and
/// expiry, signed with HMAC-SHA256 under a key only this server knows.
#[derive(Clone)]
pub(crate) struct TokenIssuer {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

const TOKEN_PREFIX: &str = "odt1";

impl TokenIssuer {
    /// An issuer with a random key: tokens end with the server process.
    pub(crate) fn random(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        TokenIssuer { key, ttl }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        mac
    }

    /// A token for `user`, valid for the issuer's lifetime setting.
    pub(crate) fn issue(&self, user: &str) -> String {
        let expires = now_ms().saturating_add(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX));
        let payload = format!("{TOKEN_PREFIX}.{}.{expires}", URL_SAFE_NO_PAD.encode(user));
        format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes())
        )
    }

    /// The user of a valid, unexpired token.
    pub(crate) fn verify(&self, token: &str) -> Option<String> {
        let (payload, mac) = token.rsplit_once('.')?;
        // verify_slice compares in constant time, as the ticket signer does.
        self.mac(payload)
            .verify_slice(&URL_SAFE_NO_PAD.decode(mac).ok()?)
            .ok()?;
        let mut parts = payload.split('.');
        (parts.next()? == TOKEN_PREFIX).then_some(())?;
        let user = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let expires: u64 = parts.next()?.parse().ok()?;
        (now_ms() < expires).then_some(user)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast_hash(password: &str) -> String {
        hash_with(password, b"0123456789abcdef", 1_000)
    }

    #[tokio::test]
    async fn logs_in_with_the_right_password_only() {
        let file = format!(
            "# analysts\nalice:{}\n\nbob:{}\n",
            fast_hash("s3cret"),
            fast_hash("hunter2")
        );
        let accounts = UserAccounts::parse(&file).unwrap();
        assert!(accounts.login("alice", "s3cret").await);
        assert!(!accounts.login("alice", "hunter2").await);
        assert!(!accounts.login("mallory", "s3cret").await);
        assert!(accounts.login("bob", "hunter2").await);
    }

    #[test]
    fn hashes_are_salted() {
        assert_ne!(hash_password("same"), hash_password("same"));
        assert!(PasswordHash::parse(&hash_password("x")).unwrap().verify("x"));
    }

    #[tokio::test]
    async fn read_only_accounts_are_marked_so() {
        let file = format!("alice:{}\nreader:{}:read-only\n", fast_hash("a"), fast_hash("r"));
        let accounts = UserAccounts::parse(&file).unwrap();
        assert!(accounts.login("reader", "r").await && accounts.login("alice", "a").await);
        assert!(accounts.is_read_only("reader"));
        assert!(!accounts.is_read_only("alice"));
        assert!(accounts.is_read_only("nobody"));
        assert!(UserAccounts::parse(&format!("x:{}:admin", fast_hash("x"))).is_err());
        assert!(UserAccounts::parse(&format!("token:{}", fast_hash("x"))).is_err());
        let line = account_line("bob", "pw", true);
        assert!(line.starts_with("bob:$pbkdf2-sha256$") && line.ends_with(":read-only"));
        assert!(UserAccounts::parse(&line).unwrap().is_read_only("bob"));
    }

    #[test]
    fn refuses_malformed_files() {
        assert!(UserAccounts::parse("alice").is_err());
        assert!(UserAccounts::parse("alice:plaintext").is_err());
        let twice = format!("a:{}\na:{}", fast_hash("x"), fast_hash("y"));
        assert!(UserAccounts::parse(&twice).is_err());
    }

    #[test]
    fn tokens_are_signed_and_expire() {
        let issuer = TokenIssuer::random(Duration::from_secs(60));
        let token = issuer.issue("alice");
        assert_eq!(issuer.verify(&token).as_deref(), Some("alice"));
        let other = TokenIssuer::random(Duration::from_secs(60));
        assert_eq!(other.verify(&token), None, "another server's key");
        let forged = token.replacen(&URL_SAFE_NO_PAD.encode("alice"), &URL_SAFE_NO_PAD.encode("admin"), 1);
        assert_eq!(issuer.verify(&forged), None);
        let expired = TokenIssuer {
            ttl: Duration::ZERO,
            ..issuer.clone()
        }
        .issue("alice");
        assert_eq!(issuer.verify(&expired), None);
    }
}
