"""Linked data: one record, many serialisations (DESIGN §6).

Each profile maps a ``node.records.Dataset`` both ways, in one module, and lists the record
fields it carries in a ``*_FIELDS`` constant (also in docs/mapping.md):

- ``dcat``: DCAT-AP 3.0.1 graphs of a dataset and of the node's catalog (``dcat_read`` reads);
- ``schemaorg``: schema.org / Bioschemas Dataset JSON-LD for landing pages;
- ``datacite``: DataCite Metadata Schema 4.6 XML;
- ``dublincore``: OAI-PMH ``oai_dc``.
- ``dcat_catalog``: reads another catalog's pages (paging, datasets, listed members) for
  the federation's DCAT reader.

``namespaces`` holds every namespace, ``context`` the node facts and URLs (``NodeInfo``),
``identifiers`` the PIDs, ``vocab`` the target vocabularies' small tables, ``mediatypes`` the RDF
serialisations and ``serialise``. rdflib and lxml are used here only. Views, content
negotiation, signposting, OAI-PMH and PID minting build on these modules elsewhere.
"""
