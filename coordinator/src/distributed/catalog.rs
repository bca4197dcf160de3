//! The coordinator's DataFusion catalog: a mirror of every executor's
//! databases, schemas and tables. A table is a [`RemoteTable`]: DataFusion
//! plans over its schema, and the cut turns every scan of it into part of a
//! fragment that runs on its executor.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::memory::{MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider};
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, Session};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use openduck_api::{quote_identifier, CatalogFilter, TableKind};

use super::fragment::FragmentExec;
use crate::error::Result;
use crate::site::Site;

/// A table or view of one executor, as DataFusion sees it.
#[derive(Debug)]
pub(crate) struct RemoteTable {
    pub(crate) site: Site,
    pub(crate) catalog: String,
    pub(crate) schema: String,
    pub(crate) name: String,
    /// Column names lower-cased (DataFusion folds unquoted names; DuckDB
    /// matches names without regard to case).
    arrow_schema: SchemaRef,
    kind: TableKind,
    /// About how many rows it has (`None` for a view): what the cut weighs
    /// when it moves a join's small side to its large side.
    pub(crate) estimated_rows: Option<u64>,
}

impl RemoteTable {
    /// `"catalog"."schema"."name"`, quoted for DuckDB.
    pub(crate) fn qualified_name(&self) -> String {
        format!(
            "{}.{}.{}",
            quote_identifier(&self.catalog),
            quote_identifier(&self.schema),
            quote_identifier(&self.name)
        )
    }
}

#[async_trait]
impl TableProvider for RemoteTable {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.arrow_schema)
    }

    fn table_type(&self) -> TableType {
        match self.kind {
            TableKind::Table => TableType::Base,
            TableKind::View => TableType::View,
        }
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters stay Filter nodes; the cut moves them into the fragment.
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    /// A scan the cut did not take into a fragment reads the columns it
    /// needs straight from the executor.
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(indices) => Arc::new(self.arrow_schema.project(indices)?),
            None => SchemaRef::clone(&self.arrow_schema),
        };
        let columns = if schema.fields().is_empty() {
            "NULL AS no_columns".to_string()
        } else {
            schema
                .fields()
                .iter()
                .map(|field| quote_identifier(field.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!("SELECT {columns} FROM {}", self.qualified_name());
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        Ok(Arc::new(FragmentExec::new(
            self.site.clone(),
            self.catalog.clone(),
            sql,
            schema,
        )))
    }
}

/// Lists every table of every executor and builds the catalog over them.
pub(crate) async fn mirror(sites: &[Site]) -> Result<Arc<dyn CatalogProviderList>> {
    let mut catalogs: BTreeMap<String, BTreeMap<String, Vec<Arc<RemoteTable>>>> = BTreeMap::new();
    for site in sites {
        for database in site.databases() {
            catalogs.entry(database.clone()).or_default();
        }
        for entry in site.executor().tables(&CatalogFilter::default(), true).await? {
            if !site.hosts(&entry.catalog) {
                continue; // DuckDB's own `system` and `temp` catalogs
            }
            let Some(arrow_schema) = entry.arrow_schema else {
                continue;
            };
            let table = RemoteTable {
                site: site.clone(),
                arrow_schema: lower_case_names(&arrow_schema),
                kind: entry.kind,
                estimated_rows: entry.estimated_rows,
                catalog: entry.catalog.clone(),
                schema: entry.schema.clone(),
                name: entry.name,
            };
            catalogs
                .entry(entry.catalog)
                .or_default()
                .entry(entry.schema)
                .or_default()
                .push(Arc::new(table));
        }
    }
    let list = MemoryCatalogProviderList::new();
    for (name, schemas) in catalogs {
        let catalog = MemoryCatalogProvider::new();
        for (schema_name, tables) in schemas {
            let schema = MemorySchemaProvider::new();
            for table in tables {
                let folded = table.name.to_lowercase();
                let provider: Arc<dyn TableProvider> = table;
                if !schema.table_exist(&folded) {
                    schema
                        .register_table(folded, provider)
                        .map_err(super::from_datafusion)?;
                }
            }
            catalog
                .register_schema(&schema_name.to_lowercase(), Arc::new(schema))
                .map_err(super::from_datafusion)?;
        }
        list.register_catalog(name.to_lowercase(), Arc::new(catalog));
    }
    Ok(Arc::new(list))
}

fn lower_case_names(schema: &Schema) -> SchemaRef {
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let folded = field.name().to_lowercase();
            // Two columns that differ only in case keep their names.
            let name = if seen.insert(folded.clone()) {
                folded
            } else {
                field.name().clone()
            };
            Field::clone(field).with_name(name)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
