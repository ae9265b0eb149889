"""Tools in the catalogue: their versions, images, files, rules and search."""
