"""PostgreSQL's plans for the TRS `/tools` filters and the fast reads, on 100,000 tools.

Run: .venv-test/bin/python bench/plans.py [--tools 100000] [--postgresql URL]

Seeds a scratch database on the local PostgreSQL (as `bench/trs.py` does: every tool
published, two versions each, two images and a descriptor per version), analyzes it as
autovacuum would after a bulk load, and prints `EXPLAIN (ANALYZE, BUFFERS)` of the statements
an anonymous `GET /ga4gh/trs/v2/tools?...` runs for each filter (the count and the page, built
by `catalog.listing` exactly as the app builds them) and of the row reads of `trs.fast`, with
the time each took and whether it read a large table from end to end.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from seeding import database, seed

from dockyard import db
from dockyard.catalog import listing
from dockyard.catalog.models import Tool
from dockyard.trs import fast

#: The TRS filters, as an anonymous caller sends them, and the ToolQuery the app builds.
FILTERS: dict[str, listing.ToolQuery] = {
    "/tools?limit=100": listing.ToolQuery(limit=100),
    "/tools?limit=100&offset=50000": listing.ToolQuery(limit=100, offset=50_000),
    "/tools?registry=quay.io": listing.ToolQuery(host="quay.io", limit=100),
    "/tools?organization=lab7": listing.ToolQuery(namespace="lab7", limit=100),
    "/tools?name=tool4242": listing.ToolQuery(image_name="tool4242", limit=100),
    "/tools?toolname=view": listing.ToolQuery(toolname="view", limit=100),
    "/tools?description=number 4242": listing.ToolQuery(
        description_contains="number 4242", limit=100
    ),
    "/tools?author=bench": listing.ToolQuery(maintainer="bench", limit=100),
    "/tools?id=quay.io/lab42/tool4242": listing.ToolQuery(path="quay.io/lab42/tool4242"),
}


def statements(session: Session, query: listing.ToolQuery) -> dict[str, Select[Any]]:
    """The count and the page `find_tools` runs for this query (anonymous caller)."""
    filtered = listing._filtered(session, None, query)
    counted = filtered.with_only_columns(Tool.id).order_by(None)
    return {
        "count": select(func.count()).select_from(counted.subquery()),
        "page": filtered.order_by(*listing.SORTS[query.sort])
        .limit(query.limit)
        .offset(query.offset),
    }


def explain(session: Session, statement: Any) -> str:
    """EXPLAIN ANALYZE of a statement, its values written into it (as PostgreSQL plans
    a query whose values it knows: the app's are bound the same way)."""
    dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    rows = session.connection().exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql)
    return "\n".join(row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=100_000)
    parser.add_argument(
        "--postgresql",
        default=os.environ.get(
            "DOCKYARD_TEST_POSTGRESQL_SERVER", "postgresql://postgres@127.0.0.1:5432"
        ),
    )
    args = parser.parse_args()
    import tempfile

    with (
        tempfile.TemporaryDirectory() as directory,
        database("postgresql", Path(directory), args.postgresql) as url,
    ):
        engine = db.make_engine(url)
        db.upgrade(engine)
        started = time.perf_counter()
        paths = seed(engine, args.tools)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        print(f"{args.tools:,} tools seeded and analyzed in {time.perf_counter() - started:.1f}s")
        full_scans: list[str] = []
        with Session(engine) as session:
            for name, query in FILTERS.items():
                for part, statement in statements(session, query).items():
                    plan = explain(session, statement)
                    _print(f"{name} ({part})", plan, full_scans)
            ids = list(range(1, 101))
            reads: list[tuple[str, Any, dict[str, Any]]] = [
                ("fast: tool by path", fast.TOOLS_BY_PATH, {"paths": [paths[4242].lower()]}),
                ("fast: page", fast.TOOLS_PAGE, {"limit": 100, "offset": 50_000}),
                ("fast: maintainers", fast.MAINTAINERS, {"tools": ids}),
                ("fast: versions", fast.VERSIONS, {"tools": ids}),
                ("fast: images", fast.IMAGES, {"tools": ids}),
                ("fast: file kinds", fast.FILE_KINDS, {"tools": ids}),
            ]
            for name, statement, params in reads:
                _print(name, explain(session, statement.params(**params)), full_scans)
        engine.dispose()
    print("\nstatements that read a whole large table:", ", ".join(full_scans) or "none")


def _print(name: str, plan: str, full_scans: list[str]) -> None:
    took = re.search(r"Execution Time: ([\d.]+) ms", plan)
    print(f"\n=== {name}: {took.group(1) if took else '?'} ms")
    print(plan)
    scanned = re.findall(r"Seq Scan on (\w+)", plan)
    if any(
        table in {"tools", "tool_versions", "version_images", "version_files"} for table in scanned
    ):
        full_scans.append(name)


if __name__ == "__main__":
    main()
