"""Errors of PID minting and registration (messages are written for curators and operators)."""

from __future__ import annotations

from node.errors import NodeError


class PidError(NodeError):
    """No PID could be minted (a full shoulder, a registry that refused or did not answer)."""

    status = 500


class DataCiteError(PidError):
    """DataCite answered with an error, or not at all."""

    status = 502


class DataCiteCredentialsError(DataCiteError):
    """DataCite refused the repository account (HTTP 401/403), or none is configured."""


class DataCiteRejectedError(DataCiteError):
    """DataCite refused the request itself (HTTP 4xx, typically 422 with its ``errors`` list)."""

    def __init__(self, message: str, *, problems: list[str] | None = None, taken: bool = False):
        super().__init__(message, errors=problems)
        self.taken = taken  # "This DOI has already been taken"


class DataCiteUnavailableError(DataCiteError):
    """DataCite did not answer usefully (5xx, timeout, connection refused) after the retries."""

    status = 503
