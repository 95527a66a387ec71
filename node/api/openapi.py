"""The OpenAPI 3.1 document of the REST API, written by hand next to the views it describes.

Kept as a plain dict so that it needs no extra library at run time; a test validates it with
openapi-spec-validator and checks that every route of the blueprint is described.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "1.0.0"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {"$ref": "#/components/responses/NotFound"},
}

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_NNUM = {"type": ["number", "null"]}
_NINT = {"type": ["integer", "null"]}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "errors", "status"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, naming the bad value."},
            "errors": {"type": "array", "items": _STR, "description": "One line per problem."},
            "status": {"type": "integer", "description": "The HTTP status, repeated."},
        },
    },
    "Size5D": {
        "type": "object",
        "required": ["x", "y", "z", "c", "t"],
        "properties": {k: {"type": "integer", "minimum": 1} for k in "xyzct"},
    },
    "PhysicalSizeUm": {
        "type": "object",
        "description": "Trusted pixel sizes in µm; null where unknown or suspicious.",
        "properties": {k: _NNUM for k in "xyz"},
    },
    "PhysicalSizeAxis": {
        "type": "object",
        "properties": {
            "value_um": _NNUM,
            "original_value": _NNUM,
            "original_unit": _NSTR,
            "source": _NSTR,
            "suspicious": {**_NSTR, "description": "Why the value is not trusted."},
        },
    },
    "Channel": {
        "type": "object",
        "properties": {
            "name": _NSTR,
            "fluor": _NSTR,
            "excitation_nm": _NNUM,
            "emission_nm": _NNUM,
            "acquisition_mode": _NSTR,
            "contrast_method": _NSTR,
            "illumination": _NSTR,
            "color": _NSTR,
        },
    },
    "Image": {
        "type": "object",
        "required": ["id", "dataset_id", "path", "format", "status", "physical_size_um"],
        "properties": {
            "id": _STR,
            "dataset_id": _NSTR,
            "name": _NSTR,
            "path": {**_STR, "description": "Main file of the fileset, relative to the source."},
            "files": {"type": "array", "items": _STR},
            "series": {"type": "integer", "minimum": 0},
            "format": _STR,
            "media_type": _NSTR,
            "file_size": _NINT,
            "size": _nullable(_ref("Size5D")),
            "dimension_order": _NSTR,
            "pixel_type": _NSTR,
            "physical_size_um": _ref("PhysicalSizeUm"),
            "physical_size_detail": {
                "type": "object",
                "properties": {k: _nullable(_ref("PhysicalSizeAxis")) for k in "xyz"},
            },
            "time_increment_s": _NNUM,
            "channels": {"type": "array", "items": _ref("Channel")},
            "objective": {"type": ["object", "null"]},
            "microscope": {"type": ["object", "null"]},
            "detectors": {"type": "array", "items": {"type": "object"}},
            "acquired_at": {"type": ["string", "null"], "format": "date-time"},
            "plate": _NSTR,
            "well": _NSTR,
            "key_values": {"type": "object", "additionalProperties": _STR},
            "tags": {"type": "array", "items": _STR},
            "pyramid_levels": {"type": "integer"},
            "status": {"type": "string", "enum": ["ok", "metadata_only", "failed"]},
            "error": _NSTR,
            "notes": {"type": "array", "items": _STR},
            "thumbnail_url": {"type": ["string", "null"], "format": "uri"},
            "url": {"type": "string", "format": "uri"},
            "api_url": {"type": "string", "format": "uri"},
        },
    },
    "Dataset": {
        "type": "object",
        "description": "A dataset record (node/records.py Dataset) plus links.",
        "required": ["id", "title", "lifecycle", "visibility", "data_access", "provenance"],
        "properties": {
            "id": _STR,
            "identifier": _NSTR,
            "title": _STR,
            "description": _NSTR,
            "creators": {"type": "array", "items": {"type": "object"}},
            "keywords": {"type": "array", "items": _STR},
            "organisms": {"type": "array", "items": {"type": "object"}},
            "imaging_methods": {"type": "array", "items": {"type": "object"}},
            "license": _NSTR,
            "license_iri": _NSTR,
            "image_count": {"type": "integer"},
            "formats": {"type": "array", "items": _STR},
            "lifecycle": {"type": "string", "enum": ["draft", "published", "withdrawn"]},
            "visibility": {
                "type": "string",
                "enum": ["public", "federation", "institution", "private"],
            },
            "data_access": {
                "type": "string",
                "enum": ["open", "embargoed", "restricted", "closed"],
            },
            "provenance": {"type": "object"},
            "thumbnail_url": {"type": ["string", "null"], "format": "uri"},
            "url": {"type": "string", "format": "uri"},
            "api_url": {"type": "string", "format": "uri"},
        },
    },
    "DatasetDetail": {
        "allOf": [
            _ref("Dataset"),
            {
                "type": "object",
                "required": ["images"],
                "properties": {"images": {"type": "array", "items": _ref("Image")}},
            },
        ]
    },
    "HarvestError": {
        "type": "object",
        "required": ["path", "reason"],
        "properties": {
            "path": _STR,
            "reason": _STR,
            "level": {"type": "string", "enum": ["error", "warning"]},
        },
    },
    "HarvestRun": {
        "type": "object",
        "required": ["id", "source", "start", "end", "status", "counts", "errors"],
        "properties": {
            "id": {"type": "integer"},
            "source": _STR,
            "kind": _STR,
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": ["string", "null"], "format": "date-time"},
            "status": {"type": "string", "description": "running, completed, failed, ..."},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "message": _NSTR,
            "error_total": {"type": "integer"},
            "errors": {"type": "array", "items": _ref("HarvestError")},
        },
    },
}

_NTIME = {"type": ["string", "null"], "format": "date-time"}
_SCHEMAS["PeerState"] = {
    "type": "object",
    "required": [
        "last_started",
        "last_success",
        "last_error",
        "last_error_at",
        "last_counts",
        "next_run",
    ],
    "properties": {
        "last_started": {**_NTIME, "description": "When the last run began."},
        "last_success": {**_NTIME, "description": "When the last successful run began."},
        "last_error": {**_NSTR, "description": "Why the last failed run failed."},
        "last_error_at": _NTIME,
        "last_counts": {
            "type": "object",
            "description": "What the last run did: read, added, updated, unchanged, withdrawn, "
            "own (records born here, never imported back), skipped.",
            "additionalProperties": {"type": "integer"},
        },
        "next_run": {**_NTIME, "description": "Next scheduled run; null: manual only."},
    },
}
_SCHEMAS["Peer"] = {
    "type": "object",
    "required": ["id", "url", "protocol", "schedule", "origin", "state", "records"],
    "properties": {
        "id": _STR,
        "url": {"type": "string", "format": "uri"},
        "protocol": {"enum": ["fairnode", "oai-pmh", "dcat"]},
        "schedule": {"type": "string", "description": "Cron expression; empty: manual only."},
        "origin": {
            "enum": ["config", "cli"],
            "description": "Set in the configuration file, or added with `fairnode peers add`.",
        },
        "state": _ref("PeerState"),
        "records": {
            "type": "integer",
            "description": "Records harvested from this peer that the caller may read.",
        },
    },
}
_SCHEMAS["PeerList"] = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": _ref("Peer")}},
}

for _name, _item in (("DatasetPage", "Dataset"), ("HarvestRunPage", "HarvestRun")):
    _SCHEMAS[_name] = {
        "type": "object",
        "required": ["items", "next", "total"],
        "properties": {
            "items": {"type": "array", "items": _ref(_item)},
            "next": {**_NSTR, "description": "Cursor of the next page; null on the last."},
            "total": {"type": "integer", "description": "Number of items over all pages."},
        },
    }

_FACET_VALUE = {
    "type": "object",
    "required": ["value", "label", "count"],
    "properties": {
        "value": {"type": "string", "description": "What to pass back as the filter value."},
        "label": {"type": "string", "description": "What a person reads (ontology label)."},
        "count": {"type": "integer", "minimum": 0},
    },
}
_SCHEMAS["SearchHit"] = {
    "allOf": [
        _ref("Dataset"),
        {
            "type": "object",
            "properties": {
                "score": {**_NNUM, "description": "Relevance (sort=relevance only)."},
                "highlights": {
                    "type": "object",
                    "description": "Field → HTML fragments; text escaped, matches in <mark>.",
                    "additionalProperties": {"type": "array", "items": _STR},
                },
            },
        },
    ]
}
_SCHEMAS["SearchPage"] = {
    "type": "object",
    "required": ["total", "items", "facets", "scope", "next"],
    "properties": {
        "total": {"type": "integer", "description": "Matching datasets the caller may read."},
        "items": {"type": "array", "items": _ref("SearchHit")},
        "facets": {
            "type": "object",
            "description": "Facet name → values with counts over all matches.",
            "additionalProperties": {"type": "array", "items": _FACET_VALUE},
        },
        "scope": {"enum": ["institute", "university", "national", "international"]},
        "next": {**_NSTR, "description": "Cursor of the next page; null on the last."},
    },
}


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_MANY = {"type": "array", "items": {"type": "string", "maxLength": 300}, "maxItems": 20}
_SEARCH_PARAMS = [
    _query_param(
        "q",
        'Words (AND), "phrases", field:value (title, keyword, description, creator, channel, '
        "organism, method, instrument, format), prefix* and -exclusion. Typos are tolerated.",
        {"type": "string", "maxLength": 500},
    ),
    *(
        {**_query_param(name, description, _MANY), "style": "form", "explode": True}
        for name, description in (
            ("organism", "NCBITaxon IRI, CURIE or name; matches sub-taxa too. Repeat for OR."),
            ("method", "FBbi IRI, CURIE or label; matches sub-classes too. Repeat for OR."),
            ("instrument", "Instrument (facet value)."),
            ("magnification", "Objective magnification (facet value, e.g. 63)."),
            ("fluor", "Fluorophore (facet value)."),
            ("format", "File format (facet value)."),
            ("origin", "Origin node id."),
            ("license", "SPDX licence id."),
            ("access", "Data access: open, embargoed, restricted, closed."),
        )
    ),
    _query_param(
        "acquired_from", "Acquired on or after (YYYY-MM-DD or date-time).", {"type": "string"}
    ),
    _query_param(
        "acquired_to", "Acquired on or before (YYYY-MM-DD or date-time).", {"type": "string"}
    ),
    _query_param(
        "has_z", "Only datasets with (true) or without (false) Z-stacks.", {"type": "boolean"}
    ),
    _query_param(
        "has_t", "Only datasets with (true) or without (false) time series.", {"type": "boolean"}
    ),
    _query_param("min_channels", "At least this many channels.", {"type": "integer", "minimum": 1}),
    _query_param(
        "scope",
        "Where the records come from (default international: everything).",
        {"enum": ["institute", "university", "national", "international"]},
    ),
    _query_param(
        "sort", "Order of the hits.", {"enum": ["relevance", "newest", "oldest", "title"]}
    ),
]

_PARAMETERS = {
    "limit": {
        "name": "limit",
        "in": "query",
        "description": "Page size (default and maximum set by the node's web settings).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "cursor": {
        "name": "cursor",
        "in": "query",
        "description": "The `next` value of the previous page.",
        "schema": {"type": "string"},
    },
}


def _path_id(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_PAGING = [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"}]


def _get(
    op_id: str, summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "parameters": params or [],
            "responses": {"200": ok, **_ERRORS},
        }
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of /api/v1 for a node served at ``base_url``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fairnode REST API",
            "version": API_VERSION,
            "description": (
                "Datasets and images of a fairnode catalog node, and its harvest runs. "
                "Lists are cursor-paged; every error has the shape of the Error schema. "
                "Only records the caller may read are ever returned."
            ),
        },
        "servers": [{"url": f"{base_url}/api/v1"}],
        "paths": {
            "/": _get(
                "index",
                "Links to the endpoints",
                _json({"type": "object"}, "Links to every endpoint."),
            ),
            "/openapi.json": _get(
                "openapi", "This document", _json({"type": "object"}, "OpenAPI 3.1 document.")
            ),
            "/datasets": _get(
                "listDatasets",
                "Datasets the caller may read, newest first",
                _json(_ref("DatasetPage"), "One page of datasets."),
                _PAGING,
            ),
            "/search": _get(
                "search",
                "Datasets matching a query and filters, with facets",
                _json(_ref("SearchPage"), "One page of hits with facet counts."),
                [*_SEARCH_PARAMS, *_PAGING],
            ),
            "/datasets/{id}": _get(
                "getDataset",
                "One dataset with its images",
                _json(_ref("DatasetDetail"), "The dataset and its images."),
                [_path_id("id", "Dataset id")],
            ),
            "/images/{id}": _get(
                "getImage",
                "One image with its technical metadata",
                _json(_ref("Image"), "The image."),
                [_path_id("id", "Image id")],
            ),
            "/harvest/runs": _get(
                "listHarvestRuns",
                "Harvest runs, newest first, with their errors",
                _json(_ref("HarvestRunPage"), "One page of runs."),
                [
                    *_PAGING,
                    {
                        "name": "source",
                        "in": "query",
                        "description": "Only runs of this harvest source.",
                        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
                    },
                ],
            ),
            "/harvest/runs/{id}": _get(
                "getHarvestRun",
                "One harvest run with its errors",
                _json(_ref("HarvestRun"), "The run."),
                [_path_id("id", "Run id", {"type": "integer", "minimum": 1})],
            ),
            "/peers": _get(
                "listPeers",
                "The peers this node harvests, with their harvest state",
                _json(_ref("PeerList"), "Every peer."),
            ),
        },
        "components": {
            "schemas": _SCHEMAS,
            "parameters": _PARAMETERS,
            "responses": {
                "BadRequest": _json(_ref("Error"), "A query parameter is invalid or unknown."),
                "NotFound": _json(_ref("Error"), "No such record, or not readable by the caller."),
            },
        },
    }
