//! What GetSqlInfo reports about the server: every key of the Flight SQL
//! specification (the Flight SQL JDBC driver reads about 70 of them and fails
//! on a missing one), each with the value type the specification gives and a
//! value that is true of openduck over DuckDB. Substrait versions are left out:
//! Substrait is not supported.

use std::collections::HashMap;

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
    SqlSupportsConvert, SqlTransactionIsolationLevel,
};

/// The Arrow version the server is built with.
pub(crate) const ARROW_VERSION: &str = "58.4";

/// Words DuckDB reserves beyond SQL:2003 (JDBC's `getSQLKeywords`).
const KEYWORDS: &[&str] = &[
    "ANTI",
    "ASOF",
    "ATTACH",
    "COLUMNS",
    "DESCRIBE",
    "DETACH",
    "EXCLUDE",
    "EXPORT",
    "GLOB",
    "ILIKE",
    "IMPORT",
    "INSTALL",
    "LOAD",
    "MACRO",
    "PIVOT",
    "PIVOT_LONGER",
    "PIVOT_WIDER",
    "POSITIONAL",
    "PRAGMA",
    "QUALIFY",
    "REPLACE",
    "SEMI",
    "SHOW",
    "SUMMARIZE",
    "UNPIVOT",
    "VACUUM",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "ABS", "ACOS", "ASIN", "ATAN", "ATAN2", "CEIL", "CEILING", "COS", "COT", "DEGREES", "EXP", "FLOOR", "LN", "LOG",
    "LOG10", "LOG2", "MOD", "PI", "POWER", "RADIANS", "RANDOM", "ROUND", "SIGN", "SIN", "SQRT", "TAN", "TRUNC",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ASCII",
    "CHR",
    "CONCAT",
    "CONCAT_WS",
    "CONTAINS",
    "LCASE",
    "LEFT",
    "LENGTH",
    "LOWER",
    "LPAD",
    "LTRIM",
    "POSITION",
    "REGEXP_MATCHES",
    "REGEXP_REPLACE",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "RPAD",
    "RTRIM",
    "SPLIT_PART",
    "STARTS_WITH",
    "STRPOS",
    "SUBSTRING",
    "TRIM",
    "UCASE",
    "UPPER",
];
const SYSTEM_FUNCTIONS: &[&str] = &[
    "COALESCE",
    "CURRENT_DATABASE",
    "CURRENT_SCHEMA",
    "IFNULL",
    "NULLIF",
    "TYPEOF",
    "VERSION",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "AGE",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATE_ADD",
    "DATE_DIFF",
    "DATE_PART",
    "DATE_SUB",
    "DATE_TRUNC",
    "DAYNAME",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "EPOCH",
    "EXTRACT",
    "HOUR",
    "LAST_DAY",
    "MAKE_DATE",
    "MAKE_TIMESTAMP",
    "MINUTE",
    "MONTH",
    "MONTHNAME",
    "NOW",
    "QUARTER",
    "SECOND",
    "STRFTIME",
    "STRPTIME",
    "WEEK",
    "YEAR",
];

/// A bitmask with the given bits set.
fn bits(positions: &[i32]) -> i32 {
    positions.iter().fold(0, |mask, bit| mask | (1 << bit))
}

/// Which SQL types `CAST` turns into which (JDBC's `supportsConvert`).
fn supported_conversions() -> HashMap<i32, Vec<i32>> {
    use SqlSupportsConvert as T;
    let numeric = [
        T::SqlConvertBigint,
        T::SqlConvertBit,
        T::SqlConvertDecimal,
        T::SqlConvertFloat,
        T::SqlConvertInteger,
        T::SqlConvertNumeric,
        T::SqlConvertReal,
        T::SqlConvertSmallint,
        T::SqlConvertTinyint,
    ];
    let text = [T::SqlConvertChar, T::SqlConvertLongvarchar, T::SqlConvertVarchar];
    let binary = [T::SqlConvertBinary, T::SqlConvertLongvarbinary, T::SqlConvertVarbinary];
    let temporal = [T::SqlConvertDate, T::SqlConvertTime, T::SqlConvertTimestamp];
    let intervals = [T::SqlConvertIntervalDayTime, T::SqlConvertIntervalYearMonth];
    let ids = |types: &[T]| types.iter().map(|t| *t as i32).collect::<Vec<i32>>();
    let mut map = HashMap::new();
    for from in numeric {
        map.insert(from as i32, [ids(&numeric), ids(&text)].concat());
    }
    for from in text {
        map.insert(
            from as i32,
            [ids(&numeric), ids(&text), ids(&binary), ids(&temporal), ids(&intervals)].concat(),
        );
    }
    for from in binary {
        map.insert(from as i32, [ids(&binary), ids(&text)].concat());
    }
    for from in temporal {
        map.insert(from as i32, [ids(&temporal), ids(&text)].concat());
    }
    for from in intervals {
        map.insert(from as i32, [ids(&intervals), ids(&text)].concat());
    }
    map
}

/// Builds the server's SqlInfo table.
pub(crate) fn sql_info() -> SqlInfoData {
    let mut info = SqlInfoDataBuilder::new();
    // Server.
    info.append(SqlInfo::FlightSqlServerName, "openduck");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, ARROW_VERSION);
    info.append(SqlInfo::FlightSqlServerReadOnly, false);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::Transaction as i32,
    );
    info.append(SqlInfo::FlightSqlServerCancel, true);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    info.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, true);
    info.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    info.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    // SQL language.
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, true);
    info.append(SqlInfo::SqlDdlTable, true);
    let insensitive = SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32;
    info.append(SqlInfo::SqlIdentifierCase, insensitive);
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(SqlInfo::SqlQuotedIdentifierCase, insensitive);
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    info.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedAtEnd as i32);
    info.append(SqlInfo::SqlKeywords, KEYWORDS);
    info.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    info.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    info.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    info.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(SqlInfo::SqlSupportsConvert, supported_conversions());
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // GROUP BY columns not in the select list, and beyond it.
    info.append(SqlInfo::SqlSupportedGroupBy, bits(&[0, 1]));
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // ODBC minimum and core grammar; ANSI-92 entry and intermediate levels.
    info.append(SqlInfo::SqlSupportedGrammar, bits(&[0, 1]));
    info.append(SqlInfo::SqlAnsi92SupportedLevel, bits(&[0, 1]));
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, true);
    info.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "database");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    // Schema and catalog names in index definitions.
    info.append(SqlInfo::SqlSchemasSupportedActions, bits(&[1]));
    info.append(SqlInfo::SqlCatalogsSupportedActions, bits(&[1]));
    info.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Subqueries in comparisons, EXISTS, IN and quantified comparisons.
    info.append(SqlInfo::SqlSupportedSubqueries, bits(&[0, 1, 2, 3]));
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    info.append(SqlInfo::SqlSupportedUnions, bits(&[0, 1]));
    // Limits: 0 means none (or unknown), as JDBC defines it.
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        info.append(limit, 0i64);
    }
    info.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
    // DuckDB runs transactions under snapshot isolation; of the JDBC levels
    // that is repeatable read.
    let isolation = SqlTransactionIsolationLevel::SqlTransactionRepeatableRead as i32;
    info.append(SqlInfo::SqlDefaultTransactionIsolation, isolation);
    info.append(SqlInfo::SqlTransactionsSupported, true);
    info.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, bits(&[isolation]));
    info.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    info.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    // Forward-only, read-only result sets.
    info.append(SqlInfo::SqlSupportedResultSetTypes, bits(&[1]));
    info.append(SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified, bits(&[1]));
    info.append(SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly, bits(&[1]));
    info.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive, 0i32);
    info.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive, 0i32);
    info.append(SqlInfo::SqlBatchUpdatesSupported, true);
    info.append(SqlInfo::SqlSavepointsSupported, false);
    info.append(SqlInfo::SqlNamedParametersSupported, false);
    info.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    info.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    info.build().expect("static SqlInfo values have valid types")
}
