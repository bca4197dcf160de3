//! Small helpers for writing SQL text safely.

/// Quotes an identifier for DuckDB: `my "db"` becomes `"my ""db"""`.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for DuckDB: `it's` becomes `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Whether `name` may name a database: a plain identifier of at most 63
/// characters, so that it is also a safe file name inside the data directory.
pub fn is_valid_database_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote_identifier("t"), "\"t\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn database_names_cannot_escape_the_data_directory() {
        for good in ["mydb", "_x", "sales_2024"] {
            assert!(is_valid_database_name(good), "{good}");
        }
        for bad in ["", "../etc", "a/b", "a.b", "1db", "x y", "db\0", &"a".repeat(64)] {
            assert!(!is_valid_database_name(bad), "{bad:?}");
        }
    }
}
