"""Users, API tokens and (with the web UI) sessions."""
