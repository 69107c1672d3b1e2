"""A small XML Schema reader: just the subset the V2G XSDs use.

It turns a root XSD (and everything it imports) into plain objects that the
EXI grammar builder consumes: global elements, named types, substitution groups.
Names are (namespace, local) tuples.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional, Union

XS = "http://www.w3.org/2001/XMLSchema"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
QName = tuple[str, str]


@dataclass
class SimpleType:
    name: Optional[QName]
    builtin: str  # the XSD built-in primitive/derived name it comes from, e.g. "unsignedByte"
    enumeration: list[str] = field(default_factory=list)
    min_inclusive: Optional[int] = None
    max_inclusive: Optional[int] = None


@dataclass
class AttributeUse:
    name: QName
    type: SimpleType
    required: bool


@dataclass
class Wildcard:
    namespaces: Optional[list[str]]  # None = any namespace
    process: str = "strict"


@dataclass
class ElementDecl:
    name: QName
    type: Union["ComplexType", SimpleType, None] = None
    abstract: bool = False
    substitution_group: Optional[QName] = None
    is_global: bool = False


@dataclass
class Particle:
    min: int
    max: Optional[int]  # None = unbounded
    term: Union[ElementDecl, "ModelGroup", Wildcard]


@dataclass
class ModelGroup:
    kind: str  # "sequence" | "choice" | "all"
    particles: list[Particle]


@dataclass
class ComplexType:
    name: Optional[QName]
    attributes: list[AttributeUse] = field(default_factory=list)
    attribute_wildcard: Optional[Wildcard] = None
    simple_content: Optional[SimpleType] = None
    particle: Optional[Particle] = None
    mixed: bool = False
    abstract: bool = False


class SchemaError(Exception):
    """The XSD uses a construct this reader does not understand."""


INTEGER_BOUNDS = {
    "byte": (-128, 127), "short": (-(2**15), 2**15 - 1), "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1), "unsignedByte": (0, 255), "unsignedShort": (0, 2**16 - 1),
    "unsignedInt": (0, 2**32 - 1), "unsignedLong": (0, 2**64 - 1), "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None), "negativeInteger": (None, -1), "nonPositiveInteger": (None, 0),
    "integer": (None, None),
}
STRING_TYPES = {"string", "anyURI", "ID", "IDREF", "NCName", "Name", "token", "normalizedString",
                "language", "NMTOKEN", "anySimpleType"}
BUILTINS = set(INTEGER_BOUNDS) | STRING_TYPES | {"boolean", "hexBinary", "base64Binary"}


class SchemaSet:
    """All declarations reachable from one root XSD."""

    def __init__(self, root_xsd: str, xmldsig_xsd: str):
        self.elements: dict[QName, ElementDecl] = {}
        self.types: dict[QName, Union[ComplexType, SimpleType]] = {}
        self._xmldsig = xmldsig_xsd
        self._docs: list[tuple[ET.Element, dict[str, str], str]] = []
        self._loaded: set[str] = set()
        self._load(os.path.abspath(root_xsd))
        self._raw_types: dict[QName, tuple[ET.Element, dict, str]] = {}
        self._raw_elements: dict[QName, tuple[ET.Element, dict, str]] = {}
        for root, nsmap, tns in self._docs:
            for child in root:
                name = child.get("name")
                if child.tag in (f"{{{XS}}}complexType", f"{{{XS}}}simpleType"):
                    self._raw_types[(tns, name)] = (child, nsmap, tns)
                elif child.tag == f"{{{XS}}}element":
                    self._raw_elements[(tns, name)] = (child, nsmap, tns)
        self._resolving: set[QName] = set()
        self.local_elements: list[ElementDecl] = []  # every local declaration (fragment grammars)
        for qn in self._raw_elements:
            self.global_element(qn)
        for qn in self._raw_types:  # types no element uses still declare elements
            self.named_type(qn)
        self.substitutions: dict[QName, list[QName]] = {}
        for el in self.elements.values():
            if el.substitution_group:
                self.substitutions.setdefault(el.substitution_group, []).append(el.name)

    # -- loading -------------------------------------------------------------------------
    def _load(self, path: str) -> None:
        if path in self._loaded:
            return
        self._loaded.add(path)
        nsmap: dict[str, str] = {}
        root = None
        for event, item in ET.iterparse(path, events=("start-ns", "start")):
            if event == "start-ns":
                nsmap.setdefault(item[0], item[1])
            elif root is None:
                root = item
        assert root is not None
        tns = root.get("targetNamespace", "")
        root.attrib["__qualified"] = root.get("elementFormDefault", "unqualified")
        root.attrib["__attr_qualified"] = root.get("attributeFormDefault", "unqualified")
        self._docs.append((root, nsmap, tns))
        for imp in root.findall(f"{{{XS}}}import") + root.findall(f"{{{XS}}}include"):
            if imp.get("namespace") == XMLDSIG:
                self._load(os.path.abspath(self._xmldsig))
            else:
                self._load(os.path.normpath(os.path.join(os.path.dirname(path), imp.get("schemaLocation"))))

    def _doc_for(self, tns: str) -> ET.Element:
        for root, _nsmap, t in self._docs:
            if t == tns:
                return root
        raise SchemaError(f"no schema for namespace {tns}")

    @staticmethod
    def _qname(value: str, nsmap: dict[str, str]) -> QName:
        prefix, _, local = value.rpartition(":")
        return (nsmap.get(prefix, ""), local)

    # -- declarations --------------------------------------------------------------------
    def global_element(self, qn: QName) -> ElementDecl:
        if qn in self.elements:
            return self.elements[qn]
        if qn not in self._raw_elements:
            raise SchemaError(f"unknown element {qn}")
        node, nsmap, tns = self._raw_elements[qn]
        decl = ElementDecl(qn, is_global=True, abstract=node.get("abstract") == "true")
        self.elements[qn] = decl
        if node.get("substitutionGroup"):
            decl.substitution_group = self._qname(node.get("substitutionGroup"), nsmap)
        decl.type = self._element_type(node, nsmap, tns)
        return decl

    def _element_type(self, node: ET.Element, nsmap: dict, tns: str):
        if node.get("type"):
            return self.named_type(self._qname(node.get("type"), nsmap))
        for child in node:
            if child.tag == f"{{{XS}}}complexType":
                return self._complex_type(child, nsmap, tns, None)
            if child.tag == f"{{{XS}}}simpleType":
                return self._simple_type(child, nsmap, None)
        if node.get("substitutionGroup"):  # XSD: defaults to the head's type
            return self.global_element(self._qname(node.get("substitutionGroup"), nsmap)).type
        return ComplexType(None, mixed=True, particle=Particle(0, None, Wildcard(None, "lax")),
                           attribute_wildcard=Wildcard(None, "lax"))  # xs:anyType

    def named_type(self, qn: QName):
        if qn in self.types:
            return self.types[qn]
        if qn[0] == XS:
            if qn[1] not in BUILTINS:
                raise SchemaError(f"unsupported built-in type xs:{qn[1]}")
            st = SimpleType(qn, qn[1])
            lo_hi = INTEGER_BOUNDS.get(qn[1])
            if lo_hi:
                st.min_inclusive, st.max_inclusive = lo_hi
            self.types[qn] = st
            return st
        if qn not in self._raw_types:
            raise SchemaError(f"unknown type {qn}")
        node, nsmap, tns = self._raw_types[qn]
        if qn in self._resolving:
            raise SchemaError(f"recursive type {qn}")
        self._resolving.add(qn)
        if node.tag == f"{{{XS}}}simpleType":
            t = self._simple_type(node, nsmap, qn)
        else:
            t = self._complex_type(node, nsmap, tns, qn)
        self._resolving.discard(qn)
        self.types[qn] = t
        return t

    def _simple_type(self, node: ET.Element, nsmap: dict, qn: Optional[QName]) -> SimpleType:
        restr = node.find(f"{{{XS}}}restriction")
        if restr is None:
            raise SchemaError(f"simple type {qn}: only restrictions are supported")
        if restr.get("base"):
            base = self.named_type(self._qname(restr.get("base"), nsmap))
        else:
            base = self._simple_type(restr.find(f"{{{XS}}}simpleType"), nsmap, None)
        st = SimpleType(qn, base.builtin, list(base.enumeration), base.min_inclusive, base.max_inclusive)
        enums = [f.get("value") for f in restr.findall(f"{{{XS}}}enumeration")]
        if enums:
            st.enumeration = enums
        for facet in restr:
            tag = facet.tag.rpartition("}")[2]
            if tag == "minInclusive":
                st.min_inclusive = int(facet.get("value"))
            elif tag == "maxInclusive":
                st.max_inclusive = int(facet.get("value"))
            elif tag == "minExclusive":
                st.min_inclusive = int(facet.get("value")) + 1
            elif tag == "maxExclusive":
                st.max_inclusive = int(facet.get("value")) - 1
            elif tag in ("pattern",):
                raise SchemaError(f"simple type {qn}: pattern facets are not supported")
        return st

    def _complex_type(self, node: ET.Element, nsmap: dict, tns: str, qn: Optional[QName]) -> ComplexType:
        ct = ComplexType(qn, mixed=node.get("mixed") == "true", abstract=node.get("abstract") == "true")
        body = node
        for child in node:
            tag = child.tag.rpartition("}")[2]
            if tag in ("simpleContent", "complexContent"):
                if child.get("mixed") == "true":
                    ct.mixed = True
                deriv = child[0] if len(child) else None
                if deriv is None:
                    raise SchemaError(f"type {qn}: empty {tag}")
                dtag = deriv.tag.rpartition("}")[2]
                base = self.named_type(self._qname(deriv.get("base"), nsmap))
                if tag == "simpleContent":
                    if isinstance(base, SimpleType):
                        ct.simple_content = base
                    else:
                        ct.simple_content = base.simple_content
                        ct.attributes = list(base.attributes)
                    if dtag == "restriction":
                        raise SchemaError(f"type {qn}: simpleContent restriction not supported")
                elif dtag == "extension":
                    if isinstance(base, SimpleType) or base.simple_content:
                        raise SchemaError(f"type {qn}: complex extension of simple type")
                    ct.attributes = list(base.attributes)
                    ct.attribute_wildcard = base.attribute_wildcard
                    ct.mixed = ct.mixed or base.mixed
                    own = self._content_particle(deriv, nsmap, tns)
                    parts = [p for p in (base.particle, own) if p is not None]
                    if len(parts) == 2:
                        ct.particle = Particle(1, 1, ModelGroup("sequence", parts))
                    elif parts:
                        ct.particle = parts[0]
                else:  # restriction: the derived type restates its content
                    ct.attributes = [a for a in base.attributes]
                    ct.particle = self._content_particle(deriv, nsmap, tns)
                body = deriv
                break
        else:
            ct.particle = self._content_particle(node, nsmap, tns)
        self._attributes(body, nsmap, tns, ct)
        return ct

    def _attributes(self, node: ET.Element, nsmap: dict, tns: str, ct: ComplexType) -> None:
        qualified = self._doc_for(tns).get("__attr_qualified") == "qualified"
        for child in node:
            tag = child.tag.rpartition("}")[2]
            if tag == "attribute":
                if child.get("ref"):
                    raise SchemaError("attribute references are not supported")
                form = child.get("form", "qualified" if qualified else "unqualified")
                name = (tns if form == "qualified" else "", child.get("name"))
                if child.get("type"):
                    st = self.named_type(self._qname(child.get("type"), nsmap))
                else:
                    inline = child.find(f"{{{XS}}}simpleType")
                    st = self._simple_type(inline, nsmap, None) if inline is not None else SimpleType(None, "string")
                ct.attributes = [a for a in ct.attributes if a.name != name]
                if child.get("use") != "prohibited":
                    ct.attributes.append(AttributeUse(name, st, child.get("use") == "required"))
            elif tag == "anyAttribute":
                ct.attribute_wildcard = self._wildcard(child, tns)
            elif tag == "attributeGroup":
                raise SchemaError("attribute groups are not supported")

    def _content_particle(self, node: ET.Element, nsmap: dict, tns: str) -> Optional[Particle]:
        for child in node:
            tag = child.tag.rpartition("}")[2]
            if tag in ("sequence", "choice", "all"):
                return self._particle(child, nsmap, tns)
            if tag == "group":
                raise SchemaError("model group references are not supported")
        return None

    def _particle(self, node: ET.Element, nsmap: dict, tns: str) -> Particle:
        tag = node.tag.rpartition("}")[2]
        lo = int(node.get("minOccurs", "1"))
        hi_s = node.get("maxOccurs", "1")
        hi = None if hi_s == "unbounded" else int(hi_s)
        if tag in ("sequence", "choice", "all"):
            parts = [self._particle(c, nsmap, tns) for c in node
                     if c.tag.rpartition("}")[2] in ("sequence", "choice", "all", "element", "any")]
            return Particle(lo, hi, ModelGroup(tag, parts))
        if tag == "any":
            return Particle(lo, hi, self._wildcard(node, tns))
        if node.get("ref"):
            return Particle(lo, hi, self.global_element(self._qname(node.get("ref"), nsmap)))
        qualified = self._doc_for(tns).get("__qualified") == "qualified"
        form = node.get("form", "qualified" if qualified else "unqualified")
        decl = ElementDecl((tns if form == "qualified" else "", node.get("name")))
        decl.type = self._element_type(node, nsmap, tns)
        self.local_elements.append(decl)
        return Particle(lo, hi, decl)

    @staticmethod
    def _wildcard(node: ET.Element, tns: str) -> Wildcard:
        ns = node.get("namespace", "##any")
        process = node.get("processContents", "strict")
        if ns == "##any":
            return Wildcard(None, process)
        if ns == "##other":  # EXI treats a "not" constraint like "any": SE(*)
            return Wildcard(None, process)
        out = []
        for token in ns.split():
            out.append({"##targetNamespace": tns, "##local": ""}.get(token, token))
        return Wildcard(out, process)
