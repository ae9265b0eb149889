"""Server-rendered web pages over the same services as the API."""

from pathlib import Path

HERE = Path(__file__).parent
