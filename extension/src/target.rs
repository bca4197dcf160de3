//! What `ATTACH 'openduck:…'` names: `mydb[@snapshot][?endpoint=grpc[+tls]://host:port]`,
//! and the credentials it connects with.

use crate::Error;

/// The endpoint used when neither the path nor `OPENDUCK_ENDPOINT` names one.
pub const DEFAULT_ENDPOINT: &str = "grpc://127.0.0.1:7878";

/// A database on an openduck service, as an `ATTACH` path names it.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The database on the service (empty: every database it hosts).
    pub database: String,
    /// A snapshot to attach read-only instead of the database's head.
    pub snapshot: Option<String>,
    /// `grpc://host:port`.
    pub endpoint: String,
    /// The bearer token, if any. Never printed (see the `Debug` impl).
    pub token: Option<String>,
    /// A user account's name and password, logged in with at connect (the service then
    /// hands out the token). The password is never printed.
    pub login: Option<(String, String)>,
    /// The CA certificate (PEM) a `grpc+tls://` endpoint's certificate must chain to.
    pub ca: Option<String>,
    /// A client certificate and its private key (PEM), for a service that asks for one
    /// (mutual TLS). The key is never printed.
    pub identity: Option<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("database", &self.database)
            .field("snapshot", &self.snapshot)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.login.as_ref().map(|(user, _)| user))
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl Target {
    /// The catalog the service names what this target attaches: the database, or its
    /// snapshot `database@snapshot`.
    pub fn catalog(&self) -> String {
        match &self.snapshot {
            Some(snapshot) => format!("{}@{snapshot}", self.database),
            None => self.database.clone(),
        }
    }

    /// Whether `other` reaches the same endpoint the same way (the same TLS settings),
    /// whatever database it names.
    pub fn same_endpoint(&self, other: &Target) -> bool {
        self.endpoint == other.endpoint && self.ca == other.ca && self.identity == other.identity
    }

    /// Parses the text after the `openduck:` (or `od:`) scheme. The endpoint defaults to
    /// `endpoint_env` (the `OPENDUCK_ENDPOINT` variable), then [`DEFAULT_ENDPOINT`]; the
    /// token is `token` (from a DuckDB secret or `OPENDUCK_TOKEN`), if any.
    pub fn parse(path: &str, endpoint_env: Option<&str>, token: Option<&str>) -> Result<Target, Error> {
        let (name, query) = path.split_once('?').unwrap_or((path, ""));
        let mut endpoint = endpoint_env.filter(|e| !e.is_empty()).map(str::to_owned);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", value)) if !value.is_empty() => endpoint = Some(value.to_owned()),
                Some(("token", _)) => {
                    return Err(Error::InvalidTarget(
                        "openduck: a token does not belong in the ATTACH path, where duckdb_databases() shows it; \
                         use CREATE SECRET (TYPE openduck, TOKEN '…') or the OPENDUCK_TOKEN variable"
                            .into(),
                    ))
                }
                _ => {
                    let key = pair.split_once('=').map_or(pair, |(key, _)| key);
                    return Err(Error::InvalidTarget(format!(
                        "openduck: unknown ATTACH option {key:?} (known: endpoint)"
                    )));
                }
            }
        }
        let endpoint = endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        if !endpoint.starts_with("grpc://") && !endpoint.starts_with("grpc+tls://") {
            return Err(Error::InvalidTarget(format!(
                "openduck: unsupported endpoint {endpoint:?}: use grpc://host:port or grpc+tls://host:port"
            )));
        }
        let (database, snapshot) = match name.split_once('@') {
            Some((database, snapshot)) if !snapshot.is_empty() => (database, Some(snapshot.to_owned())),
            Some(_) => {
                return Err(Error::InvalidTarget(format!(
                    "openduck: empty snapshot name in {name:?}"
                )))
            }
            None => (name, None),
        };
        Ok(Target {
            database: database.to_owned(),
            snapshot,
            endpoint,
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
            login: None,
            ca: None,
            identity: None,
        })
    }

    /// Whether the endpoint is `grpc+tls://`.
    pub fn tls(&self) -> bool {
        self.endpoint.starts_with("grpc+tls://")
    }

    /// The endpoint as an HTTP/2 URI for tonic.
    pub(crate) fn uri(&self) -> String {
        match self.endpoint.strip_prefix("grpc+tls://") {
            Some(address) => format!("https://{address}"),
            None => format!("http://{}", self.endpoint.trim_start_matches("grpc://")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_databases_of_one_endpoint_are_at_the_same_endpoint() {
        let sales = Target::parse("sales?endpoint=grpc://h:1", None, None).unwrap();
        let crm = Target::parse("crm@s1?endpoint=grpc://h:1", None, None).unwrap();
        assert!(sales.same_endpoint(&crm));
        let elsewhere = Target::parse("crm?endpoint=grpc://h:2", None, None).unwrap();
        assert!(!sales.same_endpoint(&elsewhere));
        let mut trusting = crm.clone();
        trusting.ca = Some("-----BEGIN CERTIFICATE-----".into());
        assert!(!sales.same_endpoint(&trusting));
    }

    #[test]
    fn names_database_endpoint_and_snapshot() {
        let target = Target::parse("mydb@s1?endpoint=grpc://h:1", Some("grpc://env:2"), None).unwrap();
        assert_eq!(target.database, "mydb");
        assert_eq!(target.snapshot.as_deref(), Some("s1"));
        assert_eq!(target.catalog(), "mydb@s1");
        assert_eq!(target.endpoint, "grpc://h:1");
        assert_eq!(target.uri(), "http://h:1");
        assert!(!target.tls());
        let secure = Target::parse("mydb?endpoint=grpc+tls://db.example:7878", None, None).unwrap();
        assert!(secure.tls());
        assert_eq!(secure.uri(), "https://db.example:7878");
    }

    #[test]
    fn defaults_from_the_environment_then_the_local_port() {
        assert_eq!(
            Target::parse("db", Some("grpc://env:2"), None).unwrap().endpoint,
            "grpc://env:2"
        );
        assert_eq!(Target::parse("db", None, None).unwrap().endpoint, DEFAULT_ENDPOINT);
        assert_eq!(Target::parse("", None, None).unwrap().database, "");
    }

    #[test]
    fn refuses_tokens_in_the_path_and_unknown_options() {
        let error = Target::parse("db?token=secret", None, None).unwrap_err().to_string();
        assert!(error.contains("does not belong"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(Target::parse("db?colour=red", None, None).is_err());
        assert!(Target::parse("db?endpoint=http://h:1", None, None).is_err());
        assert!(Target::parse("db@", None, None).is_err());
    }

    #[test]
    fn never_prints_the_token() {
        let target = Target::parse("db", None, Some("s3cr3t")).unwrap();
        assert!(!format!("{target:?}").contains("s3cr3t"));
    }
}
