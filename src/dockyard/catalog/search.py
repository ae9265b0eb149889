"""Full-text search over tools, with each database's own index.

PostgreSQL matches a GIN index on the stored column `search_vector`, generated from
`to_tsvector('simple', search_text)`; SQLite an FTS5 table kept in step with
`tools.search_text` by triggers. Neither is in the models: migration 0002 makes them. Every
word of the query matches as a prefix, so `sam bio` finds `quay.io/biocontainers/samtools`.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, func, literal_column, text
from sqlalchemy.orm import Session

from dockyard.catalog.models import Tool

MAX_TERMS = 8


def query_terms(query: str) -> list[str]:
    """The words of a search query, lowercased, as search_text stores them."""
    return [term.lower() for term in re.findall(r"[0-9A-Za-z]+", query)][:MAX_TERMS]


#: Sorts with an index that SQLite can walk in order (see `matches`).
INDEXED_SORTS = frozenset({"name", "-name", "updated", "-updated"})


def matches(session: Session, terms: list[str], *, dense: bool = False) -> ColumnElement[bool]:
    """A condition on `Tool` that holds when every term starts a word of its search text.

    `dense` says that many tools match. SQLite then reads tools in the order of the sort's
    index and keeps the matching ones, which finds a page after a few thousand rows, instead
    of fetching every match and sorting them all; the unary `+` keeps it from driving the
    query from the list of matches.
    """
    if session.get_bind().dialect.name == "postgresql":
        tsquery = " & ".join(f"{term}:*" for term in terms)
        document: ColumnElement[str] = literal_column("tools.search_vector")
        return document.op("@@")(func.to_tsquery(literal_column("'simple'"), tsquery))
    fts = " ".join(f'"{term}"*' for term in terms)
    matching = text("SELECT rowid FROM tools_fts WHERE tools_fts MATCH :fts").bindparams(fts=fts)
    if dense:
        return literal_column("+tools.id").in_(matching)
    return Tool.id.in_(matching)
