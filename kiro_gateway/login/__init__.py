"""Logging in to Kiro from the gateway: AWS Builder ID and IAM Identity Center by device code,
Google and GitHub by PKCE (docs/login.md). The new credential joins the pool live."""

from .manager import Attempt, LoginConflict, LoginInputError, LoginManager, LoginUpstreamError

__all__ = ["LoginManager", "Attempt", "LoginInputError", "LoginConflict", "LoginUpstreamError"]
