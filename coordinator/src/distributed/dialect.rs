//! How fragments are written for DuckDB.

use datafusion::sql::sqlparser::ast::BinaryOperator;
use datafusion::sql::unparser::dialect::{CharacterLengthStyle, Dialect, IntervalStyle};

/// DataFusion's DuckDB dialect, except for division: DataFusion's unparser
/// writes `//` there, which truncates fractions too; fragments divide only
/// floats (planning casts the operands of `/`, and the cut keeps any
/// integer division left LOCAL), so DuckDB's `/` means the same.
#[derive(Debug, Default)]
pub(crate) struct OpenDuckDialect;

impl Dialect for OpenDuckDialect {
    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('"')
    }

    fn character_length_style(&self) -> CharacterLengthStyle {
        CharacterLengthStyle::Length
    }

    fn division_operator(&self) -> BinaryOperator {
        BinaryOperator::Divide
    }

    fn interval_style(&self) -> IntervalStyle {
        IntervalStyle::SQLStandard
    }
}
