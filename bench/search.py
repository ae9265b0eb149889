"""Tool search on a catalog of 100,000 tools, on SQLite and on PostgreSQL.

Run: .venv-test/bin/python bench/search.py [--tools 100000] [--postgresql-url URL] [--only sqlite]

Seeds a fresh database of each kind (migrated like production), then times what
`GET /api/tools?q=<one word>&limit=20` does for an anonymous caller: the search query with
its total count, loading the page and shaping it as the API does. Words are drawn from three
classes: rare (about 10 matching tools), medium (about 1,000) and common (about 25,000).
Prints median and p95 per class and overall.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from databases import postgresql_engine, sqlite_engine
from sqlalchemy import Engine, insert, text

from dockyard import db
from dockyard.accounts.models import User
from dockyard.api.schemas.tools import ToolOut
from dockyard.catalog import rules
from dockyard.catalog.listing import ToolQuery, find_tools
from dockyard.catalog.models import Tool, ToolMaintainer, ToolVersion
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

CATALOG = Catalog(BUILTIN_REGISTRIES)
REGISTRY_HOSTS = {"quay": "quay.io", "dockerhub": "docker.io", "ghcr": "ghcr.io"}
SYLLABLES = [
    "sam",
    "bam",
    "bwa",
    "gen",
    "seq",
    "var",
    "call",
    "map",
    "trim",
    "qc",
    "bio",
    "nuc",
    "prot",
    "align",
    "blast",
    "kmer",
    "phylo",
    "meta",
    "vcf",
    "fast",
]
FILLER = [f"word{n}" for n in range(400)]
PER_QUERY_CLASS = 60


def vocabulary(rng: random.Random, tools: int) -> dict[str, list[str]]:
    """Rare, medium and common words, sized so each class matches the documented share."""
    names = {f"{a}{b}{c}" for a in SYLLABLES for b in SYLLABLES for c in ("", "x", "tools", "kit")}
    rare = sorted(names)
    rng.shuffle(rare)
    return {
        "rare": rare[: max(1, tools // 10)],
        "medium": [f"topic{n}" for n in range(max(1, tools // 1000))],
        "common": [f"org{n}" for n in range(4)],
    }


def seed(engine: Engine, tools: int, words: dict[str, list[str]], rng: random.Random) -> None:
    with engine.begin() as connection:
        user_id = connection.execute(
            insert(User).values(username="bench", email="bench@example.org").returning(User.id)
        ).scalar_one()
        batch: list[dict[str, object]] = []
        for n in range(tools):
            registry = rng.choice(list(REGISTRY_HOSTS))
            namespace = rng.choice(words["common"])
            name = f"{words['rare'][n % len(words['rare'])]}{n}"
            repository = f"{namespace}/{name}"
            path = rules.tool_path(REGISTRY_HOSTS[registry], repository, None)
            description = " ".join(
                [
                    rng.choice(words["medium"]),
                    *rng.sample(FILLER, 12),
                    words["rare"][n % len(words["rare"])],
                ]
            )
            batch.append(
                {
                    "id": n + 1,
                    "path": path,
                    "registry_id": registry,
                    "host": REGISTRY_HOSTS[registry],
                    "repository": repository,
                    "namespace": namespace,
                    "name": name,
                    "private": False,
                    "published": n % 10 != 0,
                    "description": description,
                    "search_text": rules.search_text(path, CATALOG.get(registry), description),
                    "descriptor_types": ",CWL,",
                }
            )
            if len(batch) == 5000 or n == tools - 1:
                connection.execute(insert(Tool), batch)
                connection.execute(
                    insert(ToolMaintainer),
                    [{"tool_id": row["id"], "user_id": user_id} for row in batch],
                )
                connection.execute(
                    insert(ToolVersion),
                    [
                        {"tool_id": row["id"], "name": name}
                        for row in batch
                        for name in ("1.0", "latest")
                    ],
                )
                batch.clear()
        if engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load; SQLite runs without statistics, as
            # dockyard's embedded database does.
            connection.execute(text("ANALYZE"))


def measure(
    engine: Engine, words: dict[str, list[str]], rng: random.Random
) -> dict[str, list[float]]:
    sessions = db.make_sessionmaker(engine)
    timings: dict[str, list[float]] = {}
    for kind, choices in words.items():
        timings[kind] = []
        for _ in range(PER_QUERY_CLASS):
            word = rng.choice(choices)
            started = time.perf_counter()
            with db.unit_of_work(sessions, write=False) as session:
                page = find_tools(session, None, ToolQuery(q=word, limit=20))
                [ToolOut.of(tool, None, CATALOG).model_dump() for tool in page.items]
            timings[kind].append((time.perf_counter() - started) * 1000)
            assert page.items or kind == "rare", (kind, word)
    return timings


def report(backend: str, tools: int, seconds: float, timings: dict[str, list[float]]) -> None:
    print(f"\n{backend}: {tools:,} tools seeded in {seconds:.1f}s")
    everything = [t for values in timings.values() for t in values]
    for kind, values in [*timings.items(), ("all", everything)]:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        median = statistics.median(values)
        print(
            f"  {kind:<7} one-word search, page of 20: median {median:6.2f} ms   p95 {p95:6.2f} ms"
        )


def run(backend: str, engine: Engine, tools: int) -> None:
    rng = random.Random(7)
    words = vocabulary(rng, tools)
    db.upgrade(engine)
    started = time.perf_counter()
    seed(engine, tools, words, rng)
    seconds = time.perf_counter() - started
    measure(engine, words, random.Random(1))  # warm caches and plans
    report(backend, tools, seconds, measure(engine, words, random.Random(2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=100_000)
    parser.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        with sqlite_engine() as engine:
            run("SQLite", engine, args.tools)
    if args.only != "sqlite":
        with postgresql_engine(args.postgresql_url) as engine:
            run("PostgreSQL", engine, args.tools)


if __name__ == "__main__":
    main()
