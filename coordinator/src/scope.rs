//! Where a client's statements run: its current database and schema, and the
//! session (a connection held on one executor) it may have open.

use openduck_api::Statement;

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

/// What a client's statement runs in.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The database unqualified names resolve in; `None` for the default.
    pub database: Option<String>,
    /// The schema unqualified names resolve in; `None` for the database's default.
    pub schema: Option<String>,
    /// The client's session, when it has one open.
    pub session: Option<ClientSession>,
}

impl Scope {
    /// A statement of `sql` in this scope, with `database` as its default.
    pub(crate) fn statement(&self, database: &str, sql: &str) -> Statement {
        let mut statement = Statement::new(database, sql);
        statement.schema.clone_from(&self.schema);
        statement.session_id = self.session_id();
        statement
    }

    /// The id of the executor session statements run in, if any.
    pub(crate) fn session_id(&self) -> Option<String> {
        self.session.as_ref().map(|session| session.session.id().to_string())
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
