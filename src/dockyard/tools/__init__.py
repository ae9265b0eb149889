"""Tools: registration, versions, files, visibility and search."""
