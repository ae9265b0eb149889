"""Fixtures the registry client's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.registry import LocalRegistry, run_registry
from tests.support.tls import self_signed


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An open registry that answers HTTPS only, with a certificate of the lab's own CA."""
    directory = tmp_path_factory.mktemp("tls-registry")
    with run_registry("open", directory, tls=self_signed(directory)) as registry:
        yield registry
