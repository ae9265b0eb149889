"""Files as the pages show them: highlighted for their language, escaped by Pygments."""

from __future__ import annotations

from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.util import ClassNotFound

from dockyard.catalog.files import FileRow

#: Lexers by descriptor type where a file's name does not say (`nextflow.config`, `Snakefile`).
_LEXERS = {"CWL": "yaml", "NFL": "groovy", "SMK": "python", "GALAXY": "json"}


def rendered(file: FileRow) -> dict[str, Any]:
    """A file with its content highlighted for its language."""
    try:
        if file.file_type == "CONTAINERFILE":
            lexer = get_lexer_by_name("docker")
        elif file.descriptor_type == "CWL":
            lexer = get_lexer_by_name("yaml")
        else:
            lexer = get_lexer_for_filename(file.path)
    except ClassNotFound:
        lexer = get_lexer_by_name(_LEXERS.get(file.descriptor_type or "", "text"))
    return {
        "path": file.path,
        "file_type": file.file_type,
        "descriptor_type": file.descriptor_type,
        "size": len(file.content.encode()),
        "sha256": file.sha256,
        "html": highlight(file.content, lexer, HtmlFormatter()),
    }
