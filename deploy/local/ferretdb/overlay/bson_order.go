// Integr8sCode local patch (deploy/local/ferretdb/overlay/, copied in by ../patch_source.py):
// SQL expressions that order and compare top-level fields the way MongoDB does, so that sorts,
// limits and counts can run in PostgreSQL. docs/decisions.md, "FerretDB: sort, limit and count
// in PostgreSQL".

package metadata

import (
	"fmt"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
)

// RankUnordered is the rank of values whose MongoDB order SQL cannot reproduce: arrays (MongoDB
// sorts them by their smallest or largest element and matches equality on any element), objects,
// binary data and regular expressions (compared field by field or byte by byte, not as jsonb).
// Queries leave such documents to FerretDB's in-memory filter and sort.
const RankUnordered = 0

// RankExpr is the SQL expression of the BSON type rank of top-level field f, read from the
// sjson schema that FerretDB stores in each document ($s.p.<f>.t): null and missing 1 (MongoDB
// treats them as equal), numbers 2, string 3, objectId 7, bool 8, date 9, timestamp 10, in
// BSON's order; the rest RankUnordered.
func RankExpr(f string) string {
	return fmt.Sprintf(
		`(CASE COALESCE(%s->'$s'->'p'->%s->>'t', 'null') `+
			`WHEN 'null' THEN 1 WHEN 'int' THEN 2 WHEN 'long' THEN 2 WHEN 'double' THEN 2 `+
			`WHEN 'string' THEN 3 WHEN 'objectId' THEN 7 WHEN 'bool' THEN 8 WHEN 'date' THEN 9 `+
			`WHEN 'timestamp' THEN 10 ELSE %d END)`,
		DefaultColumn, quoteString(f), RankUnordered,
	)
}

// ValueExpr is the SQL expression of the value of top-level field f, a missing field reading as
// null. Within one rank jsonb orders like BSON: numbers (and dates, timestamps: sjson stores them
// as numbers) by exact numeric value, booleans false < true, strings (and objectIds, stored as
// lowercase hex) by the database's collation, which must compare bytewise (C; or C.UTF-8, code
// point order, which is UTF-8 byte order).
func ValueExpr(f string) string {
	return fmt.Sprintf(`COALESCE(%s->%s, 'null'::jsonb)`, DefaultColumn, quoteString(f))
}

// Rank returns the rank of a filter value and whether an equality on it can be decided in SQL:
// (RankExpr = rank AND ValueExpr = value) is then exactly MongoDB's equality for scalar fields.
// Numbers beyond ±2^53 are left out: a double stored there is written in its shortest decimal
// form, which may differ from its exact value.
func Rank(v any) (int, bool) {
	switch v := v.(type) {
	case int32:
		return 2, true
	case int64:
		return 2, v <= int64(types.MaxSafeDouble) && v >= -int64(types.MaxSafeDouble)
	case float64:
		return 2, v <= types.MaxSafeDouble && v >= -types.MaxSafeDouble
	case string:
		return 3, true
	case types.ObjectID:
		return 7, true
	case bool:
		return 8, true
	case time.Time:
		return 9, true
	default:
		return RankUnordered, false
	}
}

// orderedIndexColumns returns the btree columns of an index on top-level fields: rank and value of
// each key in its direction, then of _id (unless a key) in the last key's direction, so that a
// sort that breaks ties on _id reads the index in order. Nil for dotted fields.
func orderedIndexColumns(index IndexInfo) []string {
	var columns []string

	hasID := false
	dir := ""

	for _, key := range index.Key {
		if key.Field == "" || strings.ContainsAny(key.Field, ".$") {
			return nil
		}

		dir = ""
		if key.Descending {
			dir = " DESC"
		}

		hasID = hasID || key.Field == "_id"
		columns = append(columns, "("+RankExpr(key.Field)+")"+dir, "("+ValueExpr(key.Field)+")"+dir)
	}

	if !hasID {
		columns = append(columns, "("+RankExpr("_id")+")"+dir, "("+ValueExpr("_id")+")"+dir)
	}

	return columns
}

// UnorderedCompanion returns the name and definition of an ordered index's companion: a partial
// index on the first key's rank and value holding only the documents where a later key (or _id)
// is unordered. Normally empty, it answers the unordered branches of ordered_query.go for those
// keys with one empty range instead of a walk through the whole equality range. Empty for indexes
// that orderedIndexColumns does not handle, and for one on _id alone.
func UnorderedCompanion(index IndexInfo, table string) (name, q string) {
	if index.Unique || orderedIndexColumns(index) == nil {
		return "", ""
	}

	first := index.Key[0].Field

	var later []string

	for _, key := range index.Key[1:] {
		later = append(later, fmt.Sprintf("%s = %d", RankExpr(key.Field), RankUnordered))
	}

	if first != "_id" {
		later = append(later, fmt.Sprintf("%s = %d", RankExpr("_id"), RankUnordered))
	}

	if len(later) == 0 {
		return "", ""
	}

	name = companionName(index.PgIndex)
	q = fmt.Sprintf("CREATE INDEX %s ON %s ((%s), (%s)) WHERE %s",
		quoteIdent(name), table, RankExpr(first), ValueExpr(first), strings.Join(later, " OR "))

	return name, q
}

// companionName derives the companion's name from its index's (same length, so within limits).
func companionName(pgIndex string) string {
	return strings.TrimSuffix(pgIndex, "_idx") + "_unx"
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
