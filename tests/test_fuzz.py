"""A standing fuzz run: schemathesis over dockyard's own REST OpenAPI, against a live server
with a real tool, version and user to reach, finds no server error.

The seed is fixed, so CI runs the same cases every time; `DOCKYARD_FUZZ_SEED=random` (or a
number) explores others locally. The operations that would take away the fuzzer's own
access (revoking its token) are left out.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.support.app import bearer
from tests.support.registry import LocalRegistry

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
FIXED_SEED = 20261203


def fuzz_seed() -> int:
    chosen = os.environ.get("DOCKYARD_FUZZ_SEED", "")
    if chosen == "random":
        return random.randrange(1, 2**31)
    return int(chosen) if chosen.isascii() and chosen.isdigit() else FIXED_SEED


def test_the_rest_api_answers_no_generated_request_with_a_server_error(
    live_server: str,
    engine: Engine,
    make_user: object,
    tmp_path: Path,
    open_registry: LocalRegistry,
) -> None:
    _, token = make_user("fuzzer", admin=True)  # type: ignore[operator]
    open_registry.push_image("fuzz/tool", "1.0", salt="fuzz")
    with httpx.Client(base_url=live_server, headers=bearer(token)) as http:
        # On a registry that answers, so a refresh is a 200 (502 is a registry's failure).
        tool = http.post("/api/tools", json={"image": f"{open_registry.host}/fuzz/tool"}).json()
        http.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"})
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\ntool_id = {tool["id"]}\nname = "1.0"\nusername = "fuzzer"\n')
    seed = fuzz_seed()
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{live_server}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--exclude-path",
            "/api/tokens/{token_id}",
            "--max-examples",
            "15",
            "--seed",
            str(seed),
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"seed {seed}:\n{output[-6000:]}"
    assert " passed" in output and "Server error" not in output
