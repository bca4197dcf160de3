//! Where a client's statements run: its current database and schema, and the
//! session (a connection held on one executor) it may have open.

use openduck_api::{Grants, Statement};

use crate::error::{Error, Result};
use crate::site::SiteSession;

/// A client's session on one executor: its own connection there, kept for
/// a transaction or temporary tables. Dropping the last clone closes it,
/// which rolls an open transaction back.
#[derive(Debug, Clone)]
pub struct ClientSession {
    pub(crate) executor_id: String,
    pub(crate) session: SiteSession,
}

impl ClientSession {
    /// The executor that holds the session's connection.
    pub fn executor_id(&self) -> &str {
        &self.executor_id
    }
}

/// Who sends a statement, as authentication established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// A client of a server that requires no credentials.
    #[default]
    Anonymous,
    /// A holder of the service's token: an operator.
    Token,
    /// A user account, logged in with its password; a read-only one may
    /// only query, one with grants use only those databases.
    User {
        /// The account's name.
        name: String,
        /// Whether it may only query.
        read_only: bool,
        /// The databases it may use; `None` for all.
        grants: Option<Grants>,
    },
}

impl Principal {
    /// The name its statements are recorded under.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Token => "token",
            Principal::User { name, .. } => name,
        }
    }

    /// Whether it may only query: every other statement is refused
    /// ([`Error::ReadOnly`](crate::Error::ReadOnly)), and its queries run
    /// in read-only transactions.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Principal::User { read_only: true, .. })
    }

    /// The databases it may use, when not all.
    pub fn grants(&self) -> Option<&Grants> {
        match self {
            Principal::User { grants, .. } => grants.as_ref(),
            Principal::Anonymous | Principal::Token => None,
        }
    }

    /// Whether it may use `database` (read it, and change it unless it is
    /// read-only).
    pub fn may_use(&self, database: &str) -> bool {
        self.grants().is_none_or(|grants| grants.may_change(database))
    }

    /// Whether it may see what `other` did: a user account its own doings,
    /// the operator and clients of an open server everyone's.
    pub fn sees(&self, other: &Principal) -> bool {
        match (self, other) {
            (Principal::Anonymous | Principal::Token, _) => true,
            (Principal::User { name, .. }, Principal::User { name: other, .. }) => name == other,
            (Principal::User { .. }, _) => false,
        }
    }
}

/// What a client's statement runs in.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The database unqualified names resolve in; `None` for the default.
    pub database: Option<String>,
    /// The schema unqualified names resolve in; `None` for the database's default.
    pub schema: Option<String>,
    /// The client's session, when it has one open.
    pub session: Option<ClientSession>,
    /// Who sends it.
    pub principal: Principal,
    /// Whether the client reads every endpoint of a FlightInfo (it said so
    /// with [`ENDPOINTS_METADATA`](openduck_proto::ENDPOINTS_METADATA)):
    /// only then may a result come in several parts. Some clients read the
    /// first endpoint alone, and would miss the rest.
    pub reads_every_endpoint: bool,
    /// Whether the client asked ([`ONE_EXECUTOR_METADATA`](openduck_proto::ONE_EXECUTOR_METADATA))
    /// that a query run on one executor, verbatim in its DuckDB: one across executors
    /// (which DataFusion would plan, with its own dialect) is then refused with
    /// [`Error::NotOnOneExecutor`](crate::Error::NotOnOneExecutor).
    pub one_executor: bool,
}

impl Scope {
    /// A statement of `sql` in this scope, with `database` as its default.
    pub(crate) fn statement(&self, database: &str, sql: &str) -> Statement {
        let mut statement = Statement::new(database, sql);
        statement.schema.clone_from(&self.schema);
        statement.session_id = self.session_id();
        statement.read_only = self.principal.is_read_only();
        statement.grants = self.principal.grants().cloned();
        statement
    }

    /// The id of the executor session statements run in, if any.
    pub(crate) fn session_id(&self) -> Option<String> {
        self.session.as_ref().map(|session| session.session.id().to_string())
    }

    /// Refuses a statement that is not a query from a read-only user.
    pub(crate) fn check_writes(&self, is_query: bool) -> Result<()> {
        if !is_query && self.principal.is_read_only() {
            return Err(Error::ReadOnly(self.principal.name().to_string()));
        }
        Ok(())
    }

    /// Refuses work on a database its principal was not granted.
    pub(crate) fn check_granted(&self, database: &str) -> Result<()> {
        match self.principal.grants() {
            Some(grants) if !grants.may_change(database) => Err(Error::NotGranted {
                database: database.to_string(),
                grants: grants.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses work on `executor` when the session lives on another one.
    pub(crate) fn check_executor(&self, executor: &str) -> Result<()> {
        match &self.session {
            Some(session) if session.executor_id != executor => Err(Error::OutsideSession {
                executor: executor.to_string(),
                session_executor: session.executor_id.clone(),
            }),
            _ => Ok(()),
        }
    }
}
