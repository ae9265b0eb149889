"""The REST API: one router per feature, over the domain services."""
