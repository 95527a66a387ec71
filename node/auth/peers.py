"""Federation peers authenticate with a bearer token: ``Authorization: Bearer <token>``.

Until the federation's OIDC provider arrives (DESIGN §8), the token is one static secret the
peers share, ``FAIRNODE_FEDERATION_TOKEN``. A request presenting it is an authenticated peer
(``Identity(peer=True)``); what a peer may read is decided by the access policy
(``node.auth.policy``), not here. A request presenting any other credentials is refused with 401:
a harvester whose token is wrong must learn it, not be served silently as anonymous (it would
then drop every ``federation`` record as if withdrawn). Without the variable no peer can
authenticate, and every bearer token is wrong. Other schemes (``Basic``) are not ours and leave
the caller anonymous.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from node.auth.policy import ANONYMOUS, Identity

TOKEN_ENV = "FAIRNODE_FEDERATION_TOKEN"
REALM = "fairnode-federation"
_MAX_TOKEN = 4096  # longer is not a token of ours; do not even compare it


def _refuse(error: str, description: str) -> Unauthorized:
    challenge = WWWAuthenticate(
        "Bearer", {"realm": REALM, "error": error, "error_description": description}
    )
    return Unauthorized(description, www_authenticate=challenge)


def peer_identity(authorization: str | None, env: Mapping[str, str] | None = None) -> Identity:
    """The identity an ``Authorization`` header value proves: a peer, or anonymous when it
    holds no bearer token. Raises werkzeug's Unauthorized (401 with a ``WWW-Authenticate:
    Bearer`` challenge, RFC 6750 §3) for a bearer token that is not the federation's."""
    if authorization is None or not authorization.strip():
        return ANONYMOUS
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        # Other schemes (Basic) are for someone else, e.g. a proxy's password in front of the
        # node: they prove nothing here, and refusing them would lock such a site out.
        return ANONYMOUS
    if not token:
        raise _refuse("invalid_request", "the Authorization header has 'Bearer' but no token")
    expected = (os.environ if env is None else env).get(TOKEN_ENV, "")
    # compare_digest on bytes: no early exit that would tell a guesser how much was right
    if (
        not expected
        or len(token) > _MAX_TOKEN
        or not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
    ):
        raise _refuse("invalid_token", "the bearer token is not this federation's token")
    return Identity(peer=True)
