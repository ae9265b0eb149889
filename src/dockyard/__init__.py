"""dockyard: a self-hostable registry of containerized tools."""

__version__ = "0.1.0"
