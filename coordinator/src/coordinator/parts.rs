//! A query across executors answered in parts, one endpoint per executor
//! (see [`DistributedPlan::parts`]), and whether one executor serves a set
//! of databases.

use arrow::datatypes::SchemaRef;
use openduck_proto::FragmentTicket;
use openduck_remote::TicketKind;
use tracing::debug;

use super::{Coordinator, PlannedEndpoint, PlannedQuery};
use crate::distributed::DistributedPlan;
use crate::error::Result;
use crate::scope::{Principal, Scope};

impl Coordinator {
    /// `plan` as one endpoint per part ([`DistributedPlan::parts`]), each
    /// part's ticket redeemed at its executor, for a client that reads
    /// every endpoint; `None` when it is not made of parts, or a part's rows
    /// would not come as the plan's schema says (its executor describes
    /// each part first).
    pub(super) async fn planned_in_parts(
        &self,
        scope: &Scope,
        query_id: &str,
        plan: &DistributedPlan,
    ) -> Result<Option<PlannedQuery>> {
        if !scope.reads_every_endpoint || scope.session.is_some() {
            return Ok(None);
        }
        let Some(parts) = plan.parts() else {
            return Ok(None);
        };
        let schema = plan.schema();
        let described = futures::future::try_join_all(parts.iter().map(|part| async move {
            part.site
                .executor()
                .describe(&scope.statement(&part.database, &part.sql))
                .await
        }))
        .await;
        let described = match described {
            Ok(described) => described,
            Err(error) => {
                // Answered in one endpoint: the plan's own fragments say what is wrong, if
                // anything is (a part written with names of its own, say).
                debug!(%query_id, %error, "a part of a query was not described; answered in one endpoint");
                return Ok(None);
            }
        };
        let same_columns = |arrived: &SchemaRef| {
            arrived.fields().len() == schema.fields().len()
                && arrived.fields().iter().zip(schema.fields()).all(|(arrived, planned)| {
                    arrived.name() == planned.name() && arrived.data_type() == planned.data_type()
                })
        };
        if !described
            .iter()
            .all(|description| description.schema.as_ref().is_some_and(same_columns))
        {
            debug!(%query_id, "a part of a query would arrive in other types; answered in one endpoint");
            return Ok(None);
        }
        let mut endpoints = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let fragment = FragmentTicket {
                // Each part is a query of its own on its executor (two may
                // share one), cancelled apart.
                query_id: format!("{query_id}.{index}"),
                executor_id: part.site.id().to_string(),
                database: part.database.clone(),
                sql: part.sql.clone(),
                parameters: Vec::new(),
                session_id: String::new(),
                schema: scope.schema.clone().unwrap_or_default(),
                read_only: scope.principal.is_read_only(),
                result_limit: 0,
                grants: scope.principal.grants().map(openduck_remote::grants_to_pb),
            };
            endpoints.push(PlannedEndpoint {
                ticket: self.signer.sign(TicketKind::Fragment(fragment)),
                location: self
                    .direct_results
                    .then(|| part.site.endpoint().map(str::to_string))
                    .flatten(),
            });
        }
        debug!(%query_id, parts = endpoints.len(), "planned a query across executors in parts");
        Ok(Some(PlannedQuery {
            query_id: query_id.to_string(),
            schema: Some(schema),
            endpoints,
            executor_id: parts[0].site.id().to_string(),
            ran: false,
        }))
    }

    /// Whether one executor serves every one of `databases` (a query that
    /// reads only them runs there verbatim, in its DuckDB), as far as
    /// `principal` may know: false when it may not use one of them.
    pub fn on_one_executor(&self, principal: &Principal, databases: &[String]) -> bool {
        if databases.iter().any(|database| !principal.may_use(database)) {
            return false;
        }
        if self.registry.has_replicas() {
            return self.registry.reader_for(databases.iter(), None).is_some();
        }
        let mut sites = databases.iter().map(|database| self.registry.site_for(database));
        match sites.next() {
            Some(Some(first)) => sites.all(|site| site.is_some_and(|site| site.id() == first.id())),
            _ => false,
        }
    }
}
