"""Admin API: manage the credential pool over HTTP (enabled when adminApiKey is set)."""
