"""TRS and REST answers over a seeded catalogue are byte for byte the recorded ones.

The recorded answers (`golden/answers.json`) were taken from the implementation that read
through ORM object graphs; read paths that build answers from rows must give the same bytes
(and status and content type) for every shape an answer can take. To record them again
after a deliberate change of an answer: `DOCKYARD_RECORD_GOLDEN=1 pytest tests/trs/test_golden.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.app import bearer
from tests.support.seeded import REQUESTS, seed

GOLDEN = Path(__file__).parent / "golden" / "answers.json"


def _answers(client: TestClient, token: str) -> dict[str, dict[str, object]]:
    answers: dict[str, dict[str, object]] = {}
    for path, maintainer in REQUESTS:
        response = client.get(path, headers=bearer(token) if maintainer else {})
        answers[f"{'maintainer' if maintainer else 'anonymous'} {path}"] = {
            "status": response.status_code,
            "type": response.headers.get("content-type"),
            "body": response.text,
        }
    return answers


def test_answers_over_the_seeded_catalogue_are_the_recorded_bytes(
    client: TestClient, engine: Engine, database_url: str
) -> None:
    token = seed(engine)
    answers = _answers(client, token)
    if os.environ.get("DOCKYARD_RECORD_GOLDEN") and database_url.startswith("sqlite"):
        GOLDEN.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    assert set(answers) == set(recorded)
    different = [key for key in answers if answers[key] != recorded[key]]
    assert not different, (
        f"{len(different)} answers changed, the first: {different[0]}\n"
        f"recorded: {recorded[different[0]]}\nnow:      {answers[different[0]]}"
    )
