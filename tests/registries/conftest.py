"""Fixtures the registry client's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.access.test_mail import self_signed
from tests.registries.local_registry import LocalRegistry, run_registry


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An open registry that answers HTTPS only, with a certificate of the lab's own CA."""
    directory = tmp_path_factory.mktemp("tls-registry")
    with run_registry("open", directory, tls=self_signed(directory)) as registry:
        yield registry
