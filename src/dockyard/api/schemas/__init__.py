"""The REST API's request and response bodies."""
