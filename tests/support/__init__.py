"""What the tests share: servers on loopback, scripted registries, seeded data and helpers.

Imported by `conftest.py`, the test modules and the benchmarks; a test module never imports
another test module."""
