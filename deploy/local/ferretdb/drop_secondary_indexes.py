"""Drop every non-unique index of every database on the local Mongo-wire server.

    .venv/bin/python drop_secondary_indexes.py <port>

Run by components/ferretdb.sh when the FerretDB binary's index format changed (its suffix,
e.g. ``-idx4``): an index created by an older build keeps its old PostgreSQL form (GIN, then
btree on rank and value) under the same name, so ``create_index`` would not replace it. The
services recreate their indexes at start, in the new form. Unique indexes keep their form.
"""

from __future__ import annotations

import sys

from pymongo import MongoClient


def main(port: int) -> int:
    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=10_000
    )
    dropped = 0
    try:
        for database in client.list_database_names():
            for name in client[database].list_collection_names():
                collection = client[database][name]
                for index, info in collection.index_information().items():
                    if index != "_id_" and not info.get("unique"):
                        collection.drop_index(index)
                        dropped += 1
    finally:
        client.close()
    print(f"dropped {dropped} secondary index(es); the services recreate theirs at start")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
