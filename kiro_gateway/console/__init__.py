"""The web console at /admin: its sign-in sessions, its static assets, its live events and playground."""
