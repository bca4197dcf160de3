//! User accounts: a file of users with salted password hashes, logins through
//! Handshake with Basic credentials, and the signed, expiring bearer tokens
//! a login returns.
//!
//! The file holds one account per line, `name:hash` then the account's
//! attributes, each after a `:`: `read-only` (a user who may only query) and
//! `databases=sales,web` (a user who may use only these databases). `hash`
//! is `$pbkdf2-sha256$<iterations>$<salt, base64>$<key, base64>`; blank
//! lines and lines starting with `#` are ignored. `openduck passwd` writes
//! such lines.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::Sha256;

use openduck_api::Grants;
use openduck_coordinator::Principal;

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

/// The attribute of an account that may only query.
const READ_ONLY: &str = "read-only";
/// The attribute that lists the databases of an account that may use only
/// those: `databases=a,b`.
const DATABASES: &str = "databases=";

/// What an account may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// It may only query.
    pub read_only: bool,
    /// The databases it may use; `None` for all.
    pub grants: Option<Grants>,
}

impl Role {
    /// Parses the attributes after an account's hash.
    fn parse<'a>(attributes: impl Iterator<Item = &'a str>) -> std::result::Result<Self, String> {
        let mut role = Role::default();
        for attribute in attributes {
            if attribute == READ_ONLY && !role.read_only {
                role.read_only = true;
            } else if let Some(list) = attribute.strip_prefix(DATABASES).filter(|_| role.grants.is_none()) {
                let databases: Vec<String> = list.split(',').map(str::trim).map(str::to_string).collect();
                if databases.iter().any(String::is_empty) {
                    return Err(format!("{attribute:?} names an empty database"));
                }
                role.grants = Some(Grants::new(databases));
            } else {
                return Err(format!(
                    "unknown or repeated attribute {attribute:?}; an account may have {READ_ONLY:?} and {DATABASES}<database>,..."
                ));
            }
        }
        Ok(role)
    }

    /// The attributes as the users file writes them, each after a `:`.
    fn attributes(&self) -> String {
        let mut text = String::new();
        if self.read_only {
            text.push(':');
            text.push_str(READ_ONLY);
        }
        if let Some(grants) = &self.grants {
            text.push(':');
            text.push_str(DATABASES);
            text.push_str(&grants.databases().join(","));
        }
        text
    }
}

/// One account of a users file.
#[derive(Clone)]
struct Account {
    hash: PasswordHash,
    role: Role,
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
            let mut fields = rest.split(':');
            let hash = fields.next().unwrap_or_default();
            let role = Role::parse(fields).map_err(|message| format!("line {}: {name:?}: {message}", number + 1))?;
            let hash = PasswordHash::parse(hash).ok_or_else(|| {
                format!(
                    "line {}: the hash of {name:?} is not ${SCHEME}$<iterations>$<salt>$<key>",
                    number + 1
                )
            })?;
            iterations = hash.iterations;
            if users.insert(name.to_string(), Account { hash, role }).is_some() {
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
    /// What the account `name` may do; `None` when there is no such account.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.users.get(name).map(|account| &account.role)
    }

    /// Who holds a token issued to `name`: an account removed since may
    /// do nothing at all (it is read-only, granted no database).
    pub(crate) fn principal(&self, name: String) -> Principal {
        let role = self.role(&name).cloned().unwrap_or(Role {
            read_only: true,
            grants: Some(Grants::new([])),
        });
        Principal::User {
            name,
            read_only: role.read_only,
            grants: role.grants,
        }
    }
}

/// Whether a user name is one the query history uses for callers that are
/// not accounts.
pub fn is_reserved(name: &str) -> bool {
    matches!(name, "token" | "anonymous")
}

/// The line of the users file for an account (`openduck passwd` writes it).
pub fn account_line(name: &str, password: &str, role: &Role) -> String {
    format!("{name}:{}{}", hash_password(password), role.attributes())
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

    fn role_of(accounts: &UserAccounts, name: &str) -> (bool, Option<Vec<String>>) {
        match accounts.principal(name.to_string()) {
            Principal::User { read_only, grants, .. } => (read_only, grants.map(|g| g.databases().to_vec())),
            other => panic!("not a user: {other:?}"),
        }
    }

    #[tokio::test]
    async fn accounts_carry_their_role_and_grants() {
        let file = format!(
            "alice:{}\nreader:{}:read-only\nsales:{}:databases=web, sales\nboth:{}:read-only:databases=web\n",
            fast_hash("a"),
            fast_hash("r"),
            fast_hash("s"),
            fast_hash("b")
        );
        let accounts = UserAccounts::parse(&file).unwrap();
        assert!(accounts.login("reader", "r").await && accounts.login("alice", "a").await);
        assert!(accounts.login("sales", "s").await);
        let web = |names: &[&str]| Some(names.iter().map(|name| name.to_string()).collect::<Vec<_>>());
        assert_eq!(role_of(&accounts, "alice"), (false, None));
        assert_eq!(role_of(&accounts, "reader"), (true, None));
        assert_eq!(role_of(&accounts, "sales"), (false, web(&["web", "sales"])));
        assert_eq!(role_of(&accounts, "both"), (true, web(&["web"])));
        // A token of an account removed since may do nothing.
        assert_eq!(role_of(&accounts, "nobody"), (true, web(&[])));
        for attributes in [
            ":admin",
            ":databases=",
            ":databases=a,,b",
            ":read-only:read-only",
            ":databases=a:databases=b",
        ] {
            let line = format!("x:{}{attributes}", fast_hash("x"));
            assert!(UserAccounts::parse(&line).is_err(), "{attributes}");
        }
        assert!(UserAccounts::parse(&format!("token:{}", fast_hash("x"))).is_err());
        // Lines written for a role read back as that role.
        let role = Role {
            read_only: true,
            grants: Some(Grants::new(["web".to_string()])),
        };
        let line = account_line("bob", "pw", &role);
        assert!(line.starts_with("bob:$pbkdf2-sha256$") && line.ends_with(":read-only:databases=web"));
        assert_eq!(UserAccounts::parse(&line).unwrap().role("bob"), Some(&role));
        let line = account_line("carol", "pw", &Role::default());
        assert_eq!(
            UserAccounts::parse(&line).unwrap().role("carol"),
            Some(&Role::default())
        );
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
