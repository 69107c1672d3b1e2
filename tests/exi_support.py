"""Shared by the EXI tests: the Java reference codec and schema-driven message strategies."""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil

import pytest
from hypothesis import strategies as st

from station.exi import grammar_cache
from station.exi.grammar import GrammarBuilder
from station.exi.xsd import ComplexType, ElementDecl, ModelGroup, SchemaSet, SimpleType, Wildcard

SAP = "urn:iso:15118:2:2010:AppProtocol"
DIN = "urn:din:70121:2012:MsgDef"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
V20 = "urn:iso:std:iso:15118:-20:"
SCHEMAS = list(grammar_cache.NAMESPACES)
SHORT = {SAP: "SAP", DIN: "DIN", ISO2: "ISO2"}


def short(namespace: str) -> str:
    return SHORT.get(namespace) or "20" + namespace.rsplit(":", 1)[1]


class JarCodec:
    """The package's EXIficient codec over py4j; started once per test session."""

    def __init__(self):
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        self._codec = ExificientEXICodec()

    def encode(self, message: str, namespace: str) -> bytes:
        from py4j.protocol import Py4JError

        try:
            out = self._codec.exi_codec.encode(message, namespace)
        except Py4JError as exc:
            raise RuntimeError(str(exc)) from None
        if out is None:
            raise RuntimeError(self._codec.exi_codec.get_last_encoding_error())
        return bytes(out)

    def decode(self, data: bytes, namespace: str) -> str:
        from py4j.protocol import Py4JError

        try:
            out = self._codec.exi_codec.decode(data, namespace)
        except Py4JError as exc:
            raise RuntimeError(str(exc)) from None
        if out is None:
            raise RuntimeError(self._codec.exi_codec.get_last_decoding_error())
        return out


@functools.lru_cache(maxsize=1)
def _jar():
    return JarCodec()


def jar_or_skip() -> JarCodec:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: the differential tests need the package's EXIficient jar")
    pytest.importorskip("py4j", reason="py4j (an iso15118 dependency) is needed to drive the jar")
    return _jar()


# -- message types per schema ----------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def schema(namespace: str) -> tuple[SchemaSet, GrammarBuilder]:
    base = grammar_cache.schema_dir()
    s = SchemaSet(os.path.join(base, grammar_cache.NAMESPACES[namespace]),
                  os.path.join(base, grammar_cache.XMLDSIG_XSD))
    return s, GrammarBuilder(s)


def message_types(namespace: str) -> list[str]:
    """Every message of a schema: body elements for DIN / -2, global Req/Res elements otherwise."""
    s, _ = schema(namespace)
    if namespace in (DIN, ISO2):
        heads = [q for q in s.substitutions if q[1] == "BodyElement"]
        return sorted(m[1] for m in s.substitutions[heads[0]])
    if namespace == SAP:
        return ["supportedAppProtocolReq", "supportedAppProtocolRes"]
    return sorted(q[1] for q, e in s.elements.items()
                  if q[0] == namespace and (q[1].endswith("Req") or q[1].endswith("Res")) and not e.abstract)


# -- schema-driven JSON strategies -------------------------------------------------------------
_TEXT = st.text(alphabet=st.sampled_from("abcdefghijkXYZ0123456789:-_.äé€"), min_size=1, max_size=12)


def _simple(t: SimpleType):
    if t.enumeration:
        return st.sampled_from(t.enumeration)
    b = t.builtin
    if b == "ID":  # an NCName; JAXB resolves IDs, so keep them plain
        return st.integers(0, 999).map(lambda i: f"id{i}")
    if b == "boolean":
        return st.booleans()
    if b == "hexBinary":
        return st.binary(min_size=1, max_size=12).map(lambda d: d.hex().upper())
    if b == "base64Binary":
        return st.binary(min_size=1, max_size=24).map(lambda d: base64.b64encode(d).decode())
    if t.min_inclusive is not None or t.max_inclusive is not None or b.endswith("nteger"):
        lo = t.min_inclusive if t.min_inclusive is not None else -(2**63)
        hi = t.max_inclusive if t.max_inclusive is not None else 2**63 - 1
        return st.one_of(st.integers(lo, hi), st.sampled_from(sorted({lo, hi, max(lo, min(hi, 0))})))
    return _TEXT


@st.composite
def element_value(draw, t, force_body: str | None = None):
    if isinstance(t, SimpleType):
        return draw(_simple(t))
    obj: dict = {}
    for a in t.attributes:
        if a.required or draw(st.booleans()):
            # JAXB resolves "Id" attributes as XML IDs in some schemas: keep them NCNames
            strategy = _simple(a.type) if a.name[1] != "Id" else st.integers(0, 999).map(lambda i: f"id{i}")
            obj[a.name[1]] = draw(strategy)
    if t.simple_content is not None:
        obj["value"] = draw(_simple(t.simple_content))
    if t.particle is not None and not t.mixed:  # xmldsig mixed content: attributes only
        _particle(draw, t.particle, obj, force_body)
    return obj


def _members(decl: ElementDecl, s: SchemaSet) -> list[ElementDecl]:
    out, todo = [], [decl]
    while todo:
        d = todo.pop()
        t = d.type
        generatable = not (isinstance(t, ComplexType) and (t.abstract or (t.mixed and _needs_content(t.particle))))
        if not d.abstract and generatable and d.name[1] not in _SKIP[0]:
            out.append(d)
        if d.is_global:
            todo += [s.elements[m] for m in s.substitutions.get(d.name, ())]
    return sorted(out, key=lambda d: d.name[1])


def _needs_content(p) -> bool:
    if p is None or p.min == 0:
        return False
    t = p.term
    if isinstance(t, ModelGroup):
        results = [_needs_content(q) for q in t.particles]
        return any(results) if t.kind == "sequence" else all(results)
    return True


def _particle(draw, p, obj: dict, force_body) -> None:
    hi = p.max if p.max is not None else p.min + 2
    n = draw(st.integers(p.min, min(hi, p.min + 2)))
    t = p.term
    if force_body is not None and isinstance(t, ElementDecl) and t.name[1] == "BodyElement":
        n = 1
    for _ in range(n):
        if isinstance(t, Wildcard):
            continue  # wildcard content is not generated
        if isinstance(t, ModelGroup):
            if t.kind == "choice":
                _particle(draw, draw(st.sampled_from(t.particles)), obj, force_body)
            else:
                for q in t.particles:
                    _particle(draw, q, obj, force_body)
            continue
        members = _members(t, _CURRENT[0])
        if force_body is not None and t.name[1] == "BodyElement":
            members = [m for m in members if m.name[1] == force_body]
        if not members:
            continue
        d = draw(st.sampled_from(members))
        value = draw(element_value(d.type, force_body))
        key = d.name[1]
        if p.max is None or p.max > 1 or key in obj:
            obj.setdefault(key, [])
            if not isinstance(obj[key], list):
                obj[key] = [obj[key]]
            obj[key].append(value)
        else:
            obj[key] = value


_CURRENT: list = [None]
_SKIP: list = [()]
# The jar cannot handle base64Binary in DIN messages on Java 17 (its JAXB needs javax.mail),
# so DIN headers are generated without a Signature.
SKIP_ELEMENTS = {DIN: ("Signature",)}


def fix_lists(obj, tg):
    """Arrays exactly where the grammar says an element repeats (the JAXB List fields)."""
    if tg.simple is not None or not isinstance(obj, dict):
        return obj
    out = {}
    state_children = _child_grammars(tg)
    for k, v in obj.items():
        child = state_children.get(k)
        items = v if isinstance(v, list) else [v]
        items = [fix_lists(i, child) if child is not None else i for i in items]
        out[k] = items if k in tg.list_keys else items[0]
    return out


@functools.lru_cache(maxsize=None)
def _child_grammars(tg) -> dict:
    found, todo, seen = {}, [tg.start], set()
    while todo:
        s = todo.pop()
        if id(s) in seen:
            continue
        seen.add(id(s))
        for p in s.prods:
            if p.child is not None:
                found.setdefault(p.key, p.child)
            if p.target is not None:
                todo.append(p.target)
    return found


def message_strategy(namespace: str, msg_type: str):
    """JSON text (the package's dialect) for one message type, valid against the XSD."""
    s, builder = schema(namespace)
    doc = grammar_cache.build(namespace).document
    if namespace in (DIN, ISO2):
        root = "V2G_Message"
    else:
        root = msg_type
    qn = doc.elements[doc.by_key[root]][0]
    decl = s.elements[qn]
    tg = builder.type_grammar(decl.type, qn)

    @st.composite
    def strat(draw):
        _CURRENT[0] = s
        _SKIP[0] = SKIP_ELEMENTS.get(namespace, ())
        body = draw(element_value(decl.type, msg_type if root == "V2G_Message" else None))
        return json.dumps({root: fix_lists(body, tg)})

    return strat()


FRAGMENTS = {
    ISO2: ["AuthorizationReq", "CertificateInstallationReq", "ContractSignatureCertChain",
           "ContractSignatureEncryptedPrivateKey", "DHpublickey", "MeteringReceiptReq", "SalesTariff", "eMAID"],
    V20 + "CommonMessages": ["OEMProvisioningCertificateChain", "PnC_AReqAuthorizationMode"],
    grammar_cache.XMLDSIG_NS: ["SignedInfo"],
}


def fragment_strategy(namespace: str, root: str):
    """JSON for a signed fragment (an element encoded on its own, as the signatures need)."""
    s, builder = schema(namespace)
    decls = [d for d in list(s.elements.values()) + s.local_elements if d.name[1] == root]
    decl = max(decls, key=lambda d: len(getattr(d.type, "attributes", ())))  # eMAID: the {Id, value} form
    tg = builder.type_grammar(decl.type, decl.name)

    @st.composite
    def strat(draw):
        _CURRENT[0] = s
        _SKIP[0] = ()
        return json.dumps({root: fix_lists(draw(element_value(decl.type)), tg)})

    return strat()


def signed_info_strategy():
    """SignedInfo as the package builds it (the jar fills in the algorithm URIs itself)."""
    c14n = "http://www.w3.org/TR/canonical-exi/"
    reference = st.builds(
        lambda i, digest: {"URI": f"#id{i}",  # the jar drops a Reference Id
                           "Transforms": {"Transform": [{"Algorithm": c14n}]},
                           "DigestMethod": {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha256"},
                           "DigestValue": base64.b64encode(digest).decode()},
        st.integers(0, 99), st.binary(min_size=32, max_size=32))
    return st.lists(reference, min_size=1, max_size=4).map(lambda refs: json.dumps({"SignedInfo": {
        "CanonicalizationMethod": {"Algorithm": c14n},
        "SignatureMethod": {"Algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
        "Reference": refs}}))


GENERATED_GRAMMARS = {V20 + "WPT": "ISO15118_20_V2G_CI_WPT", V20 + "ACDP": "ISO15118_20_V2G_CI_ACDP"}


def jar_decode_xml(jar: JarCodec, data: bytes, namespace: str) -> str:
    """EXI -> XML with the jar's EXIficient core and its built-in grammar, bypassing JAXB.

    The jar has grammars but no JSON binding for ISO 15118-20 WPT and ACDP; this still lets
    its EXI decoder judge our bytes.
    """
    jvm = jar._codec.gateway.jvm
    factory = jvm.com.siemens.ct.exi.core.helpers.DefaultEXIFactory.newInstance()
    grammar = getattr(jvm.com.siemens.ct.exi.main.generatedgrammar, GENERATED_GRAMMARS[namespace])
    factory.setGrammars(grammar())
    source = jvm.com.siemens.ct.exi.main.api.sax.EXISource(factory)
    sax = jvm.javax.xml.transform.sax.SAXSource(
        source.getXMLReader(), jvm.org.xml.sax.InputSource(jvm.java.io.ByteArrayInputStream(data)))
    out = jvm.java.io.StringWriter()
    jvm.javax.xml.transform.TransformerFactory.newInstance().newTransformer().transform(
        sax, jvm.javax.xml.transform.stream.StreamResult(out))
    return out.toString()


def xml_items(xml_text: str) -> list:
    """(path, text) for every element and attribute, in document order."""
    import xml.etree.ElementTree as ET

    out = []

    def walk(el, path):
        path = f"{path}/{el.tag.rpartition('}')[2]}"
        for name, value in sorted(el.attrib.items(), key=lambda kv: kv[0].rpartition("}")[2]):
            out.append((f"{path}@{name.rpartition('}')[2]}", value))
        text = (el.text or "").strip()
        if text:
            out.append((path, text))
        for child in el:
            walk(child, path)

    walk(ET.fromstring(xml_text), "")
    return out


def json_items(message: dict, attributes: set) -> list:
    """The same (path, text) list from our JSON dialect; `attributes` names the attribute keys."""
    out = []

    def text(v):
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    def walk(key, value, path):
        path = f"{path}/{key}"
        if isinstance(value, dict):
            for k, v in value.items():
                if k in attributes:
                    out.append((f"{path}@{k}", text(v)))
            if "value" in value:
                out.append((path, text(value["value"])))
            for k, v in value.items():
                if k not in attributes and k != "value":
                    for item in v if isinstance(v, list) else [v]:
                        walk(k, item, path)
        elif value != "":
            out.append((path, text(value)))

    (root, body), = message.items()
    walk(root, body, "")
    return out


@functools.lru_cache(maxsize=None)
def attribute_names(namespace: str) -> frozenset:
    s, _ = schema(namespace)
    names = set()
    for t in list(s.types.values()) + [e.type for e in list(s.elements.values()) + s.local_elements]:
        if isinstance(t, ComplexType):
            names.update(a.name[1] for a in t.attributes)
    return frozenset(names)
