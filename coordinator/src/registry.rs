//! Which executors exist and which databases each serves.

use std::sync::Arc;

use openduck_executor::Executor;

/// The executors of an embedded deployment: fixed, in this process.
#[derive(Debug, Default)]
pub struct EmbeddedRegistry {
    executors: Vec<Arc<Executor>>,
}

impl EmbeddedRegistry {
    /// A registry of the given in-process executors.
    pub fn new(executors: Vec<Arc<Executor>>) -> Self {
        EmbeddedRegistry { executors }
    }

    /// Every executor.
    pub fn executors(&self) -> &[Arc<Executor>] {
        &self.executors
    }

    /// The executor with this id.
    pub fn executor(&self, id: &str) -> Option<&Arc<Executor>> {
        self.executors.iter().find(|executor| executor.id() == id)
    }

    /// The executor that serves `database`.
    pub fn executor_for(&self, database: &str) -> Option<&Arc<Executor>> {
        self.executors.iter().find(|executor| executor.hosts(database))
    }

    /// Every database served, in registration order.
    pub fn databases(&self) -> Vec<String> {
        self.executors
            .iter()
            .flat_map(|executor| executor.databases().iter().cloned())
            .collect()
    }
}
