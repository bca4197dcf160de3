//! The databases an account was granted, and what they allow.

use std::fmt;

use crate::dialect::BUILT_IN_CATALOGS;

/// The databases a user account may read and change, as its line of the
/// users file grants them. A statement of such an account may read and
/// change these databases and their snapshots (`name@snapshot`), read the
/// built-in catalogs (DuckDB's `system` and `memory`, openduck's own) and
/// use its session's temporary tables; nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    databases: Vec<String>,
}

impl Grants {
    /// Grants of `databases`, in their order (names compare as DuckDB
    /// compares catalog names, ignoring case; a repeated one counts once).
    pub fn new(databases: impl IntoIterator<Item = String>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for database in databases {
            if !unique.iter().any(|known| known.eq_ignore_ascii_case(&database)) {
                unique.push(database);
            }
        }
        Grants { databases: unique }
    }

    /// The databases granted, in the order granted.
    pub fn databases(&self) -> &[String] {
        &self.databases
    }

    /// Whether a statement may read `catalog`.
    pub fn may_read(&self, catalog: &str) -> bool {
        self.may_change(catalog)
            || BUILT_IN_CATALOGS
                .iter()
                .any(|built_in| built_in.eq_ignore_ascii_case(catalog))
    }

    /// Whether a statement may change `catalog`: a granted database, a
    /// snapshot of one (snapshots are read-only anyway), or `temp`.
    pub fn may_change(&self, catalog: &str) -> bool {
        let database = catalog.split_once('@').map_or(catalog, |(database, _)| database);
        catalog.eq_ignore_ascii_case("temp")
            || self
                .databases
                .iter()
                .any(|granted| granted.eq_ignore_ascii_case(database))
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.databases.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_their_databases_and_snapshots_and_let_built_ins_be_read() {
        let grants = Grants::new(["sales".to_string(), "Web".to_string(), "SALES".to_string()]);
        assert_eq!(grants.databases(), ["sales", "Web"]);
        assert!(grants.may_change("sales") && grants.may_change("SALES") && grants.may_change("web"));
        assert!(grants.may_read("sales@1a2b3c") && grants.may_change("sales@1a2b3c"));
        assert!(grants.may_change("temp"));
        assert!(!grants.may_read("hr") && !grants.may_change("hr"));
        assert!(!grants.may_read("hr@1a2b3c") && !grants.may_read("salesx"));
        for built_in in ["system", "memory", "openduck"] {
            assert!(grants.may_read(built_in) && !grants.may_change(built_in), "{built_in}");
        }
        assert!(!Grants::new([]).may_read("sales"));
        assert_eq!(grants.to_string(), "sales, Web");
    }
}
