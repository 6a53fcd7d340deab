// Integr8sCode local patch (deploy/local/ferretdb/overlay/, copied in by ../patch_source.py):
// sort, limit and count in PostgreSQL for filters it decides exactly. docs/decisions.md,
// "FerretDB: sort, limit and count in PostgreSQL".
//
// FerretDB 1.24 pushes a filter down only as a superset and then filters, sorts, skips and limits
// in memory, so a sorted page or a count decodes every matching document. When the filter is a
// conjunction of top-level equalities to scalars and the sort is on top-level fields, the matching
// documents split in two:
//
//   - "ordered": every field involved (filtered or sorted) holds a scalar whose order SQL
//     reproduces (metadata.RankExpr / metadata.ValueExpr). SQL filters them exactly, sorts them in
//     MongoDB's order and keeps only the first skip+limit: none of the others can be in the page.
//   - "unordered": some involved field holds an array, an object, binary data or a regex. They
//     are read with a superset filter and no limit, one branch per first such field, so each
//     branch is an index range too (and usually empty).
//
// FerretDB's handler still filters, sorts, skips and limits everything returned, so the answer is
// the one it computed before; it now starts from skip+limit ordered rows plus the unordered ones.

package postgresql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/postgresql/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// orderedField is one field of an ordered query: an equality (value set) or a sort key.
type orderedField struct {
	name  string
	rank  int
	value string // sjson of the compared value; "" for a sort key
	desc  bool
}

// orderedPlan splits a filter and a sort into equality fields and sort keys, or returns false
// when SQL cannot decide the filter exactly or order by the sort.
func orderedPlan(filter, sort *types.Document) (eq, keys []orderedField, ok bool) {
	iter := filter.Iterator()
	defer iter.Close()

	for {
		k, v, err := iter.Next()
		if errors.Is(err, iterator.ErrIteratorDone) {
			break
		}

		if err != nil {
			return nil, nil, false
		}

		if k == "$comment" {
			continue
		}

		// _id is already answered by its unique index; dotted paths and operators stay in memory.
		if k == "" || k == "_id" || strings.ContainsAny(k, ".$") {
			return nil, nil, false
		}

		if d, isDoc := v.(*types.Document); isDoc {
			if d.Len() != 1 || !d.Has("$eq") {
				return nil, nil, false
			}

			v = must.NotFail(d.Get("$eq"))
		}

		rank, exact := metadata.Rank(v)
		if !exact {
			return nil, nil, false
		}

		eq = append(eq, orderedField{name: k, rank: rank, value: string(must.NotFail(sjson.MarshalSingleValue(v)))})
	}

	for _, k := range sort.Keys() {
		if k == "" || strings.ContainsAny(k, ".$") {
			return nil, nil, false
		}

		order, isInt := must.NotFail(sort.Get(k)).(int64)
		if !isInt || (order != 1 && order != -1) {
			return nil, nil, false
		}

		keys = append(keys, orderedField{name: k, desc: order == -1})
	}

	return eq, keys, true
}

// orderedConds returns, for each involved field (equalities first, then sort keys not already
// filtered), the SQL that holds when the field is ordered (and equal), and when it is unordered
// (and may be equal); args holds the equality values.
func orderedConds(p *metadata.Placeholder, eq, keys []orderedField) (ordered, unordered []string, args []any) {
	seen := make(map[string]bool, len(eq))

	for _, f := range eq {
		n := p.Next()
		args = append(args, f.value)
		seen[f.name] = true

		ordered = append(ordered, fmt.Sprintf(`%s = %d AND %s = %s`,
			metadata.RankExpr(f.name), f.rank, metadata.ValueExpr(f.name), n))
		// An array matches when it holds the value (jsonb containment: a superset of MongoDB's
		// equality, FerretDB filters again).
		unordered = append(unordered, fmt.Sprintf(`%s = %d AND %s->%s @> %s`,
			metadata.RankExpr(f.name), metadata.RankUnordered,
			metadata.DefaultColumn, quoteLiteral(f.name), n))
	}

	for _, f := range keys {
		if seen[f.name] {
			continue
		}

		seen[f.name] = true

		ordered = append(ordered, fmt.Sprintf(`%s > %d`, metadata.RankExpr(f.name), metadata.RankUnordered))
		unordered = append(unordered, fmt.Sprintf(`%s = %d`, metadata.RankExpr(f.name), metadata.RankUnordered))
	}

	return ordered, unordered, args
}

// unorderedBranches returns one WHERE per involved field i: fields before i ordered, field i
// unordered, fields after i either. Together with the all-ordered WHERE they partition a superset
// of the matching documents, each branch led by an index range when an index follows the fields.
func unorderedBranches(ordered, unordered []string, nEq int) []string {
	branches := make([]string, len(ordered))

	for i := range ordered {
		conds := make([]string, 0, len(ordered))
		for j := 0; j < i; j++ {
			conds = append(conds, ordered[j])
		}

		conds = append(conds, unordered[i])

		// later equality fields: either form; later sort keys: anything
		for j := i + 1; j < nEq; j++ {
			conds = append(conds, fmt.Sprintf(`((%s) OR (%s))`, ordered[j], unordered[j]))
		}

		branches[i] = ` WHERE ` + strings.Join(conds, " AND ")
	}

	return branches
}

// orderByClause orders by rank then value of each sort key, in MongoDB's order.
func orderByClause(keys []orderedField) string {
	if len(keys) == 0 {
		return ""
	}

	parts := make([]string, 0, 2*len(keys))

	for _, f := range keys {
		dir := ""
		if f.desc {
			dir = " DESC"
		}

		parts = append(parts, metadata.RankExpr(f.name)+dir, metadata.ValueExpr(f.name)+dir)
	}

	return ` ORDER BY ` + strings.Join(parts, ", ")
}

// whereAll joins conditions into a WHERE clause ("" for none).
func whereAll(conds []string) string {
	if len(conds) == 0 {
		return ""
	}

	return ` WHERE ` + strings.Join(conds, " AND ")
}

// quoteLiteral quotes a field name as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// orderedQuery answers an ordered plan (ordered_query.go): the ordered documents sorted and cut
// to the window (or counted) in SQL, plus every unordered candidate for the handler to sort in.
func (c *collection) orderedQuery(ctx context.Context, p *pgxpool.Pool, sel, table string, eq, keys []orderedField, params *backends.QueryParams) (*backends.QueryResult, error) { //nolint:lll // for readability
	var placeholder metadata.Placeholder

	ordered, unordered, args := orderedConds(&placeholder, eq, keys)

	limit := ""
	if params.Window > 0 {
		limit = " LIMIT " + placeholder.Next()
		args = append(args, params.Window)
	}

	branches := unorderedBranches(ordered, unordered, len(eq))
	for i, w := range branches {
		branches[i] = sel + w
	}

	res := new(backends.QueryResult)

	if params.CountOnly {
		q := fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s%s%s) AS ordered`, table, whereAll(ordered), limit)
		if err := p.QueryRow(ctx, q, args...).Scan(&res.Count); err != nil {
			return nil, lazyerrors.Error(err)
		}

		res.Counted = true
	} else {
		order := ""
		if params.Window > 0 {
			order = orderByClause(keys)
		}

		branches = append([]string{"(" + sel + whereAll(ordered) + order + limit + ")"}, branches...)
	}

	if len(branches) == 0 {
		res.Iter = newQueryIterator(ctx, nil, false)
		return res, nil
	}

	// the LIMIT's placeholder is only in the ordered branch: number it last, pass it only if used
	if params.CountOnly && params.Window > 0 {
		args = args[:len(args)-1]
	}

	rows, err := p.Query(ctx, strings.Join(branches, " UNION ALL "), args...)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	res.Iter = newQueryIterator(ctx, rows, false)

	return res, nil
}
