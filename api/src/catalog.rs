//! What the hosted databases hold, as listings describe it.

use arrow::datatypes::SchemaRef;

/// Narrows a catalog listing. Patterns use SQL `LIKE` syntax (`%`, `_`, and
/// `\` to escape either); `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    /// Only this database (exact name).
    pub catalog: Option<String>,
    /// Only schemas whose name matches.
    pub schema_pattern: Option<String>,
    /// Only tables whose name matches.
    pub table_pattern: Option<String>,
}

/// Whether a [`TableEntry`] is a table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// A base table.
    Table,
    /// A view.
    View,
}

impl TableKind {
    /// The name Flight SQL and JDBC clients expect: `TABLE` or `VIEW`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TableKind::Table => "TABLE",
            TableKind::View => "VIEW",
        }
    }
}

/// A table or view of a hosted database.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// The database.
    pub catalog: String,
    /// The schema inside the database.
    pub schema: String,
    /// The table's name.
    pub name: String,
    /// Table or view.
    pub kind: TableKind,
    /// The Arrow schema of its rows, when asked for.
    pub arrow_schema: Option<SchemaRef>,
    /// About how many rows a table has (DuckDB's `estimated_size`, exact
    /// after a checkpoint); `None` for a view.
    pub estimated_rows: Option<u64>,
}

/// One column of a primary key or foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    /// The database of the table that has the key.
    pub catalog: String,
    /// Its schema.
    pub schema: String,
    /// The table that has the key.
    pub table: String,
    /// The key's column.
    pub column: String,
    /// The column's position in the key, from 1.
    pub sequence: i32,
    /// The constraint's name.
    pub name: String,
    /// For a foreign key, the referenced table and column (in the same
    /// database and schema); `None` for a primary key.
    pub references: Option<(String, String)>,
}
