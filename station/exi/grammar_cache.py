"""Which XSD serves which namespace, and building/caching its grammars."""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from dataclasses import dataclass, field
from typing import Optional

from .errors import EXICodecError
from .grammar import DocGrammar, GrammarBuilder, Prod, State, TypeGrammar
from .xsd import SchemaSet

CODE_VERSION = "2"  # bump when the grammar objects change shape

# namespace -> root XSD, relative to iso15118/shared/schemas (the jar's mapping)
NAMESPACES = {
    "urn:iso:15118:2:2010:AppProtocol": "V2G_CI_AppProtocol.xsd",
    "urn:din:70121:2012:MsgDef": "din_spec/V2G_CI_MsgDef.xsd",
    "urn:iso:15118:2:2013:MsgDef": "iso15118_2/V2G_CI_MsgDef.xsd",
    "urn:iso:std:iso:15118:-20:CommonMessages": "iso15118_20/V2G_CI_CommonMessages.xsd",
    "urn:iso:std:iso:15118:-20:AC": "iso15118_20/V2G_CI_AC.xsd",
    "urn:iso:std:iso:15118:-20:DC": "iso15118_20/V2G_CI_DC.xsd",
    "urn:iso:std:iso:15118:-20:WPT": "iso15118_20/V2G_CI_WPT.xsd",
    "urn:iso:std:iso:15118:-20:ACDP": "iso15118_20/V2G_CI_ACDP.xsd",
    "http://www.w3.org/2000/09/xmldsig#": "xmldsig-core-schema.xsd",
}
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
# Roots the Java codec encodes as EXI fragments (the parts the V2G signatures are computed
# over), and the JSON root names it renames first; from its AbstractEXICodec.
FRAGMENT_ROOTS = {
    "urn:iso:15118:2:2013:MsgDef": frozenset({
        "ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID",
        "SalesTariff", "CertificateInstallationReq", "AuthorizationReq", "MeteringReceiptReq", "SignedInfo"}),
    "urn:iso:std:iso:15118:-20:CommonMessages": frozenset({
        "OEMProvisioningCertificateChain", "PnC_AReqAuthorizationMode"}),
}
ROOT_ALIASES = {
    "urn:iso:15118:2:2013:MsgDef": {"CertificateChain": "ContractSignatureCertChain",
                                    "DiffieHellmanPublickey": "DHpublickey", "EMAID": "eMAID"},
    "urn:iso:std:iso:15118:-20:CommonMessages": {"SignedCertificateChain": "OEMProvisioningCertificateChain",
                                                 "PnCAReqAuthorizationMode": "PnC_AReqAuthorizationMode"},
}
XMLDSIG_XSD = "xmldsig-core-schema.xsd"


@dataclass
class SchemaGrammars:
    namespace: str
    document: DocGrammar
    fragment: Optional[DocGrammar] = None
    fragment_roots: frozenset = field(default_factory=frozenset)
    always_fragment: bool = False
    root_aliases: dict = field(default_factory=dict)


def schema_dir() -> str:
    try:
        import iso15118.shared.schemas as schemas
    except ImportError:  # pragma: no cover
        raise EXICodecError("the iso15118 package (which ships the V2G XSDs) is not installed") from None
    return os.path.dirname(schemas.__file__)


@functools.lru_cache(maxsize=4)
def _xsd_digest(base: str) -> str:
    h = hashlib.sha256(CODE_VERSION.encode())
    for dirpath, _dirs, files in sorted(os.walk(base)):
        for name in sorted(files):
            if name.endswith(".xsd"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.hexdigest()[:16]


def default_cache_dir() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "evstation", "exi")


def build(namespace: str) -> SchemaGrammars:
    if namespace not in NAMESPACES:
        raise EXICodecError(f"unknown schema namespace {namespace!r}; known: {', '.join(NAMESPACES)}")
    base = schema_dir()
    schema = SchemaSet(os.path.join(base, NAMESPACES[namespace]), os.path.join(base, XMLDSIG_XSD))
    builder = GrammarBuilder(schema)
    fragment = None
    if namespace in FRAGMENT_ROOTS or namespace == XMLDSIG_NS:
        fragment = builder.fragment(namespace)
    return _grammars(namespace, builder.document(namespace), fragment)


def _grammars(namespace: str, document: DocGrammar, fragment: Optional[DocGrammar]) -> SchemaGrammars:
    return SchemaGrammars(namespace, document, fragment, FRAGMENT_ROOTS.get(namespace, frozenset()),
                          namespace == XMLDSIG_NS, ROOT_ALIASES.get(namespace, {}))


def _flatten(doc: DocGrammar) -> dict:
    """Grammar graph -> flat tables (pickling the linked graph itself recurses too deep)."""
    states: dict[int, int] = {}
    types: dict[int, int] = {}
    state_list: list = []
    type_list: list = []

    def type_index(tg: TypeGrammar) -> int:
        if id(tg) not in types:
            types[id(tg)] = len(type_list)
            type_list.append(tg)
        return types[id(tg)]

    for _qn, tg in doc.elements:
        type_index(tg)
    i = 0
    while i < len(type_list):  # type_list grows while we walk
        todo = [type_list[i].start]
        while todo:
            st = todo.pop()
            if id(st) in states:
                continue
            states[id(st)] = len(state_list)
            state_list.append(st)
            for p in st.prods:
                if p.target is not None:
                    todo.append(p.target)
                if p.child is not None:
                    type_index(p.child)
        i += 1
    return {
        "doc": (doc.bits, [(qn, types[id(tg)]) for qn, tg in doc.elements], doc.by_key, doc.namespace),
        "types": [(t.name, t.qname, t.simple, t.order, t.list_keys, t.jar_defaults, states[id(t.start)])
                  for t in type_list],
        "states": [(st.bits, st.ee, st.by_key,
                    [(p.kind, p.qname, -1 if p.target is None else states[id(p.target)],
                      -1 if p.child is None else types[id(p.child)], p.dt) for p in st.prods])
                   for st in state_list],
    }


def _unflatten(tables: dict) -> DocGrammar:
    state_objs = [State() for _ in tables["states"]]
    type_objs = []
    for name, qname, simple, order, list_keys, jar_defaults, start in tables["types"]:
        tg = TypeGrammar(name, qname)
        tg.simple, tg.order, tg.list_keys, tg.jar_defaults = simple, order, list_keys, jar_defaults
        tg.start = state_objs[start]
        type_objs.append(tg)
    for st, (bits, ee, by_key, prods) in zip(state_objs, tables["states"]):
        st.bits, st.ee, st.by_key = bits, ee, by_key
        st.prods = [Prod(kind, qname, None if target < 0 else state_objs[target],
                         None if child < 0 else type_objs[child], dt)
                    for kind, qname, target, child, dt in prods]
    doc = DocGrammar()
    doc.bits, elements, doc.by_key, doc.namespace = tables["doc"]
    doc.elements = [(qn, type_objs[i]) for qn, i in elements]
    return doc


def load(namespace: str, cache_dir: Optional[str] = None) -> SchemaGrammars:
    """Grammars for one namespace: from the pickle cache if its XSD digest matches, else built."""
    if namespace not in NAMESPACES:
        raise EXICodecError(f"unknown schema namespace {namespace!r}; known: {', '.join(NAMESPACES)}")
    if cache_dir == "":
        return build(namespace)
    cache_dir = cache_dir or default_cache_dir()
    key = hashlib.sha256(namespace.encode()).hexdigest()[:12]
    path = os.path.join(cache_dir, f"{key}-{_xsd_digest(schema_dir())}.pickle")
    try:
        with open(path, "rb") as f:
            tables = pickle.load(f)
        if tables.get("namespace") == namespace:
            fragment = _unflatten(tables["fragment"]) if tables["fragment"] else None
            return _grammars(namespace, _unflatten(tables["document"]), fragment)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, KeyError, TypeError, ValueError):
        pass
    g = build(namespace)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump({"namespace": namespace, "document": _flatten(g.document),
                         "fragment": _flatten(g.fragment) if g.fragment else None}, f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs start-up time
    return g
