//! Server-side state of prepared statements: the SQL and bound parameters
//! behind each handle a client holds.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// A prepared statement as the server remembers it.
#[derive(Debug, Clone)]
pub(crate) struct PreparedStatement {
    /// The SQL text.
    pub(crate) sql: String,
    /// Parameter rows bound with DoPut, used by the next execution.
    pub(crate) parameters: Option<RecordBatch>,
}

/// Open prepared statements, bounded so that clients that never close
/// theirs cannot exhaust memory.
#[derive(Debug)]
pub(crate) struct PreparedStatements {
    entries: Mutex<HashMap<Bytes, PreparedStatement>>,
    limit: usize,
}

impl PreparedStatements {
    pub(crate) fn new(limit: usize) -> Self {
        PreparedStatements {
            entries: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// Stores a new statement and returns its handle (a random UUID, so that
    /// handles cannot be guessed).
    pub(crate) fn create(&self, sql: String) -> Result<Bytes> {
        let mut entries = self.entries.lock();
        if entries.len() >= self.limit {
            return Err(Error::TooManyPreparedStatements(self.limit));
        }
        let handle = Bytes::from(uuid::Uuid::new_v4().to_string().into_bytes());
        entries.insert(handle.clone(), PreparedStatement { sql, parameters: None });
        Ok(handle)
    }

    pub(crate) fn get(&self, handle: &[u8]) -> Result<PreparedStatement> {
        self.entries
            .lock()
            .get(handle)
            .cloned()
            .ok_or(Error::UnknownPreparedStatement)
    }

    pub(crate) fn bind(&self, handle: &[u8], parameters: Option<RecordBatch>) -> Result<()> {
        let mut entries = self.entries.lock();
        let entry = entries.get_mut(handle).ok_or(Error::UnknownPreparedStatement)?;
        entry.parameters = parameters;
        Ok(())
    }

    pub(crate) fn close(&self, handle: &[u8]) -> Result<()> {
        self.entries
            .lock()
            .remove(handle)
            .map(|_| ())
            .ok_or(Error::UnknownPreparedStatement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_bounded_and_closable() {
        let store = PreparedStatements::new(2);
        let a = store.create("SELECT 1".into()).unwrap();
        let _b = store.create("SELECT 2".into()).unwrap();
        assert!(matches!(
            store.create("SELECT 3".into()),
            Err(Error::TooManyPreparedStatements(2))
        ));
        assert_eq!(store.get(&a).unwrap().sql, "SELECT 1");
        store.close(&a).unwrap();
        assert!(matches!(store.get(&a), Err(Error::UnknownPreparedStatement)));
        assert!(matches!(store.close(b"forged"), Err(Error::UnknownPreparedStatement)));
        store.create("SELECT 4".into()).unwrap();
    }
}
