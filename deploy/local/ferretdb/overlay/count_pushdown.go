// Integr8sCode local patch (deploy/local/ferretdb/overlay/, copied in by ../patch_source.py):
// an aggregation that only counts what its $match selects is counted by the backend where it
// decides the filter exactly, instead of decoding every matching document. docs/decisions.md,
// "FerretDB: sort, limit and count in PostgreSQL".

package handler

import (
	"context"
	"math"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/common/aggregations"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// countPipeline is a pipeline of the form
// [{$match: filter}, {$skip: n}?, {$limit: n}?, {$count: "name"} | {$group: {_id: const, name: {$sum: 1}}}]
// (what drivers send for count_documents / countDocuments).
type countPipeline struct {
	filter      *types.Document
	skip, limit int64
	output      func(n int64) *types.Document
}

// parseCountPipeline recognises a counting pipeline; anything else returns false.
func parseCountPipeline(stages []any) (*countPipeline, bool) {
	if len(stages) < 2 {
		return nil, false
	}

	var p countPipeline

	match, ok := singleStage(stages[0], "$match").(*types.Document)
	if !ok {
		return nil, false
	}

	p.filter = match
	rest := stages[1 : len(stages)-1]

	if len(rest) > 0 {
		if n, isInt := wholeNumber(singleStage(rest[0], "$skip")); isInt && n >= 0 {
			p.skip, rest = n, rest[1:]
		}
	}

	if len(rest) > 0 {
		if n, isInt := wholeNumber(singleStage(rest[0], "$limit")); isInt && n > 0 {
			p.limit, rest = n, rest[1:]
		}
	}

	if len(rest) > 0 {
		return nil, false
	}

	last := stages[len(stages)-1]

	if name, isString := singleStage(last, "$count").(string); isString {
		if name == "" || strings.ContainsAny(name, ".$") {
			return nil, false
		}

		p.output = func(n int64) *types.Document { return must.NotFail(types.NewDocument(name, countValue(n))) }

		return &p, true
	}

	group, isDoc := singleStage(last, "$group").(*types.Document)
	if !isDoc || group.Len() != 2 || group.Keys()[0] != "_id" {
		return nil, false
	}

	id := must.NotFail(group.Get("_id"))
	switch id.(type) {
	case int32, int64, float64, bool, types.NullType:
	default: // strings are field paths, documents expressions
		return nil, false
	}

	name := group.Keys()[1]

	sum, isDoc := must.NotFail(group.Get(name)).(*types.Document)
	if !isDoc || sum.Len() != 1 || !sum.Has("$sum") {
		return nil, false
	}

	if one, isInt := wholeNumber(must.NotFail(sum.Get("$sum"))); !isInt || one != 1 {
		return nil, false
	}

	p.output = func(n int64) *types.Document {
		return must.NotFail(types.NewDocument("_id", id, name, countValue(n)))
	}

	return &p, true
}

// aggregateCount runs a counting pipeline: the backend counts (when it can), the handler adds the
// documents it had to return, then applies skip and limit; no document for a count of 0, like
// $count and $group on no input. A backend that cannot count gets the pipeline run as before.
func aggregateCount(ctx context.Context, closer *iterator.MultiCloser, c backends.Collection, qp *backends.QueryParams, p *countPipeline, stagesDocuments []aggregations.Stage) (types.DocumentsIterator, error) { //nolint:lll // for readability
	qp.CountOnly = true
	if p.limit > 0 {
		qp.Window = p.skip + p.limit
	}

	queryRes, err := c.Query(ctx, qp)
	if err != nil {
		closer.Close()
		return nil, lazyerrors.Error(err)
	}

	closer.Add(queryRes.Iter)

	iter := queryRes.Iter

	if !queryRes.Counted {
		for _, s := range stagesDocuments {
			if iter, err = s.Process(ctx, iter, closer); err != nil {
				return nil, err
			}
		}

		return iter, nil
	}

	rest, err := iterator.ConsumeCount(common.FilterIterator(iter, closer, p.filter))
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	var docs []*types.Document
	if n := windowCount(queryRes.Count+int64(rest), p.skip, p.limit); n > 0 {
		docs = append(docs, p.output(n))
	}

	return iterator.Values(iterator.ForSlice(docs)), nil
}

// singleStage returns the argument of a stage {name: argument}, nil for anything else.
func singleStage(stage any, name string) any {
	d, ok := stage.(*types.Document)
	if !ok || d.Len() != 1 || !d.Has(name) {
		return nil
	}

	return must.NotFail(d.Get(name))
}

// wholeNumber returns v as an int64 when it is a whole number.
func wholeNumber(v any) (int64, bool) {
	switch v := v.(type) {
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true
		}
	}

	return 0, false
}

// countValue is a count as MongoDB types it: int32 when it fits.
func countValue(n int64) any {
	if n <= math.MaxInt32 {
		return int32(n)
	}

	return n
}

// windowCount is how many of total documents remain after skip, at most limit (0: no limit).
func windowCount(total, skip, limit int64) int64 {
	n := max(total-skip, 0)
	if limit > 0 {
		n = min(n, limit)
	}

	return n
}
