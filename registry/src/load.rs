//! How busy each executor is, reported next to its record: read by
//! `openduck status`, never watched by coordinators.

use std::collections::BTreeMap;
use std::sync::Arc;

use etcd_client::{Client, PutOptions};
use openduck_proto::{ExecutorLoad, Message};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::{connect, get_prefix, RegistryConfig};

/// Where an executor's load comes from; set once it serves.
pub(crate) type LoadSource = Arc<dyn Fn() -> ExecutorLoad + Send + Sync>;

/// The load an announcement reports at each lease renewal, and the last one
/// put (so that an unchanged load is not put again).
#[derive(Default)]
pub(crate) struct LoadReport {
    source: Mutex<Option<LoadSource>>,
    last_put: Mutex<Option<(i64, ExecutorLoad)>>,
}

impl std::fmt::Debug for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadReport").finish_non_exhaustive()
    }
}

impl LoadReport {
    pub(crate) fn set_source(&self, source: LoadSource) {
        *self.source.lock() = Some(source);
    }

    /// Puts the current load under `lease` when it changed since the last
    /// put under that lease.
    pub(crate) async fn put(&self, client: &mut Client, config: &RegistryConfig, id: &str, lease: i64) -> Result<()> {
        let Some(source) = self.source.lock().clone() else {
            return Ok(());
        };
        let load = source();
        if self.last_put.lock().as_ref() == Some(&(lease, load.clone())) {
            return Ok(());
        }
        client
            .put(
                config.load_key(id),
                load.encode_to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            )
            .await
            .map_err(config.etcd_error())?;
        *self.last_put.lock() = Some((lease, load));
        Ok(())
    }
}

/// The load each live executor last reported, by executor id.
pub async fn loads(config: &RegistryConfig) -> Result<BTreeMap<String, ExecutorLoad>> {
    let mut client = connect(config).await?;
    let prefix = config.loads_prefix();
    let response = get_prefix(&mut client, config, &prefix).await?;
    let mut loads = BTreeMap::new();
    for kv in response.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let load = ExecutorLoad::decode(kv.value()).map_err(|error| Error::InvalidRecord {
            key: key.clone(),
            message: error.to_string(),
        })?;
        loads.insert(key[prefix.len()..].to_string(), load);
    }
    Ok(loads)
}
