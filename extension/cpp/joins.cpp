#include "joins.hpp"

#include "catalog.hpp"
#include "shipping.hpp"

#include "duckdb/catalog/catalog.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/expression/columnref_expression.hpp"
#include "duckdb/parser/expression/conjunction_expression.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/parsed_expression_iterator.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/parser/tableref/basetableref.hpp"
#include "duckdb/parser/tableref/expressionlistref.hpp"
#include "duckdb/parser/tableref/table_function_ref.hpp"
#include "duckdb/parser/tableref/joinref.hpp"

namespace openduck {

using namespace duckdb;

namespace {

//! The derived table's alias.
const char *const JOINED = "openduck_join";

//! A part of the FROM: a table, or anything else (a subquery, a table function, a view, a
//! CTE), whose columns are not known here.
struct Leaf {
	unique_ptr<TableRef> ref;
	//! The name its columns are qualified by: its alias, or the table's name.
	std::string name;
	optional_ptr<TableCatalogEntry> table;
	//! A table of the service.
	bool remote = false;
};

void Conjuncts(unique_ptr<ParsedExpression> expression, vector<unique_ptr<ParsedExpression>> &into) {
	if (expression->GetExpressionType() == ExpressionType::CONJUNCTION_AND) {
		for (auto &child : expression->Cast<ConjunctionExpression>().children) {
			Conjuncts(std::move(child), into);
		}
		return;
	}
	into.push_back(std::move(expression));
}

unique_ptr<ParsedExpression> And(vector<unique_ptr<ParsedExpression>> conjuncts) {
	if (conjuncts.empty()) {
		return nullptr;
	}
	if (conjuncts.size() == 1) {
		return std::move(conjuncts[0]);
	}
	return make_uniq<ConjunctionExpression>(ExpressionType::CONJUNCTION_AND, std::move(conjuncts));
}

//! `ref`'s parts (inner and comma joins taken apart) and its join conditions' conjuncts;
//! false for any other join.
bool Flatten(unique_ptr<TableRef> ref, vector<Leaf> &leaves, vector<unique_ptr<ParsedExpression>> &conjuncts) {
	if (ref->type != TableReferenceType::JOIN) {
		Leaf leaf;
		leaf.ref = std::move(ref);
		leaves.push_back(std::move(leaf));
		return true;
	}
	auto &join = ref->Cast<JoinRef>();
	auto inner = join.ref_type == JoinRefType::CROSS ||
	             (join.ref_type == JoinRefType::REGULAR && join.type == JoinType::INNER && join.using_columns.empty());
	if (!inner || !join.duplicate_eliminated_columns.empty()) {
		return false;
	}
	if (join.condition) {
		Conjuncts(std::move(join.condition), conjuncts);
	}
	return Flatten(std::move(join.left), leaves, conjuncts) && Flatten(std::move(join.right), leaves, conjuncts);
}

//! Comma joins of `refs`, in order.
unique_ptr<TableRef> CrossJoin(vector<unique_ptr<TableRef>> refs) {
	auto result = std::move(refs[0]);
	for (idx_t i = 1; i < refs.size(); i++) {
		auto join = make_uniq<JoinRef>(JoinRefType::CROSS);
		join->is_implicit = true;
		join->left = std::move(result);
		join->right = std::move(refs[i]);
		result = std::move(join);
	}
	return result;
}

//! Which part of the FROM each column reference reads, where that is sure.
class Resolver {
public:
	Resolver(const vector<Leaf> &leaves, const SelectNode &select) : leaves(leaves) {
		for (auto &expression : select.select_list) {
			if (!expression->GetAlias().empty()) {
				aliases.insert(expression->GetAlias());
			} else {
				implicit.insert(expression->GetName());
			}
		}
	}

	//! Calls `found` with each column reference in `expression` and the part it reads
	//! (invalid: none of the service's tables). False when unsure of one, or when the
	//! expression holds what is not rewritten (a subquery, a lambda, a `*`).
	bool Walk(ParsedExpression &expression, const std::function<void(ColumnRefExpression &, optional_idx)> &found) {
		switch (expression.GetExpressionClass()) {
		case ExpressionClass::SUBQUERY:
		case ExpressionClass::LAMBDA:
		case ExpressionClass::LAMBDA_REF:
		case ExpressionClass::STAR:
			return false;
		case ExpressionClass::COLUMN_REF: {
			auto &column = expression.Cast<ColumnRefExpression>();
			optional_idx leaf;
			if (!Resolve(column, leaf)) {
				return false;
			}
			found(column, leaf);
			return true;
		}
		default:
			break;
		}
		bool sure = true;
		ParsedExpressionIterator::EnumerateChildren(expression, [&](ParsedExpression &child) {
			sure = sure && Walk(child, found);
		});
		return sure;
	}

	//! The canonical name of `column` of the part `leaf`.
	std::string ColumnName(idx_t leaf, const std::string &column) const {
		return leaves[leaf].table->GetColumn(column).Name();
	}

private:
	bool Has(idx_t leaf, const std::string &column) const {
		return leaves[leaf].table && leaves[leaf].table->ColumnExists(column);
	}

	bool Resolve(const ColumnRefExpression &column, optional_idx &leaf) const {
		auto &names = column.column_names;
		if (names.size() == 1) {
			vector<idx_t> remote;
			bool elsewhere = false;
			bool unknown = false;
			for (idx_t i = 0; i < leaves.size(); i++) {
				if (!leaves[i].table) {
					unknown = true;
				} else if (Has(i, names[0])) {
					(leaves[i].remote ? remote.push_back(i) : void(elsewhere = true));
				}
			}
			if (remote.empty()) {
				// Another part's column (a column of the select list named so without alias
				// is that column too, or the name was ambiguous anyway), or a select list's
				// alias, or an outer query's column. Not a name the select list has without
				// alias, then: it gets that name as its alias (see GroupServiceJoin), which a
				// reference that finds no column would now bind to.
				return elsewhere || !implicit.count(names[0]);
			}
			if (remote.size() > 1 || elsewhere || unknown || aliases.count(names[0])) {
				return false;
			}
			leaf = remote[0];
			return true;
		}
		if (names.size() == 2) {
			for (idx_t i = 0; i < leaves.size(); i++) {
				if (StringUtil::CIEquals(leaves[i].name, names[0])) {
					if (!leaves[i].remote) {
						return true;
					}
					if (!Has(i, names[1])) {
						return false; // a field of a column, perhaps
					}
					leaf = i;
					return true;
				}
			}
			// `column.field`: sure only when no table of the service has such a column.
			for (idx_t i = 0; i < leaves.size(); i++) {
				if (leaves[i].remote && Has(i, names[0])) {
					return false;
				}
			}
			return true;
		}
		return false;
	}

	const vector<Leaf> &leaves;
	case_insensitive_set_t aliases;
	//! The names of the select list's columns that have no alias.
	case_insensitive_set_t implicit;
};

//! The part of `leaves` that is one group: the most of the service's tables that the
//! conjuncts over them alone (`links`, pairs of parts) join together, at least two.
vector<bool> LargestGroup(const vector<Leaf> &leaves, const vector<std::pair<idx_t, idx_t>> &links) {
	vector<idx_t> group(leaves.size());
	for (idx_t i = 0; i < group.size(); i++) {
		group[i] = i;
	}
	std::function<idx_t(idx_t)> find = [&](idx_t i) { return group[i] == i ? i : group[i] = find(group[i]); };
	for (auto &link : links) {
		group[find(link.first)] = find(link.second);
	}
	vector<idx_t> size(leaves.size(), 0);
	for (idx_t i = 0; i < leaves.size(); i++) {
		if (leaves[i].remote) {
			size[find(i)]++;
		}
	}
	auto largest = std::max_element(size.begin(), size.end()) - size.begin();
	vector<bool> in(leaves.size(), false);
	if (size[largest] < 2) {
		return in;
	}
	for (idx_t i = 0; i < leaves.size(); i++) {
		in[i] = leaves[i].remote && find(i) == static_cast<idx_t>(largest);
	}
	return in;
}

} // namespace

unique_ptr<SelectNode> GroupServiceJoin(ClientContext &context, OpenduckCatalog &catalog, const SelectNode &select,
                                        const case_insensitive_set_t &ctes, optional_ptr<SubqueryRef> &remote) {
	if (!select.from_table || select.from_table->type != TableReferenceType::JOIN || select.sample) {
		return nullptr;
	}
	auto result = unique_ptr_cast<QueryNode, SelectNode>(select.Copy());
	vector<Leaf> leaves;
	vector<unique_ptr<ParsedExpression>> conjuncts;
	if (!Flatten(std::move(result->from_table), leaves, conjuncts)) {
		return nullptr;
	}
	if (result->where_clause) {
		Conjuncts(std::move(result->where_clause), conjuncts);
	}
	case_insensitive_set_t names;
	idx_t remotes = 0;
	for (auto &leaf : leaves) {
		leaf.name = leaf.ref->alias;
		if (leaf.ref->type == TableReferenceType::BASE_TABLE) {
			if (!leaf.ref->column_name_alias.empty()) {
				return nullptr; // columns renamed: its catalog entry's names are not the query's
			}
			auto &base = leaf.ref->Cast<BaseTableRef>();
			if (leaf.name.empty()) {
				leaf.name = base.table_name;
			}
			if (!(base.catalog_name.empty() && base.schema_name.empty() && ctes.count(base.table_name))) {
				leaf.table = TableNamed(context, base);
				if (leaf.table) {
					auto &owner = leaf.table->ParentCatalog();
					leaf.remote = owner.GetCatalogType() == "openduck" && catalog.Sibling(context, owner);
				}
			}
		}
		// Two parts named alike, or one named as the derived table: not sure which is meant.
		if (leaf.name.empty() || !names.insert(leaf.name).second || StringUtil::CIEquals(leaf.name, JOINED)) {
			return nullptr;
		}
		remotes += leaf.remote;
	}
	if (remotes < 2 || remotes == leaves.size()) {
		return nullptr; // nothing to group, or all of it (placed as a whole, or not)
	}
	// Output names that repeat: which one an ORDER BY means would change once each has
	// its name as its alias.
	case_insensitive_set_t outputs;
	for (auto &expression : result->select_list) {
		if (!outputs.insert(expression->GetAlias().empty() ? expression->GetName() : expression->GetAlias()).second) {
			return nullptr;
		}
	}

	Resolver resolver(leaves, *result);
	// A part that may read another laterally (a subquery; a table function or VALUES whose
	// arguments name the service's tables) would read the group's tables from outside it.
	for (auto &leaf : leaves) {
		auto reads_group = false;
		auto walk = [&](ParsedExpression &expression) {
			return resolver.Walk(expression, [&](ColumnRefExpression &, optional_idx part) {
				reads_group = reads_group || part.IsValid();
			});
		};
		switch (leaf.ref->type) {
		case TableReferenceType::BASE_TABLE:
			break;
		case TableReferenceType::TABLE_FUNCTION:
			if (!walk(*leaf.ref->Cast<TableFunctionRef>().function) || reads_group) {
				return nullptr;
			}
			break;
		case TableReferenceType::EXPRESSION_LIST:
			for (auto &row : leaf.ref->Cast<ExpressionListRef>().values) {
				for (auto &value : row) {
					if (!walk(*value) || reads_group) {
						return nullptr;
					}
				}
			}
			break;
		default:
			return nullptr;
		}
	}
	// Each conjunct: the parts it reads, and whether those are all the service's.
	vector<std::pair<idx_t, idx_t>> links;
	vector<vector<idx_t>> reads(conjuncts.size());
	for (idx_t i = 0; i < conjuncts.size(); i++) {
		bool other = false;
		auto sure = resolver.Walk(*conjuncts[i], [&](ColumnRefExpression &, optional_idx leaf) {
			if (!leaf.IsValid()) {
				other = true;
			} else if (std::find(reads[i].begin(), reads[i].end(), leaf.GetIndex()) == reads[i].end()) {
				reads[i].push_back(leaf.GetIndex());
			}
		});
		if (!sure) {
			return nullptr;
		}
		if (other) {
			reads[i].clear(); // stays outside
		}
		for (idx_t j = 1; j < reads[i].size(); j++) {
			links.emplace_back(reads[i][0], reads[i][j]);
		}
	}
	auto grouped = LargestGroup(leaves, links);
	if (std::find(grouped.begin(), grouped.end(), true) == grouped.end()) {
		return nullptr;
	}
	auto inside = [&](const vector<idx_t> &parts) {
		return !parts.empty() && std::all_of(parts.begin(), parts.end(), [&](idx_t part) { return grouped[part]; });
	};

	// Every expression that stays outside, its references to the group's columns made the
	// derived table's; those columns are what the derived table returns.
	vector<std::pair<idx_t, std::string>> needed;
	auto mangled = [&](idx_t leaf, const std::string &column) {
		auto name = resolver.ColumnName(leaf, column);
		std::pair<idx_t, std::string> key {leaf, name};
		if (std::find(needed.begin(), needed.end(), key) == needed.end()) {
			needed.push_back(key);
		}
		return leaves[leaf].name + "." + name;
	};
	auto rewrite = [&](ParsedExpression &expression) {
		return resolver.Walk(expression, [&](ColumnRefExpression &column, optional_idx leaf) {
			if (leaf.IsValid() && grouped[leaf.GetIndex()]) {
				column.column_names = {JOINED, mangled(leaf.GetIndex(), column.column_names.back())};
			}
		});
	};
	vector<unique_ptr<ParsedExpression>> inner_conjuncts;
	vector<unique_ptr<ParsedExpression>> outer_conjuncts;
	for (idx_t i = 0; i < conjuncts.size(); i++) {
		if (inside(reads[i])) {
			inner_conjuncts.push_back(std::move(conjuncts[i]));
		} else {
			if (!rewrite(*conjuncts[i])) {
				return nullptr;
			}
			outer_conjuncts.push_back(std::move(conjuncts[i]));
		}
	}
	for (auto &expression : result->select_list) {
		if (expression->GetAlias().empty()) {
			// The name the column had: a rewritten reference would be named otherwise.
			expression->SetAlias(expression->GetName());
		}
		if (!rewrite(*expression)) {
			return nullptr;
		}
	}
	bool sure = true;
	for (auto *clause : {&result->having, &result->qualify}) {
		sure = sure && (!*clause || rewrite(**clause));
	}
	for (auto &expression : result->groups.group_expressions) {
		sure = sure && rewrite(*expression);
	}
	ParsedExpressionIterator::EnumerateQueryNodeModifiers(
	    *result, [&](unique_ptr<ParsedExpression> &child) { sure = sure && rewrite(*child); });
	if (!sure) {
		return nullptr;
	}

	// The derived table: the group's tables, the conjuncts over them, the columns needed.
	auto joined = make_uniq<SelectNode>();
	for (auto &column : needed) {
		auto reference = make_uniq<ColumnRefExpression>(column.second, leaves[column.first].name);
		reference->SetAlias(leaves[column.first].name + "." + column.second);
		joined->select_list.push_back(std::move(reference));
	}
	if (joined->select_list.empty()) {
		joined->select_list.push_back(make_uniq<ConstantExpression>(Value::INTEGER(1)));
	}
	vector<unique_ptr<TableRef>> group_refs;
	vector<unique_ptr<TableRef>> refs;
	for (idx_t i = 0; i < leaves.size(); i++) {
		(grouped[i] ? group_refs : refs).push_back(std::move(leaves[i].ref));
	}
	joined->from_table = CrossJoin(std::move(group_refs));
	joined->where_clause = And(std::move(inner_conjuncts));
	auto statement = make_uniq<SelectStatement>();
	statement->node = std::move(joined);
	auto derived = make_uniq<SubqueryRef>(std::move(statement), JOINED);
	remote = derived.get();
	refs.insert(refs.begin(), std::move(derived));
	result->from_table = CrossJoin(std::move(refs));
	result->where_clause = And(std::move(outer_conjuncts));
	return result;
}

} // namespace openduck
