//! Catalog listings across the executors: databases, schemas, tables and
//! keys, as Flight SQL's metadata commands ask for them.

use openduck_api::{CatalogFilter, TableEntry};

use super::Coordinator;
use crate::error::Result;
use crate::route::snapshot_of;
use crate::site::Site;

impl Coordinator {
    /// Every database, sorted.
    pub fn catalogs(&self) -> Vec<String> {
        self.registry.databases()
    }

    /// `(database, schema)` pairs matching `filter`, over all executors.
    pub async fn schemas(&self, filter: &CatalogFilter) -> Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        for site in self.metadata_sites(filter).await? {
            all.extend(site.executor().schemas(filter).await?);
        }
        all.sort();
        Ok(all)
    }

    /// Tables and views matching `filter`, over all executors.
    pub async fn tables(&self, filter: &CatalogFilter, with_schemas: bool) -> Result<Vec<TableEntry>> {
        let mut all = Vec::new();
        for site in self.metadata_sites(filter).await? {
            all.extend(site.executor().tables(filter, with_schemas).await?);
        }
        all.sort_by(|a, b| (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name)));
        Ok(all)
    }

    /// Every column of every primary and foreign key, over all executors.
    pub async fn keys(&self) -> Result<Vec<openduck_api::KeyColumn>> {
        let mut all = Vec::new();
        for site in self.registry.sites().iter() {
            all.extend(site.executor().keys().await?);
        }
        Ok(all)
    }

    /// The executors whose catalogs `filter` may match. A filter naming a snapshot
    /// (`mydb@1a2b3c`) lists it as SQL would see it: attached first on its executor.
    async fn metadata_sites(&self, filter: &CatalogFilter) -> Result<Vec<Site>> {
        let sites = self.sites_for(filter);
        if let Some(snapshot) = filter.catalog.as_deref().filter(|name| snapshot_of(name).is_some()) {
            for site in &sites {
                site.executor().attach_snapshot(snapshot).await?;
            }
        }
        Ok(sites)
    }

    fn sites_for(&self, filter: &CatalogFilter) -> Vec<Site> {
        let sites = self.registry.sites();
        sites
            .iter()
            .filter(|site| filter.catalog.as_ref().is_none_or(|catalog| site.hosts(catalog)))
            .cloned()
            .collect()
    }
}
