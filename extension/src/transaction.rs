//! Transactions on the service: a DuckDB transaction that writes through an attachment
//! runs all its statements in one Flight SQL transaction, committed or rolled back with it.

use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult, ActionEndTransactionRequest, Any, EndTransaction,
    ProstMessageExt,
};
use arrow_flight::Action;
use prost::Message;
use tonic::transport::Channel;

use crate::client::{open, METADATA_DEADLINE};
use crate::{Client, Error};

/// Connections kept for later transactions; more are closed when their transaction ends.
const IDLE_CONNECTIONS: usize = 4;

impl Client {
    /// Begins a transaction on the service and returns a client whose statements run in
    /// it, on a connection of its own. End it with [`Client::end`].
    ///
    /// A client of [`Client::session`] begins on its own connection, in its session.
    pub fn begin(&self) -> Result<Client, Error> {
        let flight = if self.own_session {
            self.flight.clone()
        } else {
            let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
            match idle {
                Some(flight) => flight,
                None => open(&self.target)?,
            }
        };
        let mut client = Client {
            own_session: self.own_session,
            ..self.on(flight)
        };
        let action = Action {
            r#type: "BeginTransaction".into(),
            body: ActionBeginTransactionRequest {}.as_any().encode_to_vec().into(),
        };
        let body = client.action(action, Some(METADATA_DEADLINE))?;
        let began: ActionBeginTransactionResult = Any::decode(body)
            .map_err(|error| Error::Protocol(format!("BeginTransaction answered with {error}")))?
            .unpack()
            .map_err(|error| Error::Protocol(format!("BeginTransaction answered with {error}")))?
            .ok_or_else(|| Error::Protocol("BeginTransaction answered with something else".into()))?;
        client.transaction = Some(began.transaction_id);
        Ok(client)
    }

    /// Commits (`commit`) or rolls back the transaction [`Client::begin`] began. The
    /// transaction is over whatever the outcome: a commit that fails rolls back.
    pub fn end(&self, commit: bool) -> Result<(), Error> {
        let Some(transaction_id) = self.transaction.clone() else {
            return Ok(());
        };
        let action = if commit {
            EndTransaction::Commit
        } else {
            EndTransaction::Rollback
        };
        let request = ActionEndTransactionRequest {
            transaction_id,
            action: action as i32,
        };
        let action = Action {
            r#type: "EndTransaction".into(),
            body: request.as_any().encode_to_vec().into(),
        };
        // A commit publishes what the transaction wrote, which takes as long as it takes.
        self.action(action, (!commit).then_some(METADATA_DEADLINE))?;
        if !self.own_session {
            let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(self.flight.clone());
            }
        }
        Ok(())
    }

    /// A client on a new connection of its own, outside any transaction, for which the
    /// service keeps a session: the temporary tables made through it (in its
    /// transactions, [`Client::begin`]) stay there until it is dropped, and its
    /// statements read them.
    pub fn session(&self) -> Result<Client, Error> {
        Ok(Client {
            own_session: true,
            ..self.on(open(&self.target)?)
        })
    }

    /// A client like this one on the connection `flight`, outside any transaction.
    fn on(&self, flight: FlightServiceClient<Channel>) -> Client {
        Client {
            target: Arc::clone(&self.target),
            credentials: Arc::clone(&self.credentials),
            flight,
            transaction: None,
            idle: Arc::clone(&self.idle),
            own_session: false,
            locations: Arc::clone(&self.locations),
            link: Arc::clone(&self.link),
            one_executor: self.one_executor,
            colocations: Arc::clone(&self.colocations),
        }
    }
}
