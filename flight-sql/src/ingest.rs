//! Flight SQL's CommandStatementIngest, mapped to an executor ingest.

use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use openduck_coordinator::{quote_identifier, IngestMode, IngestTarget};

use crate::error::{Error, Result};

/// Where and how a client's ingest writes.
pub(crate) fn ingest_target(command: &CommandStatementIngest, default_database: &str) -> Result<IngestTarget> {
    if command.table.is_empty() {
        return Err(Error::InvalidRequest("an ingest must name its target table".into()));
    }
    let options = command.table_definition_options.unwrap_or_default();
    let if_not_exist = TableNotExistOption::try_from(options.if_not_exist).unwrap_or(TableNotExistOption::Unspecified);
    let if_exists = TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    let create = !matches!(if_not_exist, TableNotExistOption::Fail);
    let mode = match (create, if_exists) {
        (true, TableExistsOption::Fail | TableExistsOption::Unspecified) => IngestMode::Create,
        (true, TableExistsOption::Append) => IngestMode::CreateOrAppend,
        (_, TableExistsOption::Replace) => IngestMode::Replace,
        (false, TableExistsOption::Append) => IngestMode::Append,
        (false, TableExistsOption::Fail | TableExistsOption::Unspecified) => {
            return Err(Error::InvalidRequest(
                "an ingest that may neither create the table nor write to an existing one does nothing".into(),
            ))
        }
    };
    Ok(IngestTarget {
        database: command.catalog.clone().unwrap_or_else(|| default_database.to_string()),
        schema: command.schema.clone(),
        table: command.table.clone(),
        mode,
        temporary: command.temporary,
        session_id: None,
        in_transaction: false,
        from_query: false,
    })
}

/// How the query history shows an ingest: what it does, as DuckDB SQL would say it.
pub(crate) fn ingest_statement(target: &IngestTarget) -> String {
    let table = match &target.schema {
        Some(schema) => format!(
            "{}.{}.{}",
            quote_identifier(&target.database),
            quote_identifier(schema),
            quote_identifier(&target.table)
        ),
        None => format!(
            "{}.{}",
            quote_identifier(&target.database),
            quote_identifier(&target.table)
        ),
    };
    let mode = match target.mode {
        IngestMode::Create => "create",
        IngestMode::CreateOrAppend => "create or append",
        IngestMode::Append => "append",
        IngestMode::Replace => "replace",
    };
    let temporary = if target.temporary { " temporary" } else { "" };
    format!("INGEST INTO{temporary} {table} ({mode})")
}

#[cfg(test)]
mod tests {
    use arrow_flight::sql::TableDefinitionOptions;

    use super::*;

    fn command(if_not_exist: TableNotExistOption, if_exists: TableExistsOption) -> CommandStatementIngest {
        CommandStatementIngest {
            table_definition_options: Some(TableDefinitionOptions {
                if_not_exist: if_not_exist as i32,
                if_exists: if_exists as i32,
            }),
            table: "t".into(),
            ..CommandStatementIngest::default()
        }
    }

    #[test]
    fn maps_adbc_ingest_modes() {
        use TableExistsOption as E;
        use TableNotExistOption as N;
        let mode = |n, e| ingest_target(&command(n, e), "db").map(|target| target.mode);
        assert_eq!(mode(N::Create, E::Fail).unwrap(), IngestMode::Create);
        assert_eq!(mode(N::Fail, E::Append).unwrap(), IngestMode::Append);
        assert_eq!(mode(N::Create, E::Replace).unwrap(), IngestMode::Replace);
        assert_eq!(mode(N::Create, E::Append).unwrap(), IngestMode::CreateOrAppend);
        assert!(mode(N::Fail, E::Fail).is_err());
        let unnamed = CommandStatementIngest::default();
        assert!(ingest_target(&unnamed, "db").is_err());
        assert_eq!(
            ingest_target(&command(N::Create, E::Fail), "db").unwrap().database,
            "db"
        );
    }
}
