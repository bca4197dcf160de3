//! A query whose rows are a UNION ALL of REMOTE fragments, nothing LOCAL
//! above them, can be answered in parts: one Flight endpoint per fragment,
//! each redeemed at its executor, read in parallel by a client that reads
//! every endpoint (the union has no order to keep).

use datafusion::logical_expr::LogicalPlan;
use openduck_api::quote_identifier;

use super::fragment::Fragment;
use super::DistributedPlan;
use crate::site::Site;

/// A part of a query's rows that one executor computes alone.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) site: Site,
    pub(crate) database: String,
    /// DuckDB SQL whose columns are named as the query's.
    pub(crate) sql: String,
}

impl DistributedPlan {
    /// Its parts, when its rows are a UNION ALL of fragments that each run
    /// alone on one executor (none reads a shipped table, which only the
    /// coordinator fills); `None` for every other plan.
    pub(crate) fn parts(&self) -> Option<Vec<Part>> {
        let LogicalPlan::Union(union) = &self.plan else {
            return None;
        };
        // The fragments name their columns c0, c1, ...; the client was
        // told the union's names (unique: DataFusion refuses duplicates).
        let names: Vec<String> = union
            .schema
            .fields()
            .iter()
            .map(|field| quote_identifier(field.name()))
            .collect();
        let names = names.join(", ");
        union
            .inputs
            .iter()
            .map(|input| {
                let LogicalPlan::Extension(extension) = input.as_ref() else {
                    return None;
                };
                let fragment = extension.node.as_any().downcast_ref::<Fragment>()?;
                fragment.shipped.is_empty().then(|| Part {
                    site: fragment.site.clone(),
                    database: fragment.database.clone(),
                    sql: format!("SELECT * FROM ({}) AS \"part\"({names})", fragment.sql),
                })
            })
            .collect()
    }
}
