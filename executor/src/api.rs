//! The executor interface, answered by this process's DuckDB.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use openduck_api::{
    Batches, CatalogFilter, Description, ExecutorApi, Hosting, IngestTarget, KeyColumn, Result, Rows, Statement,
    TableEntry, TableName, TableStatistics,
};

use crate::executor::Executor;

#[async_trait::async_trait]
impl ExecutorApi for Executor {
    fn id(&self) -> &str {
        Executor::id(self)
    }

    fn hosting(&self) -> Option<Hosting> {
        Some(Hosting {
            databases: self.writers(),
            replicas: self.replicas().to_vec(),
            catalog_version: *self.catalog_changes().borrow(),
        })
    }

    async fn describe(&self, statement: &Statement) -> Result<Description> {
        Ok(Executor::describe(self, statement).await?)
    }

    async fn query(&self, statement: Statement) -> Result<Rows> {
        let rows = Executor::query(self, statement).await?;
        Ok(Rows {
            schema: rows.schema(),
            batches: Box::pin(rows.map_err(Into::into)),
        })
    }

    async fn update(&self, statement: Statement) -> Result<Option<u64>> {
        Ok(Executor::update(self, statement).await?)
    }

    async fn ingest(&self, target: IngestTarget, schema: SchemaRef, batches: Batches) -> Result<u64> {
        Ok(Executor::ingest(self, target, schema, batches).await?)
    }

    async fn cancel(&self, query_id: &str) -> Result<bool> {
        Ok(Executor::cancel(self, query_id))
    }

    async fn open_session(&self) -> Result<String> {
        let session = Executor::open_session(self)?;
        let id = session.id().to_string();
        self.sessions.hold(session);
        Ok(id)
    }

    async fn close_session(&self, session_id: &str) -> Result<()> {
        self.sessions.release(session_id);
        Ok(())
    }

    async fn begin(&self, session_id: &str, read_only: bool) -> Result<()> {
        Ok(Executor::begin(self, session_id, read_only).await?)
    }

    async fn commit(&self, session_id: &str) -> Result<()> {
        Ok(Executor::commit(self, session_id).await?)
    }

    async fn rollback(&self, session_id: &str) -> Result<()> {
        Ok(Executor::rollback(self, session_id).await?)
    }

    async fn attach_snapshot(&self, name: &str) -> Result<()> {
        Ok(Executor::attach_snapshot(self, name).await?)
    }

    async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        Ok(Executor::schemas(self, filter).await?)
    }

    async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        Ok(Executor::tables(self, filter, with_schemas).await?)
    }

    async fn keys(&self) -> Result<Vec<KeyColumn>> {
        Ok(Executor::keys(self).await?)
    }

    async fn table_statistics(&self, table: &TableName) -> Result<TableStatistics> {
        Ok(Executor::table_statistics(self, table).await?)
    }

    async fn shutdown(&self, grace: Duration) -> Result<()> {
        Ok(Executor::shutdown(self, grace).await?)
    }
}
