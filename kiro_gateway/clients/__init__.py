"""`kiro-gateway client setup <client>`: point a coding client's own config file at this gateway."""
