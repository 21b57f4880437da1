"""HTTP plumbing every route shares: fast JSON responses, body reading, the browser guard."""
