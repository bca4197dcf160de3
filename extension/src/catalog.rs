//! A database's schemas and tables as the service lists them.

use arrow::datatypes::SchemaRef;

/// The schemas and tables of one database.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Every schema, including those without tables.
    pub schemas: Vec<String>,
    /// Every table and view.
    pub tables: Vec<TableEntry>,
}

/// One table or view.
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// `BASE TABLE`, `VIEW`, … as the service says.
    pub kind: String,
    /// The columns, as the service's rows will carry them.
    pub arrow: SchemaRef,
    /// The service's estimate of the table's rows, if it gave one.
    pub rows: Option<u64>,
}
