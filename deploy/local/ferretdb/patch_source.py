"""Index fixes applied to the copied FerretDB 1.24 source before the local build.

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
"""

from __future__ import annotations

import sys
from pathlib import Path


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


if __name__ == "__main__":
    main(Path(sys.argv[1]))
