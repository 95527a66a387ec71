"""Every RDF namespace the linked-data profiles use, in one place, and the prefixes they bind.

``SCHEMA`` is ``http://schema.org/``, not ``https``: the schema.org JSON-LD context (release 30.0,
the one behind ``"@context": "https://schema.org/"``) maps terms with ``"@vocab":
"http://schema.org/"``, and the DCAT-AP shapes bind ``schema:`` the same way. Triples parsed from
our JSON-LD therefore use ``http://schema.org/`` and so must every graph we build by hand.

Plain ``Namespace`` objects rather than rdflib's closed ``DefinedNamespace`` classes: those lag
behind DCAT 3 (``dcat:version``, ``dcat:hadRole``) and would refuse terms the profile needs.
"""

from __future__ import annotations

from rdflib import RDF, RDFS, XSD, Graph, Namespace, URIRef

# W3C and DCMI vocabularies
ADMS = Namespace("http://www.w3.org/ns/adms#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
DCMITYPE = Namespace("http://purl.org/dc/dcmitype/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
ORG = Namespace("http://www.w3.org/ns/org#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
PROV = Namespace("http://www.w3.org/ns/prov#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
SCHEMA = Namespace("http://schema.org/")
BIBO = Namespace("http://purl.org/ontology/bibo/")  # bibo:authorList keeps the creator order
DCATAP = Namespace("http://data.europa.eu/r5r/")
# fairnode's own small vocabulary: the node descriptor (/.well-known/fairnode) and the parts of a
# record's provenance no W3C vocabulary names (the ordered chain of nodes it came through).
FAIRNODE = Namespace("https://w3id.org/fairnode/ns#")

# EU Publications Office authority tables (the controlled vocabularies DCAT-AP asks for)
EU_AUTHORITY = "http://publications.europa.eu/resource/authority/"
ACCESS_RIGHT = Namespace(EU_AUTHORITY + "access-right/")
FILE_TYPE = Namespace(EU_AUTHORITY + "file-type/")
LANGUAGE = Namespace(EU_AUTHORITY + "language/")
COUNTRY = Namespace(EU_AUTHORITY + "country/")
DATA_THEME = Namespace(EU_AUTHORITY + "data-theme/")
# The tables themselves (skos:ConceptScheme IRIs: no trailing slash).
ACCESS_RIGHT_SCHEME = URIRef(EU_AUTHORITY + "access-right")
FILE_TYPE_SCHEME = URIRef(EU_AUTHORITY + "file-type")
LANGUAGE_SCHEME = URIRef(EU_AUTHORITY + "language")
COUNTRY_SCHEME = URIRef(EU_AUTHORITY + "country")
DATA_THEME_SCHEME = URIRef(EU_AUTHORITY + "data-theme")
ADMS_PUBLISHER_TYPE = Namespace("http://purl.org/adms/publishertype/")
ADMS_PUBLISHER_TYPE_SCHEME = URIRef("http://purl.org/adms/publishertype/1.0")

# Ontologies and identifier systems of the record's values
OBO = Namespace("http://purl.obolibrary.org/obo/")
FBBI = Namespace("http://purl.obolibrary.org/obo/FBbi_")  # FBbi_00000251
NCBITAXON = Namespace("http://purl.obolibrary.org/obo/NCBITaxon_")  # NCBITaxon_10090
FBBI_ONTOLOGY = OBO["fbbi.owl"]
NCBITAXON_ONTOLOGY = OBO["ncbitaxon.owl"]
EDAM = Namespace("http://edamontology.org/")
SPDX_LICENSES = Namespace("https://spdx.org/licenses/")
IANA_MEDIA_TYPES = Namespace("https://www.iana.org/assignments/media-types/")
ORCID = Namespace("https://orcid.org/")
ROR = Namespace("https://ror.org/")
DOI = Namespace("https://doi.org/")

# Profiles a document says it conforms to
DCAT_AP_3 = URIRef("http://data.europa.eu/r5r/")  # DCAT-AP's namespace doubles as its IRI
BIOSCHEMAS_DATASET = URIRef("https://bioschemas.org/profiles/Dataset/1.0-RELEASE")

PREFIXES: dict[str, Namespace] = {
    "adms": ADMS,
    "bibo": BIBO,
    "dcat": DCAT,
    "dcatap": DCATAP,
    "dct": DCTERMS,
    "dctype": DCMITYPE,
    "edam": EDAM,
    "fairnode": FAIRNODE,
    "foaf": FOAF,
    "hydra": HYDRA,
    "locn": LOCN,
    "obo": OBO,
    "odrl": ODRL,
    "org": ORG,
    "owl": OWL,
    "prov": PROV,
    "rdf": Namespace(str(RDF)),
    "rdfs": Namespace(str(RDFS)),
    "schema": SCHEMA,
    "skos": SKOS,
    "spdx": SPDX,
    "vcard": VCARD,
    "xsd": Namespace(str(XSD)),
}


def bind_prefixes(graph: Graph) -> Graph:
    """Bind every prefix of ``PREFIXES`` on ``graph`` (replacing rdflib's defaults, whose
    ``schema:`` is https) and return the graph, so serialisations read the same everywhere."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True, replace=True)
    return graph


def new_graph() -> Graph:
    """An empty graph with only our prefixes bound."""
    return bind_prefixes(Graph(bind_namespaces="none"))
