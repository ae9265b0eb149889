"""Access requests for private tools: requests, decisions, notifications, registry grants."""
