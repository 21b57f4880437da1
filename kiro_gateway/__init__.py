"""kiro-gateway: Anthropic, OpenAI and Gemini APIs in front of a pool of Kiro accounts."""

__version__ = "0.1.0"
