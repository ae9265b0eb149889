"""Whether `trs.fast` should read PostgreSQL on the event loop or in a worker thread.

Run: .venv-test/bin/python bench/fast_inline.py [--tools 10000] [--seconds 4]

Seeds a scratch PostgreSQL database as `bench/trs.py` does, then serves it uncached twice: as
shipped (on PostgreSQL the fast reads run in a worker thread) and with the reads forced onto
the event loop, as on SQLite; wrk reads `GET /tools/{id}` at 1, 8 and 64 connections.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from seeding import database, seed
from tests.support.network import free_port

from dockyard import db
from trs import fetch_all, scenarios, server, wrk

SERVE = """
import sys, uvicorn
from dockyard.trs import fast
if sys.argv[2] == "event loop":
    shipped = fast.FastReads.__init__
    def on_the_loop(self, *args, **kwargs):
        shipped(self, *args, **kwargs)
        self.inline = True
    fast.FastReads.__init__ = on_the_loop
from dockyard.app import create_app_from_env
uvicorn.run(create_app_from_env(), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning", loop="asyncio")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument(
        "--postgresql",
        default=os.environ.get(
            "DOCKYARD_TEST_POSTGRESQL_SERVER", "postgresql://postgres@127.0.0.1:5432"
        ),
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        database("postgresql", Path(directory), args.postgresql) as url,
    ):
        workdir = Path(directory)
        engine = db.make_engine(url)
        db.upgrade(engine)
        paths = scenarios(seed(engine, args.tools))["GET /tools/{id}"]
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        engine.dispose()
        (workdir / "serve.py").write_text(SERVE)
        env = {
            **os.environ,
            "DOCKYARD_DATABASE_URL": url,
            "DOCKYARD_DATA_DIR": str(workdir),
            "DOCKYARD_BACKGROUND_REFRESH": "false",
            "DOCKYARD_TRS_CACHE_MB": "0",
            "DOCKYARD_SECRET_KEY": "bench-secret-key-" + "x" * 32,
        }
        print(f"uncached GET /tools/{{id}} over {args.tools:,} tools on PostgreSQL")
        for mode in ("worker thread", "event loop"):
            port = free_port()
            command = [sys.executable, str(workdir / "serve.py"), str(port), mode]
            with server(command, env, port, workdir / "serve.log") as served:
                fetch_all(served, {"warm-up": paths[:200]})
                for connections in (1, 8, 64):
                    run = wrk(served, paths, args.seconds, connections, workdir)
                    errors = int(run["non_2xx"] + run["socket_errors"])
                    print(
                        f"{mode:>13}, {connections:>2} connections: {run['rps']:>6,.0f} r/s, "
                        f"p99 {run['p99_ms']:>6.1f} ms, {errors} errors"
                    )


if __name__ == "__main__":
    main()
