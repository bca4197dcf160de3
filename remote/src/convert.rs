//! Conversions between the executor's types and their `openduck.v1` wire form.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use openduck_api::{
    CatalogFilter, ColumnStatistics, Description, Grants, IngestMode, IngestTarget, KeyColumn, Statement, TableEntry,
    TableKind, TableName, TableStatistics,
};
use openduck_proto as pb;

/// A schema as an Arrow IPC stream without batches.
pub(crate) fn schema_to_bytes(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut bytes = Vec::new();
    StreamWriter::try_new(&mut bytes, schema)?.finish()?;
    Ok(bytes)
}

pub(crate) fn schema_from_bytes(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    Ok(StreamReader::try_new(bytes, None)?.schema())
}

/// Rows as one Arrow IPC stream (parameters of a statement).
pub fn batch_to_bytes(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}

/// The rows of an Arrow IPC stream, as one batch.
pub fn batch_from_bytes(bytes: &[u8]) -> Result<RecordBatch, ArrowError> {
    let reader = StreamReader::try_new(bytes, None)?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    arrow::compute::concat_batches(&schema, &batches)
}

/// The statement a fragment runs.
pub fn statement_of(ticket: pb::FragmentTicket) -> Result<Statement, ArrowError> {
    let mut statement = Statement::new(ticket.database, ticket.sql);
    statement.schema = Some(ticket.schema).filter(|schema| !schema.is_empty());
    statement.session_id = Some(ticket.session_id).filter(|id| !id.is_empty());
    statement.query_id = Some(ticket.query_id).filter(|id| !id.is_empty());
    statement.read_only = ticket.read_only;
    statement.grants = grants_of(ticket.grants);
    statement.result_limit = Some(ticket.result_limit).filter(|limit| *limit > 0);
    if !ticket.parameters.is_empty() {
        statement = statement.with_parameters(batch_from_bytes(&ticket.parameters)?);
    }
    Ok(statement)
}

/// The fragment that runs `statement` on `executor_id`.
pub fn ticket_of(statement: &Statement, executor_id: &str) -> Result<pb::FragmentTicket, ArrowError> {
    Ok(pb::FragmentTicket {
        query_id: statement.query_id.clone().unwrap_or_default(),
        executor_id: executor_id.to_string(),
        database: statement.database.clone(),
        sql: statement.sql.clone(),
        parameters: statement
            .parameters
            .as_ref()
            .map(batch_to_bytes)
            .transpose()?
            .unwrap_or_default(),
        session_id: statement.session_id.clone().unwrap_or_default(),
        schema: statement.schema.clone().unwrap_or_default(),
        read_only: statement.read_only,
        result_limit: statement.result_limit.unwrap_or_default(),
        grants: statement.grants.as_ref().map(grants_to_pb),
    })
}

/// The grants a ticket carries.
pub fn grants_of(grants: Option<pb::Grants>) -> Option<Grants> {
    grants.map(|grants| Grants::new(grants.databases))
}

/// Grants as a ticket carries them.
pub fn grants_to_pb(grants: &Grants) -> pb::Grants {
    pb::Grants {
        databases: grants.databases().to_vec(),
    }
}

pub(crate) fn description_to_pb(description: &Description) -> Result<pb::Description, ArrowError> {
    Ok(pb::Description {
        schema: description.schema.as_deref().map(schema_to_bytes).transpose()?,
        parameters: schema_to_bytes(&description.parameters)?,
        is_query: description.is_query,
    })
}

pub(crate) fn description_from_pb(description: pb::Description) -> Result<Description, ArrowError> {
    Ok(Description {
        schema: description.schema.as_deref().map(schema_from_bytes).transpose()?,
        parameters: Schema::clone(schema_from_bytes(&description.parameters)?.as_ref()),
        is_query: description.is_query,
    })
}

pub(crate) fn filter_to_pb(filter: &CatalogFilter) -> pb::CatalogFilter {
    pb::CatalogFilter {
        catalog: filter.catalog.clone(),
        schema_pattern: filter.schema_pattern.clone(),
        table_pattern: filter.table_pattern.clone(),
    }
}

pub(crate) fn filter_from_pb(filter: pb::CatalogFilter) -> CatalogFilter {
    CatalogFilter {
        catalog: filter.catalog,
        schema_pattern: filter.schema_pattern,
        table_pattern: filter.table_pattern,
    }
}

pub(crate) fn table_to_pb(table: &TableEntry) -> Result<pb::Table, ArrowError> {
    Ok(pb::Table {
        catalog: table.catalog.clone(),
        schema: table.schema.clone(),
        name: table.name.clone(),
        is_view: table.kind == TableKind::View,
        arrow_schema: table.arrow_schema.as_deref().map(schema_to_bytes).transpose()?,
        estimated_rows: table.estimated_rows,
    })
}

pub(crate) fn table_from_pb(table: pb::Table) -> Result<TableEntry, ArrowError> {
    Ok(TableEntry {
        catalog: table.catalog,
        schema: table.schema,
        name: table.name,
        kind: if table.is_view {
            TableKind::View
        } else {
            TableKind::Table
        },
        arrow_schema: table.arrow_schema.as_deref().map(schema_from_bytes).transpose()?,
        estimated_rows: table.estimated_rows,
    })
}

pub(crate) fn key_to_pb(key: &KeyColumn) -> pb::KeyColumn {
    let (referenced_table, referenced_column) = key.references.clone().unzip();
    pb::KeyColumn {
        catalog: key.catalog.clone(),
        schema: key.schema.clone(),
        table: key.table.clone(),
        column: key.column.clone(),
        sequence: key.sequence,
        name: key.name.clone(),
        referenced_table,
        referenced_column,
    }
}

pub(crate) fn key_from_pb(key: pb::KeyColumn) -> KeyColumn {
    KeyColumn {
        catalog: key.catalog,
        schema: key.schema,
        table: key.table,
        column: key.column,
        sequence: key.sequence,
        name: key.name,
        references: key.referenced_table.zip(key.referenced_column),
    }
}

pub(crate) fn ingest_to_pb(target: &IngestTarget) -> pb::Ingest {
    let mode = match target.mode {
        IngestMode::Create => pb::IngestMode::Create,
        IngestMode::Append => pb::IngestMode::Append,
        IngestMode::Replace => pb::IngestMode::Replace,
        IngestMode::CreateOrAppend => pb::IngestMode::CreateOrAppend,
    };
    pb::Ingest {
        database: target.database.clone(),
        schema: target.schema.clone(),
        table: target.table.clone(),
        mode: mode as i32,
        temporary: target.temporary,
        session_id: target.session_id.clone().unwrap_or_default(),
        in_transaction: target.in_transaction,
        from_query: target.from_query,
    }
}

pub(crate) fn ingest_from_pb(ingest: pb::Ingest) -> IngestTarget {
    let mode = match ingest.mode() {
        pb::IngestMode::Create => IngestMode::Create,
        pb::IngestMode::Append => IngestMode::Append,
        pb::IngestMode::Replace => IngestMode::Replace,
        pb::IngestMode::CreateOrAppend => IngestMode::CreateOrAppend,
    };
    IngestTarget {
        database: ingest.database,
        schema: ingest.schema,
        table: ingest.table,
        mode,
        temporary: ingest.temporary,
        session_id: Some(ingest.session_id).filter(|id| !id.is_empty()),
        in_transaction: ingest.in_transaction,
        from_query: ingest.from_query,
    }
}

pub(crate) fn table_name_to_pb(name: &TableName) -> pb::TableName {
    pb::TableName {
        database: name.database.clone(),
        schema: name.schema.clone(),
        table: name.table.clone(),
    }
}

pub(crate) fn table_name_from_pb(name: pb::TableName) -> TableName {
    TableName::new(name.database, name.schema, name.table)
}

pub(crate) fn statistics_to_pb(statistics: TableStatistics) -> pb::TableStatistics {
    let columns = statistics.columns.into_iter().map(|column| pb::ColumnStatistics {
        name: column.name,
        null_count: column.null_count,
        distinct_estimate: column.distinct_estimate,
        min: column.min,
        max: column.max,
    });
    pb::TableStatistics {
        rows: statistics.rows,
        columns: columns.collect(),
    }
}

pub(crate) fn statistics_from_pb(statistics: pb::TableStatistics) -> TableStatistics {
    let columns = statistics.columns.into_iter().map(|column| ColumnStatistics {
        name: column.name,
        null_count: column.null_count,
        distinct_estimate: column.distinct_estimate,
        min: column.min,
        max: column.max,
    });
    TableStatistics {
        rows: statistics.rows,
        columns: columns.collect(),
    }
}
