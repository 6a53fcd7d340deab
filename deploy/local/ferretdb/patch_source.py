"""Index fixes (and two per-command costs cut) applied to the copied FerretDB 1.24 source before
the local build.

    python3 patch_source.py <FerretDB source dir>

Each edit names the exact line(s) it expects and fails loudly when they are gone (a new FerretDB
version must be checked by hand, not patched blindly). docs/decisions.md, "FerretDB indexes".

SQLite backend:
  the `_id` index is built on `_ferretdb_sjson->"_id"` while filters read
  `_ferretdb_sjson->'$._id'` (metadata.IDColumn), so no `_id` lookup can use it: build it on
  IDColumn itself; and a filter that holds an `_id` equality among other keys pushes the `_id`
  part down too (upstream only does so when `_id` is the filter's one key), so a conditional
  update by `_id` (`{_id, status: {$in: ...}}`) reads one row, not the whole collection (the
  rest of the filter is applied in memory after it, as it always is).

PostgreSQL backend:
  1. equality on `_id` (never an array in MongoDB) is pushed down as `_jsonb->'_id' = $n`, the
     expression of the unique `_id` index, instead of a containment on a parameterised key;
  2. other top-level equality keeps its containment semantics (it also matches an array that
     holds the value) but names the key as a literal, so the planner can match an index on it;
  3. a non-unique index is a GIN index (fastupdate off: no pending list to scan), the kind that
     answers containment; a btree on `(_jsonb->'f')` answered no query. Unique indexes stay
     btree for their constraint.
  4. sort, limit and count in SQL (docs/decisions.md, "FerretDB: sort, limit and count in
     PostgreSQL"): the Go files under overlay/ are copied in (bson_order.go: SQL expressions
     that rank and order top-level fields like BSON; ordered_query.go: the query that sorts and
     cuts what SQL decides exactly; count_pushdown.go: counting pipelines), and the hooks below
     hand them the find's sort and skip+limit, and the count's filter. A non-unique index on
     top-level fields becomes a btree on (rank, value) of each key, then _id, instead of 3.'s
     GIN; a top-level equality is matched on those columns (or by containment for arrays).

Both backends, cost per command (docs/decisions.md, "The Mongo-wire server's own costs"):
  5. ``resource.Track``/``Untrack`` (a leak detector: every iterator and connection added to a
     pprof profile, stack and all, and given a finalizer that *panics* the server if it is
     collected untracked) do nothing unless FerretDB is a debug build (``debugbuild.Enabled``,
     a constant: the compiler drops the code). 8 % of FerretDB's CPU under the execute bench.
  6. pgx's query log (``tracelog``) is set to log every query at trace level and leave the
     filtering to FerretDB's logger, so each query's arguments were formatted and thrown away:
     it now asks at trace level only when that logger takes debug, else at warn (errors and
     warnings are still logged).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

OVERLAY = Path(__file__).resolve().parent / "overlay"


def replace_once(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` (expected exactly ``count`` times) with ``new``."""
    text = path.read_text()
    if text.count(old) != count:
        sys.exit(f"patch_source: {path}: expected exactly {count} match(es) of:\n{old}")
    path.write_text(text.replace(old, new))


def main(src: Path) -> None:
    replace_once(
        src / "internal/backends/sqlite/metadata/registry.go",
        '\t\t\tcolumns[i] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))\n',
        '\t\t\tcolumns[i] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))\n'
        '\t\t\tif key.Field == "_id" {\n'
        "\t\t\t\tcolumns[i] = IDColumn\n"
        "\t\t\t}\n",
    )
    # Query and Explain both hold it: any filter may push its `_id` equality down.
    replace_once(
        src / "internal/backends/sqlite/collection.go",
        '\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")\n',
        '\tif params.Filter.Len() >= 1 {\n\t\tv, _ := params.Filter.Get("_id")\n',
        count=2,
    )

    query = src / "internal/backends/postgresql/query.go"
    replace_once(
        query,
        "\tcase string, types.ObjectID, time.Time:\n"
        "\t\t// merge with the case below?\n"
        "\t\t// TODO https://github.com/FerretDB/FerretDB/issues/3626\n"
        "\n"
        "\t\t// don't change the default eq query\n"
        "\t\tfilter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())\n"
        "\t\targs = append(args, k, string(must.NotFail(sjson.MarshalSingleValue(v))))\n",
        "\tcase string, types.ObjectID, time.Time:\n"
        "\t\tvalue := string(must.NotFail(sjson.MarshalSingleValue(v)))\n"
        '\t\tif ks, ok := k.(string); ok && operator == "->" {\n'
        '\t\t\tif _, isTime := v.(time.Time); ks == "_id" && !isTime {\n'
        "\t\t\t\tfilter = fmt.Sprintf(`%s->'_id' = %s`, metadata.DefaultColumn, p.Next())\n"
        "\t\t\t} else {\n"
        "\t\t\t\tfilter = fmt.Sprintf(`%s->'%s' @> %s`, metadata.DefaultColumn,\n"
        '\t\t\t\t\tstrings.ReplaceAll(ks, "\'", "\'\'"), p.Next())\n'
        "\t\t\t}\n"
        "\t\t\targs = append(args, value)\n"
        "\t\t\tbreak\n"
        "\t\t}\n"
        "\n"
        "\t\tfilter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())\n"
        "\t\targs = append(args, k, value)\n",
    )

    registry = src / "internal/backends/postgresql/metadata/registry.go"
    replace_once(
        registry,
        '\t\t\tcolumns[i] = fmt.Sprintf("((%s->%s))", DefaultColumn, '
        'strings.Join(transformedParts, " -> "))\n'
        "\t\t\tif key.Descending {\n",
        '\t\t\tcolumns[i] = fmt.Sprintf("((%s->%s))", DefaultColumn, '
        'strings.Join(transformedParts, " -> "))\n'
        "\t\t\tif key.Descending && index.Unique {\n",
    )
    replace_once(
        registry,
        "\t\tq = fmt.Sprintf(\n\t\t\tq,\n\t\t\tpgx.Identifier{index.PgIndex}.Sanitize(),\n",
        "\t\tif !index.Unique {\n"
        '\t\t\tq = "CREATE INDEX %s ON %s USING gin (%s) WITH (fastupdate = off)"\n'
        "\t\t}\n"
        "\n"
        "\t\tq = fmt.Sprintf(\n"
        "\t\t\tq,\n"
        "\t\t\tpgx.Identifier{index.PgIndex}.Sanitize(),\n",
    )

    sort_limit_count(src)


def sort_limit_count(src: Path) -> None:
    """Edit 4: the overlay's files, and the hooks that call them."""
    internal = src / "internal"
    for name, where in (
        ("bson_order.go", "backends/postgresql/metadata"),
        ("ordered_query.go", "backends/postgresql"),
        ("count_pushdown.go", "handler"),
    ):
        target = internal / where / name
        if target.exists():
            sys.exit(f"patch_source: {target} already exists")
        shutil.copyfile(OVERLAY / name, target)

    replace_once(
        internal / "backends/collection.go",
        "\tOnlyRecordIDs bool\n\tComment       string\n}\n",
        "\tOnlyRecordIDs bool\n"
        "\tComment       string\n"
        "\n"
        "\t// Integr8sCode patch: what the handler will do in memory anyway, offered to the"
        " backend.\n"
        "\t// OrderBy is the find's sort (1 or -1 per field), Window its skip+limit (0: all),\n"
        "\t// CountOnly says only the number of matching documents is needed. A backend may use\n"
        "\t// them only where its filter is exact; the handler still filters, sorts and limits.\n"
        "\tOrderBy   *types.Document\n"
        "\tWindow    int64\n"
        "\tCountOnly bool\n"
        "}\n",
    )
    replace_once(
        internal / "backends/collection.go",
        "type QueryResult struct {\n\tIter types.DocumentsIterator\n}\n",
        "type QueryResult struct {\n"
        "\tIter types.DocumentsIterator\n"
        "\n"
        "\t// Integr8sCode patch: when Counted, Count documents (at most Window, if set) matched\n"
        "\t// exactly and were not returned; Iter holds only the documents the backend could not\n"
        "\t// decide, for the handler to filter and add.\n"
        "\tCount   int64\n"
        "\tCounted bool\n"
        "}\n",
    )

    replace_once(
        internal / "backends/postgresql/collection.go",
        "\t\tOnlyRecordIDs: params.OnlyRecordIDs,\n\t})\n\n\tvar placeholder"
        " metadata.Placeholder\n",
        "\t\tOnlyRecordIDs: params.OnlyRecordIDs,\n"
        "\t})\n"
        "\n"
        "\t// Integr8sCode patch: sort, limit and count in SQL when it decides the filter exactly\n"
        "\t// (ordered_query.go).\n"
        "\twantsOrder := params.CountOnly || params.Window > 0\n"
        "\tif wantsOrder && !params.OnlyRecordIDs && !meta.Capped() && params.Sort.Len() == 0 {\n"
        "\t\tif plan, ok := newOrderedPlan(new(metadata.Placeholder), params.Filter,"
        " params.OrderBy); ok {\n"
        "\t\t\ttable := pgx.Identifier{c.dbName, meta.TableName}.Sanitize()\n"
        "\t\t\treturn c.orderedQuery(ctx, p, q, table, plan, params)\n"
        "\t\t}\n"
        "\t}\n"
        "\n"
        "\tvar placeholder metadata.Placeholder\n",
    )

    replace_once(
        internal / "backends/postgresql/query.go",
        "func filterEqual(p *metadata.Placeholder, k any, v any, operator string) "
        "(filter string, args []any) {\n",
        "func filterEqual(p *metadata.Placeholder, k any, v any, operator string) "
        "(filter string, args []any) {\n"
        "\t// Integr8sCode patch: a top-level field equal to a scalar is matched on the rank and"
        " value\n"
        "\t// expressions that non-unique indexes are built on (metadata.RankExpr), or, when it"
        " holds an\n"
        "\t// array, by containment: still a superset of MongoDB's equality, and index-served.\n"
        '\tif ks, ok := k.(string); ok && operator == "->" && ks != "_id" {\n'
        "\t\tif rank, exact := metadata.Rank(v); exact {\n"
        "\t\t\tn := p.Next()\n"
        "\t\t\tfilter = fmt.Sprintf(`((%s = %d AND %s = %s) OR (%s = %d AND %s->%s @> %s))`,\n"
        "\t\t\t\tmetadata.RankExpr(ks), rank, metadata.ValueExpr(ks), n,\n"
        "\t\t\t\tmetadata.RankExpr(ks), metadata.RankUnordered, metadata.DefaultColumn,"
        " quoteLiteral(ks), n)\n"
        "\n"
        "\t\t\treturn filter, []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
        "\t\t}\n"
        "\t}\n"
        "\n",
    )

    replace_once(
        internal / "backends/postgresql/metadata/registry.go",
        '\t\t\tq = "CREATE INDEX %s ON %s USING gin (%s) WITH (fastupdate = off)"\n\t\t}\n',
        '\t\t\tq = "CREATE INDEX %s ON %s USING gin (%s) WITH (fastupdate = off)"\n'
        "\t\t}\n"
        "\n"
        "\t\t// Integr8sCode patch: a non-unique index on top-level fields is a btree on each"
        " key's rank\n"
        "\t\t// and value (bson_order.go), in the key's direction, then _id: what equality"
        " filters, sorts\n"
        "\t\t// and their tie-break on _id read in order. Unique indexes keep their plain form.\n"
        "\t\tif ordered := orderedIndexColumns(index); !index.Unique && ordered != nil {\n"
        '\t\t\tq = "CREATE INDEX %s ON %s (%s)"\n'
        "\t\t\tcolumns = ordered\n"
        "\t\t}\n",
    )
    replace_once(
        internal / "backends/postgresql/metadata/registry.go",
        "\t\tif _, err = p.Exec(ctx, q); err != nil {\n"
        "\t\t\t_ = r.indexesDrop(ctx, p, dbName, collectionName, created)\n"
        "\t\t\treturn lazyerrors.Error(err)\n"
        "\t\t}\n",
        "\t\tif _, err = p.Exec(ctx, q); err != nil {\n"
        "\t\t\t_ = r.indexesDrop(ctx, p, dbName, collectionName, created)\n"
        "\t\t\treturn lazyerrors.Error(err)\n"
        "\t\t}\n"
        "\n"
        "\t\t// Integr8sCode patch: and its companion for unordered values (bson_order.go).\n"
        "\t\ttable := pgx.Identifier{dbName, c.TableName}.Sanitize()\n"
        '\t\tif name, cq := UnorderedCompanion(index, table); cq != "" {\n'
        "\t\t\tif _, err = p.Exec(ctx, cq); err != nil {\n"
        '\t\t\t\t_, _ = p.Exec(ctx, fmt.Sprintf("DROP INDEX %s", pgx.Identifier{dbName,'
        " index.PgIndex}.Sanitize()))\n"
        "\t\t\t\t_ = r.indexesDrop(ctx, p, dbName, collectionName, created)\n"
        '\t\t\t\treturn lazyerrors.Error(fmt.Errorf("%s: %w", name, err))\n'
        "\t\t\t}\n"
        "\t\t}\n",
    )
    replace_once(
        internal / "backends/postgresql/metadata/registry.go",
        '\t\tq := fmt.Sprintf("DROP INDEX %s", pgx.Identifier{dbName,'
        " c.Indexes[i].PgIndex}.Sanitize())\n"
        "\t\tif _, err := p.Exec(ctx, q); err != nil {\n",
        "\t\t// Integr8sCode patch: an ordered index's companion goes with it (bson_order.go).\n"
        "\t\tcompanion := pgx.Identifier{dbName, companionName(c.Indexes[i].PgIndex)}.Sanitize()\n"
        '\t\tif _, err := p.Exec(ctx, "DROP INDEX IF EXISTS "+companion); err != nil {\n'
        "\t\t\treturn lazyerrors.Error(err)\n"
        "\t\t}\n"
        "\n"
        '\t\tq := fmt.Sprintf("DROP INDEX %s", pgx.Identifier{dbName,'
        " c.Indexes[i].PgIndex}.Sanitize())\n"
        "\t\tif _, err := p.Exec(ctx, q); err != nil {\n",
    )

    replace_once(
        internal / "handler/msg_find.go",
        "\t\tqp.Limit = params.Limit\n\t}\n",
        "\t\tqp.Limit = params.Limit\n"
        "\t}\n"
        "\n"
        "\t// Integr8sCode patch: offer the sort and skip+limit to the backend, which uses them"
        " only where\n"
        "\t// it decides the whole filter exactly (postgresql/ordered_query.go); the handler"
        " still filters,\n"
        "\t// sorts, skips and limits below. Not when dotted keys were taken out of the pushed"
        " filter.\n"
        "\tif !h.DisablePushdown && qp.Sort.Len() == 0 && params.Limit > 0 &&\n"
        "\t\tqp.Filter.Len() == params.Filter.Len() {\n"
        "\t\tqp.OrderBy = params.Sort\n"
        "\t\tqp.Window = params.Skip + params.Limit\n"
        "\t}\n",
    )

    count = internal / "handler/msg_count.go"
    replace_once(
        count,
        "\tif !h.DisablePushdown {\n\t\tqp.Filter = params.Filter\n\t}\n",
        "\tif !h.DisablePushdown {\n"
        "\t\tqp.Filter = params.Filter\n"
        "\n"
        "\t\t// Integr8sCode patch: let the backend count what it decides exactly, without"
        " decoding.\n"
        "\t\tqp.CountOnly = true\n"
        "\t\tif params.Limit > 0 {\n"
        "\t\t\tqp.Window = params.Skip + params.Limit\n"
        "\t\t}\n"
        "\t}\n",
    )
    replace_once(
        count,
        "\titer = common.FilterIterator(iter, closer, params.Filter)\n",
        "\titer = common.FilterIterator(iter, closer, params.Filter)\n"
        "\n"
        "\t// Integr8sCode patch: the backend counted the documents it decided; the ones it"
        " returned are\n"
        "\t// filtered here and added, then skip and limit applied to the total"
        " (count_pushdown.go).\n"
        "\tif queryRes.Counted {\n"
        "\t\trest, err := iterator.ConsumeCount(iter)\n"
        "\t\tif err != nil {\n"
        "\t\t\treturn nil, lazyerrors.Error(err)\n"
        "\t\t}\n"
        "\n"
        "\t\treturn documentOpMsg(\n"
        "\t\t\tmust.NotFail(types.NewDocument(\n"
        '\t\t\t\t"n", int32(windowCount(queryRes.Count+int64(rest), params.Skip, params.Limit)),\n'
        '\t\t\t\t"ok", float64(1),\n'
        "\t\t\t)),\n"
        "\t\t)\n"
        "\t}\n",
    )

    replace_once(
        internal / "handler/msg_aggregate.go",
        "\t\titer, err = processStagesDocuments(ctx, closer, &stagesDocumentsParams{c, qp,"
        " stagesDocuments})\n",
        "\t\t// Integr8sCode patch: a pipeline that only counts its $match is counted by the"
        " backend\n"
        "\t\t// (count_pushdown.go). Not when dotted keys were taken out of the pushed filter.\n"
        "\t\tif cp, ok := parseCountPipeline(aggregationStages); ok && !h.DisablePushdown &&\n"
        "\t\t\tqp.Sort.Len() == 0 && qp.Filter.Len() == cp.filter.Len() {\n"
        "\t\t\titer, err = aggregateCount(ctx, closer, c, qp, cp, stagesDocuments)\n"
        "\t\t} else {\n"
        "\t\t\titer, err = processStagesDocuments(ctx, closer, &stagesDocumentsParams{c, qp,"
        " stagesDocuments})\n"
        "\t\t}\n",
    )

    # 5. The leak detector only in debug builds.
    resource = internal / "util/resource/resource.go"
    for first in ("\tname := profileName(obj)\n", "\tp := pprof.Lookup(profileName(obj))\n"):
        replace_once(
            resource,
            "\tcheckArgs(obj, token)\n\n" + first,
            "\tcheckArgs(obj, token)\n\n"
            "\t// Integr8sCode patch: tracking costs a stack and a finalizer per object.\n"
            "\tif !debugbuild.Enabled {\n"
            "\t\treturn\n"
            "\t}\n\n" + first,
        )

    # 6. pgx's query log at the level FerretDB's logger takes.
    replace_once(
        internal / "backends/postgresql/metadata/pool/opendb.go",
        "\t\tLogLevel: tracelog.LogLevelTrace,\n",
        "\t\tLogLevel: pgxLogLevel(l),\n",
    )
    replace_once(
        internal / "backends/postgresql/metadata/pool/opendb.go",
        "// openDB creates a pool of connections to PostgreSQL database\n",
        "// pgxLogLevel is the level pgx's query log asks for (Integr8sCode patch): every\n"
        "// query only when the logger takes debug; otherwise formatting each query's\n"
        "// arguments is wasted.\n"
        "func pgxLogLevel(l *slog.Logger) tracelog.LogLevel {\n"
        "\tif l.Enabled(context.Background(), slog.LevelDebug) {\n"
        "\t\treturn tracelog.LogLevelTrace\n"
        "\t}\n\n"
        "\treturn tracelog.LogLevelWarn\n"
        "}\n\n"
        "// openDB creates a pool of connections to PostgreSQL database\n",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
