"""Descriptor files the tests register and read back."""

from __future__ import annotations

FILES = [
    {
        "path": "tools/samtools.cwl",
        "file_type": "PRIMARY_DESCRIPTOR",
        "descriptor_type": "CWL",
        "content": "cwlVersion: v1.2\nclass: CommandLineTool\nrun: lib/view.cwl\n",
    },
    {
        "path": "tools/lib/view.cwl",
        "file_type": "SECONDARY_DESCRIPTOR",
        "descriptor_type": "CWL",
        "content": "cwlVersion: v1.2\n",
    },
    {
        "path": "tools/test.json",
        "file_type": "TEST_FILE",
        "descriptor_type": "CWL",
        "content": "{}",
    },
    {"path": "Dockerfile", "file_type": "CONTAINERFILE", "content": "FROM ubuntu:24.04\n"},
]


CWL: list[tuple[str, str, str | None, str]] = [
    ("tool.cwl", "PRIMARY_DESCRIPTOR", "CWL", "cwlVersion: v1.2\nclass: CommandLineTool\n")
]
