"""Keeping tools in step with their registries: refresh, its jobs, locks, webhooks, usage."""
