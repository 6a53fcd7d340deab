"""The stack's Mongo-wire server sorts, pages and counts like MongoDB, whatever it does in SQL.

The local FerretDB on PostgreSQL decides top-level equalities, ranges, ``$in`` and ``$or`` in SQL
and sorts, limits and counts there (deploy/local/ferretdb/overlay/, docs/decisions.md "FerretDB:
sort, limit and count in PostgreSQL"). These tests check answers, not plans, against a reference
written here from MongoDB's rules (BSON type order, type bracketing, arrays sorted by their
smallest or largest element and matched by any element, missing equal to null, strings compared
bytewise), so they pass on any backend: SQLite pushes nothing down, PostgreSQL most of it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from tests.stack import local_stack

Doc = dict[str, Any]
Coll = AsyncCollection[Doc]
STACK = local_stack()
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MISSING = object()
RANKS: list[tuple[type | tuple[type, ...], int]] = [
    (bool, 8),
    ((int, float), 2),
    (str, 3),
    (dict, 4),
    (ObjectId, 7),
    (datetime, 9),
]

# One user's documents: every scalar type the services store, the same value in several types,
# missing and null, non-ASCII strings whose byte order differs from most locales' order, an
# object, arrays (sorted by their smallest / largest element, matched by any), equal keys.
MIXED: list[Any] = [
    5,
    Int64(5),
    5.0,
    5.5,
    -3,
    Int64(2**40),
    0.25,
    "z",
    "Z",
    "é",
    "e",
    "ä",
    "😀",
    "\uff5a",  # fullwidth z (3 UTF-8 bytes, before the 4-byte emoji)
    "",
    "a b",
    "a-b",
    None,
    MISSING,
    MISSING,
    T0,
    T0 + timedelta(milliseconds=1),
    T0 - timedelta(days=400),
    True,
    False,
    ObjectId("0123456789abcdef01234567"),
    ObjectId("fedcba9876543210fedcba98"),
    {"nested": 1},
    [1, 100],
    ["b", 7],
    [T0],
]


def rank(v: Any) -> int:
    """BSON's type order (null and missing alike; bool before int: bool is an int in Python)."""
    if v is MISSING or v is None:
        return 1
    for types, r in RANKS:
        if isinstance(v, types):
            return r
    raise AssertionError(f"no rank for {v!r}")


def scalar_key(v: Any) -> tuple[int, Any]:
    r = rank(v)
    if r == 1:
        return (r, 0)
    if r == 3:
        return (r, v.encode())  # bytewise, like MongoDB's default collation
    if r == 4:
        return (r, sorted(v.items()))
    if r == 7:
        return (r, v.binary)
    return (r, v)


def sort_key(v: Any, descending: bool) -> tuple[int, Any]:
    """An array sorts by its smallest element ascending, by its largest descending."""
    if isinstance(v, list):
        keys = [scalar_key(e) for e in v]
        return max(keys) if descending else min(keys)
    return scalar_key(v)


def reference_sort(docs: list[Doc], spec: list[tuple[str, int]]) -> list[Doc]:
    def compare(a: Doc, b: Doc) -> int:
        for field, direction in spec:
            ka = sort_key(a.get(field, MISSING), direction < 0)
            kb = sort_key(b.get(field, MISSING), direction < 0)
            if ka != kb:
                return (-1 if ka < kb else 1) * direction
        return 0

    return sorted(docs, key=functools.cmp_to_key(compare))


def values_of(v: Any) -> list[Any]:
    """What a condition on a field compares: the value, or each element of an array."""
    return v if isinstance(v, list) else [v]


def compare_ok(v: Any, op: str, operand: Any) -> bool:
    """One comparison within MongoDB's type bracket (a number never matches a string); a
    missing field compares as null."""
    if v is MISSING:
        v = None
    if rank(v) != rank(operand):
        return False
    a, b = scalar_key(v), scalar_key(operand)
    return {
        "$eq": a == b,
        "$gt": a > b,
        "$gte": a >= b,
        "$lt": a < b,
        "$lte": a <= b,
    }[op]


def reference_match(doc: Doc, query: Doc) -> bool:
    for field, cond in query.items():
        if field == "$or":
            if not any(reference_match(doc, sub) for sub in cond):
                return False
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        value = doc.get(field, MISSING)
        for op, operand in ops.items():
            if op == "$in":
                ok = any(compare_ok(e, "$eq", o) for e in values_of(value) for o in operand)
            else:
                ok = any(compare_ok(e, op, operand) for e in values_of(value))
            if not ok:
                return False
    return True


@pytest.fixture
async def coll() -> AsyncIterator[Coll]:
    """A collection in a database of its own, dropped after the test."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"wire_order_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]["docs"]
    finally:
        await client.drop_database(name)
        await client.close()


def mixed_docs() -> list[Doc]:
    docs: list[Doc] = []
    for n, v in enumerate(MIXED):
        doc: Doc = {"_id": f"m{n:03}", "user": "u1"}
        if v is not MISSING:
            doc["k"] = v
        docs.append(doc)
    # another user, and a document whose user is an array holding u1 (it matches u1)
    docs += [{"_id": f"o{n:03}", "user": "u2", "k": n} for n in range(5)]
    docs.append({"_id": "arr-user", "user": ["u1", "u3"], "k": 6})
    return docs


async def test_sorted_pages_follow_bson_order_for_every_type(coll: Coll) -> None:
    await coll.create_index([("user", ASCENDING), ("k", DESCENDING)])
    docs = mixed_docs()
    await coll.insert_many(docs)
    mine = [d for d in docs if reference_match(d, {"user": "u1"})]
    assert len(mine) == len(MIXED) + 1

    for direction in (ASCENDING, DESCENDING):
        spec = [("k", direction), ("_id", direction)]
        expected = [d["_id"] for d in reference_sort(mine, spec)]
        for skip, limit in ((0, 1), (0, 5), (3, 4), (10, 7), (len(mine) - 2, 5), (0, 100)):
            page = await coll.find({"user": "u1"}).sort(spec).skip(skip).limit(limit).to_list()
            assert [d["_id"] for d in page] == expected[skip : skip + limit], (spec, skip, limit)


async def test_equal_keys_are_ordered_by_id_across_pages(coll: Coll) -> None:
    await coll.create_index([("user", ASCENDING), ("at", DESCENDING)])
    docs = [
        {
            "_id": f"{n:03}-{uuid.uuid4().hex[:4]}",
            "user": "u1",
            "at": T0 + timedelta(seconds=n // 4),
        }
        for n in range(30)
    ]
    await coll.insert_many(docs)
    spec = [("at", DESCENDING), ("_id", DESCENDING)]
    expected = [d["_id"] for d in reference_sort(docs, spec)]
    pages = [
        [d["_id"] for d in await coll.find({"user": "u1"}).sort(spec).skip(s).limit(4).to_list()]
        for s in range(0, 30, 4)
    ]
    assert [i for page in pages for i in page] == expected


async def test_counts_match_mongodb_rules(coll: Coll) -> None:
    await coll.create_index([("user", ASCENDING), ("k", DESCENDING)])
    docs = mixed_docs()
    await coll.insert_many(docs)
    queries: list[Doc] = [
        {"user": "u1"},
        {"user": "nobody"},
        {"user": "u1", "k": 5},
        {"user": "u1", "k": {"$gte": 5}},
        {"user": "u1", "k": {"$gt": "a", "$lte": "é"}},
        {"user": "u1", "k": {"$lt": T0}},
        {"user": "u1", "k": {"$in": [7, "z", True]}},
        {"user": "u1", "$or": [{"k": {"$gt": 5}}, {"k": 5, "_id": {"$gt": "m001"}}]},
        {"k": {"$gte": -3, "$lt": 6}},
    ]
    for query in queries:
        expected = sum(reference_match(d, query) for d in docs)
        assert await coll.count_documents(query) == expected, query
        assert await coll.count_documents(query, limit=3) == min(expected, 3), query
        assert await coll.count_documents(query, skip=2, limit=3) == max(0, min(expected - 2, 3)), (
            query
        )
        command = await coll.database.command({"count": "docs", "query": query, "limit": 4})
        assert command["n"] == min(expected, 4), query
        counted = await (await coll.aggregate([{"$match": query}, {"$count": "n"}])).to_list()
        assert counted == ([{"n": expected}] if expected else []), query


async def test_filtered_pages_match_the_reference(coll: Coll) -> None:
    await coll.create_index([("user", ASCENDING), ("k", DESCENDING)])
    docs = mixed_docs()
    await coll.insert_many(docs)
    cases: list[tuple[Doc, list[tuple[str, int]]]] = [
        ({"user": "u1", "k": {"$gte": 0}}, [("k", DESCENDING), ("_id", ASCENDING)]),
        ({"user": "u1", "k": {"$in": ["z", "é", 5, None]}}, [("k", ASCENDING), ("_id", ASCENDING)]),
        ({"k": {"$lt": 6}}, [("user", ASCENDING), ("k", ASCENDING), ("_id", DESCENDING)]),
    ]
    for query, spec in cases:
        expected = [
            d["_id"] for d in reference_sort([d for d in docs if reference_match(d, query)], spec)
        ]
        for skip, limit in ((0, 3), (2, 5), (0, 50)):
            page = await coll.find(query).sort(spec).skip(skip).limit(limit).to_list()
            assert [d["_id"] for d in page] == expected[skip : skip + limit], (query, spec, skip)


async def test_a_keyset_walk_visits_every_document_once_in_order(coll: Coll) -> None:
    await coll.create_index([("kind", ASCENDING), ("at", ASCENDING)])
    docs = [
        {
            "_id": n,
            "kind": "a" if n % 3 else "b",
            "at": T0 + timedelta(seconds=n // 5),
            "eid": f"{n:04}",
        }
        for n in range(60)
    ]
    await coll.insert_many(docs)
    order = [("at", ASCENDING), ("eid", ASCENDING)]
    expected = [d["_id"] for d in reference_sort([d for d in docs if d["kind"] == "a"], order)]
    seen: list[int] = []
    query: Doc = {"kind": "a"}
    while page := await coll.find(query).sort(order).limit(7).to_list():
        seen.extend(d["_id"] for d in page)
        last = page[-1]
        query = {
            "kind": "a",
            "at": {"$gte": last["at"]},
            "$or": [{"at": {"$gt": last["at"]}}, {"at": last["at"], "eid": {"$gt": last["eid"]}}],
        }
    assert seen == expected
