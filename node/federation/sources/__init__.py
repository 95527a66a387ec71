"""Readers of peers: each turns what one kind of peer serves into ``RemoteRecord``s.

- ``oai``: an OAI-PMH 2.0 endpoint (fairnode peers in ``dcat_ap``; other repositories in
  ``oai_datacite`` or ``oai_dc``).

Every reader fetches through ``node.federation.fetch.Fetcher`` (timeouts, size cap, retries) and
follows the ``node.federation.model.PeerReader`` protocol.
"""
