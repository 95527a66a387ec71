"""Record values → the controlled vocabularies of the target profiles, and back.

The node's own vocabularies (organisms, methods, licences, EDAM formats) live in
``node/ontologies.py``; this module holds only the small fixed tables that the *targets* define:
the EU access-right and file-type tables (DCAT-AP), the OpenAIRE access terms (DataCite, Dublin
Core) and DataCite's contributor types.
"""

from __future__ import annotations

import re

from node.records import DataAccess, Term

from .namespaces import FBBI, FBBI_ONTOLOGY, NCBITAXON, NCBITAXON_ONTOLOGY

# DCAT-AP dct:accessRights: the EU access-right table has PUBLIC, RESTRICTED and NON_PUBLIC.
# Embargoed and closed data are both non-public; the embargo end (dct:available) tells them apart.
EU_ACCESS_RIGHT = {
    DataAccess.open: "PUBLIC",
    DataAccess.restricted: "RESTRICTED",
    DataAccess.embargoed: "NON_PUBLIC",
    DataAccess.closed: "NON_PUBLIC",
}
EU_ACCESS_RIGHT_LABEL = {"PUBLIC": "public", "RESTRICTED": "restricted", "NON_PUBLIC": "non-public"}

# OpenAIRE's info:eu-repo access terms name all four DataAccess values exactly.
EU_REPO_ACCESS = {
    DataAccess.open: "info:eu-repo/semantics/openAccess",
    DataAccess.embargoed: "info:eu-repo/semantics/embargoedAccess",
    DataAccess.restricted: "info:eu-repo/semantics/restrictedAccess",
    DataAccess.closed: "info:eu-repo/semantics/closedAccess",
}
EU_REPO_ACCESS_LABEL = {
    DataAccess.open: "Open Access",
    DataAccess.embargoed: "Embargoed Access",
    DataAccess.restricted: "Restricted Access",
    DataAccess.closed: "Closed Access",
}
EU_REPO_EMBARGO_PREFIX = "info:eu-repo/date/embargoEnd/"


def access_from_eu_repo(value: str) -> DataAccess | None:
    for access, uri in EU_REPO_ACCESS.items():
        if value.strip() == uri:
            return access
    return None


# The node's format names → EU file-type codes. Only where the table has the format itself;
# CZI, ND2, LIF, DV and OME-Zarr have no entry (BIN, "binary data", would say nothing).
EU_FILE_TYPE = {"OME-TIFF": "TIFF", "TIFF": "TIFF", "OME-XML": "XML"}

# Media types of formats when the images do not say (the harvester's own table, same values).
DEFAULT_MEDIA_TYPE = {"OME-TIFF": "image/tiff", "TIFF": "image/tiff", "OME-XML": "application/xml"}

# EU data theme every microscopy dataset belongs to: "Science and technology".
EU_DATA_THEME = "TECH"
EU_DATA_THEME_LABEL = "Science and technology"

# ADMS publisher type of a node: an academic or scientific organisation.
NODE_PUBLISHER_TYPE = "Academia-ScientificOrganisation"

# DataCite contributorType values (kernel 4.6/4.7); a free-text role is matched against them.
DATACITE_CONTRIBUTOR_TYPES = (
    "ContactPerson",
    "DataCollector",
    "DataCurator",
    "DataManager",
    "Distributor",
    "Editor",
    "HostingInstitution",
    "Other",
    "Producer",
    "ProjectLeader",
    "ProjectManager",
    "ProjectMember",
    "RegistrationAgency",
    "RegistrationAuthority",
    "RelatedPerson",
    "ResearchGroup",
    "RightsHolder",
    "Researcher",
    "Sponsor",
    "Supervisor",
    "Translator",
    "WorkPackageLeader",
)
_CONTRIBUTOR_TYPE_KEYS = {t.casefold(): t for t in DATACITE_CONTRIBUTOR_TYPES}


def datacite_contributor_type(role: str | None) -> str:
    """The DataCite contributorType a free-text role names ('data curator' → DataCurator),
    else 'Other'."""
    key = re.sub(r"[\s_\-]+", "", role or "").casefold()
    return _CONTRIBUTOR_TYPE_KEYS.get(key, "Other")


# --------------------------------------------------------------------------- ontology terms


def is_fbbi(term: Term) -> bool:
    return bool(term.iri and term.iri.startswith(str(FBBI)))


def is_ncbitaxon(term: Term) -> bool:
    return bool(term.iri and term.iri.startswith(str(NCBITAXON)))


def obo_curie(iri: str | None) -> str | None:
    """``FBbi:00000251`` for ``http://purl.obolibrary.org/obo/FBbi_00000251``; None otherwise."""
    m = re.fullmatch(r"http://purl\.obolibrary\.org/obo/([A-Za-z]+)_(\w+)", iri or "")
    return f"{m.group(1)}:{m.group(2)}" if m else None


FBBI_NAME = "Biological Imaging Methods Ontology (FBbi)"
NCBITAXON_NAME = "NCBI organismal classification (NCBITaxon)"
SCHEME_NAMES = {str(FBBI_ONTOLOGY): FBBI_NAME, str(NCBITAXON_ONTOLOGY): NCBITAXON_NAME}
