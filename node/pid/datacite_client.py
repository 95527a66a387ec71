"""DataCite REST API client: registers findable DOIs (``POST /dois``, JSON:API).

The request is DataCite's documented one (support.datacite.org, "Creating DOIs with the REST
API" and the ``POST /dois`` reference): HTTP basic authentication with the repository account,
``Content-Type: application/vnd.api+json`` and the body

    {"data": {"type": "dois", "attributes": {"doi": "10.80000/fk4…", "event": "publish",
              "url": "<landing page>", "xml": "<base64 DataCite XML>"}}}

``event: publish`` makes the DOI findable at once; the metadata is the node's own DataCite 4.6
XML (node/linkeddata/datacite.py), the one mapping of records to DataCite. DataCite answers 201
with the created DOI in ``data.attributes.doi``; errors come as ``{"errors": [{"source": …,
"title": …}]}`` (422 for metadata or an existing DOI, 401 ``Bad credentials.``). 5xx answers,
timeouts and refused connections are retried with exponential backoff; a POST retried after a
lost answer that then meets "already been taken" is checked with ``GET /dois/{doi}``: if the DOI
points at our URL it was ours, and counts as registered.

DataCite itself cannot be reached from the development environment: tests/pid/test_datacite.py
runs this client against a local HTTP server speaking DataCite's documented contract.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from typing import Any
from urllib.parse import quote

import requests

from node.pid.errors import (
    DataCiteCredentialsError,
    DataCiteError,
    DataCiteRejectedError,
    DataCiteUnavailableError,
)

log = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
USERNAME_ENV = "FAIRNODE_DATACITE_USERNAME"
PASSWORD_ENV = "FAIRNODE_DATACITE_PASSWORD"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


class DataCiteClient:
    """Registers DOIs with one DataCite repository account."""

    def __init__(
        self,
        api_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 1.0,
        session: requests.Session | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self.auth = (username, password)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.http = session or requests.Session()

    @classmethod
    def from_env(cls, api_url: str, **kw: Any) -> DataCiteClient:
        """A client with the credentials of FAIRNODE_DATACITE_USERNAME/PASSWORD (never a file)."""
        username = os.environ.get(USERNAME_ENV, "")
        password = os.environ.get(PASSWORD_ENV, "")
        if not username or not password:
            raise DataCiteCredentialsError(
                f"no DataCite credentials: set {USERNAME_ENV} (the repository account id) and "
                f"{PASSWORD_ENV} in the environment of every process that publishes"
            )
        return cls(api_url, username, password, **kw)

    # ------------------------------------------------------------------ requests

    def register(self, doi: str, *, url: str, xml: bytes) -> str:
        """Create ``doi`` as a findable DOI pointing at ``url`` with the DataCite ``xml``; the DOI
        as DataCite wrote it. DataCiteError subclasses name the problem."""
        body = {
            "data": {
                "type": "dois",
                "attributes": {
                    "doi": doi,
                    "event": "publish",
                    "url": url,
                    "xml": base64.b64encode(xml).decode("ascii"),
                },
            }
        }
        response, retried = self._send("POST", "/dois", json_body=body, what=f"registering {doi}")
        if response.status_code == 201:
            return self._doi_of(response, doi)
        error = self._error_for(response, doi)
        # Our first POST may have succeeded with its answer lost: then the DOI is ours.
        ours = isinstance(error, DataCiteRejectedError) and error.taken and retried
        if ours and self.points_at(doi, url):
            log.info("DataCite: %s was registered by an earlier attempt", doi)
            return doi.lower()
        raise error

    def points_at(self, doi: str, url: str) -> bool:
        """Whether ``doi`` exists at DataCite with ``url`` as its target."""
        response, _ = self._send("GET", f"/dois/{quote(doi, safe='/')}", what=f"reading {doi}")
        if response.status_code != 200:
            return False
        try:
            return response.json()["data"]["attributes"]["url"] == url
        except (ValueError, KeyError, TypeError):
            return False

    def _send(
        self, method: str, path: str, *, what: str, json_body: dict | None = None
    ) -> tuple[requests.Response, bool]:
        """One request with retries of 5xx/429, timeouts and connection errors; (answer, whether
        it took more than one attempt)."""
        target = self.api_url + path
        last = ""
        last_response: requests.Response | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last_response))
            last_response = None
            try:
                response = self.http.request(
                    method,
                    target,
                    json=json_body,
                    auth=self.auth,
                    headers={"Content-Type": JSON_API, "Accept": JSON_API},
                    timeout=self.timeout,
                )
            except requests.Timeout:
                last = f"no answer within {self.timeout:g}s"
            except requests.ConnectionError as e:
                last = f"connection failed ({type(e).__name__})"
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response, attempt > 0
                last_response = response
                last = f"HTTP {response.status_code}{_summary(response)}"
            log.warning("DataCite %s %s: %s (attempt %d)", method, target, last, attempt + 1)
        raise DataCiteUnavailableError(
            f"DataCite at {self.api_url} did not answer usefully while {what}: {last}, "
            f"{self.retries + 1} attempts; nothing was published, try again later"
        )

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        delay = self.backoff * 2 ** (attempt - 1)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
        return delay

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _doi_of(response: requests.Response, doi: str) -> str:
        try:
            data = response.json()["data"]
            got = data["attributes"].get("doi") or data["id"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DataCiteError(
                f"DataCite answered 201 for {doi} without the DOI in data.attributes.doi"
            ) from None
        if not isinstance(got, str) or got.lower() != doi.lower():
            raise DataCiteError(f"DataCite registered {got!r}, not the requested {doi!r}")
        return got.lower()

    @staticmethod
    def _error_for(response: requests.Response, doi: str) -> DataCiteError:
        """The error that a non-201 answer to registering ``doi`` stands for."""
        status = response.status_code
        problems = _problems(response)
        detail = "; ".join(problems) or f"HTTP {status}"
        if status in (401, 403):
            return DataCiteCredentialsError(
                f"DataCite refused the repository account (HTTP {status}: {detail}): check "
                f"{USERNAME_ENV}/{PASSWORD_ENV} and that the account may use the prefix of {doi}"
            )
        if 400 <= status < 500:
            taken = any("already been taken" in p.lower() for p in problems)
            return DataCiteRejectedError(
                f"DataCite refused {doi} (HTTP {status}): {detail}", problems=problems, taken=taken
            )
        return DataCiteError(f"DataCite answered HTTP {status} for {doi}: {detail}")


def _problems(response: requests.Response) -> list[str]:
    """DataCite's ``errors`` list as ``source: title`` strings (empty when there is none)."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    out: list[str] = []
    for e in errors if isinstance(errors, list) else []:
        if not isinstance(e, dict):
            continue
        title = str(e.get("title") or e.get("detail") or "").strip()
        source = str(e.get("source") or "").strip()
        if title:
            out.append(f"{source}: {title}" if source else title)
    return out


def _summary(response: requests.Response) -> str:
    problems = _problems(response)
    return f" ({'; '.join(problems)})" if problems else ""
