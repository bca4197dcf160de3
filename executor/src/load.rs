//! How busy an executor is and where its replicas stand, for operators
//! (`openduck status` reads it from the registry).

use crate::executor::Executor;
pub use crate::replica::ReplicaProgress;

/// A moment's view of an executor's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Statements running now, in the pool and in sessions.
    pub statements_running: usize,
    /// Client sessions open.
    pub sessions_open: usize,
    /// One per database served as a read replica.
    pub replicas: Vec<ReplicaProgress>,
}

impl Executor {
    /// What this executor is doing now.
    pub fn load(&self) -> Load {
        Load {
            statements_running: self.pool().running_count(),
            sessions_open: self.sessions.open_count(),
            replicas: self
                .replication
                .as_ref()
                .map(|replication| replication.progress())
                .unwrap_or_default(),
        }
    }
}
