"""Small utilities with no knowledge of the gateway: ids, JSON depth, background tasks, files."""
