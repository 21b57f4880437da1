"""Client API keys: named keys with their own limits, besides the single apiKey."""
