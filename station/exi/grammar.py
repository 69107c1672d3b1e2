"""Schema-informed EXI grammars (W3C EXI 1.0, section 8.5) built from a SchemaSet.

The V2G profile: schema-informed, strict = false, nothing preserved. With strict
= false every element grammar state has second-level (undeclared) productions,
so a state with N declared productions uses ceil(log2(N + 1)) bits for its
first-level event code; the document grammar has SE(G_0..G_n-1), SE(*) and no
second level. We only ever emit declared (first-level) events and reject the
others when decoding.

Grammars are built per type (shared by every element of that type) in two
steps: a proto-grammar with epsilon transitions (the spec's EE-concatenation),
then normalisation by epsilon closure, then event-code assignment.
"""

from __future__ import annotations

from typing import Optional

from .datatypes import Datatype, datatype_for
from .xsd import ComplexType, ElementDecl, ModelGroup, Particle, QName, SchemaError, SchemaSet, SimpleType, Wildcard

# The Java codec maps these optional elements to primitive Java fields, so it encodes a 0
# when they are absent and decodes their absence as 0 (found with javap on EXICodec.jar;
# every other optional element is a nullable field). Applied only in jar-compatible mode.
_ISO2_DT = "urn:iso:15118:2:2013:MsgDataTypes"
JAR_PRIMITIVE_DEFAULTS = {
    ("urn:iso:15118:2:2010:AppProtocol", "supportedAppProtocolRes"): (("SchemaID", 0),),
    # SAIDType is 1..255: the jar then falls back to an untyped value; we only mirror the decode.
    ("urn:iso:15118:2:2013:MsgBody", "MeteringReceiptReqType"): (("SAScheduleTupleID", 0, "decode"),),
    (_ISO2_DT, "SalesTariffEntryType"): (("EPriceLevel", 0),),
    (_ISO2_DT, "SalesTariffType"): (("NumEPriceLevels", 0),),
}

# Production kinds.
AT, SE, SEW, EE, CH = range(5)


class Prod:
    __slots__ = ("kind", "qname", "target", "child", "dt", "key")

    def __init__(self, kind, qname, target, child, dt):
        self.kind = kind
        self.qname = qname
        self.target = target
        self.child = child  # TypeGrammar of the element (SE)
        self.dt = dt  # Datatype of the value (AT, CH); None for untyped (mixed) CH
        self.key = qname[1] if qname else ("value" if kind == CH else None)


class State:
    __slots__ = ("bits", "prods", "by_key", "ee")

    def __init__(self):
        self.bits = 0
        self.prods: list[Prod] = []
        self.by_key: dict[str, int] = {}  # JSON key (local name / "value") -> event code
        self.ee = -1  # event code of EE, -1 if the element cannot end here


class TypeGrammar:
    """The grammar of one element type plus what the JSON mapping needs."""

    __slots__ = ("name", "qname", "start", "simple", "order", "list_keys", "jar_defaults")

    def __init__(self, name: str, qname=None):
        self.name = name
        self.qname = qname
        self.jar_defaults: tuple = ()  # (key, value) the Java codec invents when the key is absent
        self.start: State = State()
        self.simple: Optional[Datatype] = None  # set for simple-typed elements (CH then EE)
        self.order: dict[str, int] = {}  # JSON key -> rank in schema order
        self.list_keys: frozenset = frozenset()  # keys that may repeat: JSON arrays


class DocGrammar:
    __slots__ = ("bits", "elements", "by_key", "namespace")

    def __init__(self):
        self.bits = 0
        self.elements: list[tuple[QName, TypeGrammar]] = []
        self.by_key: dict[str, int] = {}
        self.namespace = ""


class _Nfa:
    """Proto-grammar states: lists of (event, target); event None is epsilon."""

    def __init__(self):
        self.trans: list[list] = []

    def new(self, *trans) -> int:
        self.trans.append(list(trans))
        return len(self.trans) - 1


class GrammarBuilder:
    def __init__(self, schema: SchemaSet):
        self.schema = schema
        self._types: dict[int, TypeGrammar] = {}
        self._keep: list = []  # keeps type objects alive so their ids stay unique

    # -- public --------------------------------------------------------------------------
    def document(self, namespace: str) -> DocGrammar:
        doc = DocGrammar()
        doc.namespace = namespace
        names = sorted(self.schema.elements, key=lambda q: (q[1], q[0]))
        doc.bits = len(names).bit_length()  # n globals + SE(*), no second level
        for qn in names:
            decl = self.schema.elements[qn]
            doc.by_key.setdefault(qn[1], len(doc.elements))
            doc.elements.append((qn, self.type_grammar(decl.type, qn)))
        # A local name declared in several namespaces: prefer the schema's own.
        for i, (qn, _tg) in enumerate(doc.elements):
            if qn[0] == namespace:
                doc.by_key[qn[1]] = i
        return doc

    def fragment(self, namespace: str) -> DocGrammar:
        """Fragment grammar (EXI 8.5.2): SE(F_i) for every element declared anywhere, SE(*), ED.

        A name declared with several different types would need the relaxed element fragment
        grammar; the V2G signature fragments never use one, so such names are left out.
        """
        frag = DocGrammar()
        frag.namespace = namespace
        types: dict[QName, list] = {}
        for decl in list(self.schema.elements.values()) + self.schema.local_elements:
            seen = types.setdefault(decl.name, [])
            if all(t is not decl.type for t in seen):
                seen.append(decl.type)
        names = sorted(types, key=lambda q: (q[1], q[0]))
        frag.bits = (len(names) + 1).bit_length()  # n elements + SE(*) + ED
        relaxed: dict[QName, TypeGrammar] = {}
        for qn in names:
            if len(types[qn]) == 1:
                frag.elements.append((qn, self.type_grammar(types[qn][0], qn)))
            else:
                relaxed[qn] = TypeGrammar(qn[1], qn)
                frag.elements.append((qn, relaxed[qn]))
            frag.by_key.setdefault(qn[1], len(frag.elements) - 1)
        for i, (qn, _tg) in enumerate(frag.elements):
            if qn[0] == namespace:
                frag.by_key[qn[1]] = i
        if relaxed:
            self._relaxed(frag, relaxed, types)
        return frag

    def _relaxed(self, frag: DocGrammar, relaxed: dict, types: dict) -> None:
        """The relaxed element fragment grammar (EXI 8.5.3) of names declared with several types:
        any attribute of the schema, any element of the fragment grammar, untyped text."""
        attr_types: dict[QName, list] = {}
        for t in list(self.schema.types.values()) + [d.type for d in self.schema.local_elements]:
            for a in getattr(t, "attributes", ()):
                seen = attr_types.setdefault(a.name, [])
                if all(x is not a.type for x in seen):
                    seen.append(a.type)
        attrs = sorted(attr_types, key=lambda q: (q[1], q[0]))
        text = datatype_for(SimpleType(None, "string"))
        for qn, tg in relaxed.items():
            own = {a.name for t in types[qn] for a in getattr(t, "attributes", ())}
            s0, s1 = tg.start, State()
            s0.prods = [Prod(AT, a, s0, None, datatype_for(attr_types[a][0]) if len(attr_types[a]) == 1 else text)
                        for a in attrs]
            s0.prods.append(Prod(AT, ("*", "*"), s0, None, None))
            for state in (s0, s1):
                state.prods += [Prod(SE, q, s1, g, None) for q, g in frag.elements]
                state.prods += [Prod(SEW, ("*", "*"), s1, None, None), Prod(EE, None, None, None, None),
                                Prod(CH, None, s1, None, text)]
                state.bits = len(state.prods).bit_length()
                for code, p in enumerate(state.prods):
                    if p.kind == EE:
                        state.ee = code
                    elif p.kind != SEW and p.key not in state.by_key or (p.kind == AT and p.qname in own):
                        state.by_key[p.key] = code
            tg.order = {a[1]: i for i, a in enumerate(attrs)}
            tg.order["value"] = len(tg.order)
            for q, _g in frag.elements:
                tg.order.setdefault(q[1], len(tg.order))

    def type_grammar(self, t, element: Optional[QName] = None) -> TypeGrammar:
        tg = self._types.get(id(t))
        if tg is not None:
            return tg
        qname = t.name if t.name else element  # anonymous types go by their element's name
        tg = TypeGrammar(qname[1] if qname else "(anonymous)", qname)
        tg.jar_defaults = JAR_PRIMITIVE_DEFAULTS.get(qname, ())
        self._types[id(t)] = tg
        self._keep.append(t)
        if isinstance(t, SimpleType):
            tg.simple = datatype_for(t)
            end = State()
            end.bits, end.ee = 1, 0
            end.prods = [Prod(EE, None, None, None, None)]
            tg.start.bits = 1
            tg.start.prods = [Prod(CH, None, end, None, tg.simple)]
            tg.start.by_key = {"value": 0}
            return tg
        self._complex(t, tg)
        return tg

    # -- complex types -------------------------------------------------------------------
    def _complex(self, ct: ComplexType, tg: TypeGrammar) -> None:
        nfa = _Nfa()
        end = nfa.new((("EE",), None))
        first_content = len(nfa.trans)
        if ct.simple_content is not None:
            dt = datatype_for(ct.simple_content)
            content = nfa.new((("CH", dt), end))
        elif ct.particle is not None:
            content = self._particle(nfa, ct.particle, end)
        else:
            content = end
        if ct.mixed:
            for s in [end] + list(range(first_content, len(nfa.trans))):
                nfa.trans[s].append((("CH", None), s))
        nxt = content
        if ct.attribute_wildcard is not None:
            loop = nfa.new()
            nfa.trans[loop] += [(("ATW",), loop), (None, nxt)]
            nxt = loop
        for use in sorted(ct.attributes, key=lambda a: (a.name[1], a.name[0]), reverse=True):
            trans = [(("AT", use.name, datatype_for(use.type)), nxt)]
            if not use.required:
                trans.append((None, nxt))
            nxt = nfa.new(*trans)
        self._normalise(nfa, nxt, tg)
        attrs = sorted(ct.attributes, key=lambda a: (a.name[1], a.name[0]))  # AT event order
        order: dict[str, int] = {a.name[1]: i for i, a in enumerate(attrs)}
        counts: dict[str, int] = {}
        if ct.particle is not None:
            self._walk_names(ct.particle, 1, order, counts)
        if ct.simple_content is not None:
            order["value"] = len(order)
        tg.order = order
        tg.list_keys = frozenset(k for k, n in counts.items() if n > 1)

    def _members(self, decl: ElementDecl) -> list[ElementDecl]:
        """The element and its substitution group (transitively), sorted by name.

        EXIficient (and so the V2G reference streams) keeps abstract heads in the list.
        """
        out, todo, seen = [], [decl], set()
        while todo:
            d = todo.pop()
            if d.name in seen:
                continue
            seen.add(d.name)
            out.append(d)
            if d.is_global:
                todo += [self.schema.elements[m] for m in self.schema.substitutions.get(d.name, ())]
        return sorted(out, key=lambda d: (d.name[1], d.name[0]))

    def _walk_names(self, p: Particle, mult: int, order: dict, counts: dict) -> None:
        m = mult * (p.max if p.max is not None else 2)
        t = p.term
        if isinstance(t, ModelGroup):
            for q in t.particles:
                self._walk_names(q, m, order, counts)
        elif isinstance(t, ElementDecl):
            for d in self._members(t):
                order.setdefault(d.name[1], len(order))
                counts[d.name[1]] = counts.get(d.name[1], 0) + m

    def _particle(self, nfa: _Nfa, p: Particle, nxt: int) -> int:
        cur = nxt
        if p.max is None:
            loop = nfa.new()
            nfa.trans[loop] += [(None, self._term(nfa, p.term, loop)), (None, nxt)]
            cur = loop
        else:
            # Optional copies chain as (a, (a, ...)?)?: each may skip to the end.
            for _ in range(p.max - p.min):
                cur = nfa.new((None, self._term(nfa, p.term, cur)), (None, nxt))
        for _ in range(p.min):
            cur = self._term(nfa, p.term, cur)
        return cur

    def _term(self, nfa: _Nfa, t, nxt: int) -> int:
        if isinstance(t, ElementDecl):
            return nfa.new(*[(("SE", d), nxt) for d in self._members(t)])
        if isinstance(t, Wildcard):
            if t.namespaces is None:
                return nfa.new((("SEW", None), nxt))
            return nfa.new(*[(("SEW", ns), nxt) for ns in t.namespaces])
        if t.kind == "sequence":
            cur = nxt
            for q in reversed(t.particles):
                cur = self._particle(nfa, q, cur)
            return cur
        if t.kind == "choice":
            if not t.particles:
                return nxt
            return nfa.new(*[(None, self._particle(nfa, q, nxt)) for q in t.particles])
        raise SchemaError("xs:all model groups are not supported")

    # -- normalisation and event codes ---------------------------------------------------
    def _normalise(self, nfa: _Nfa, start: int, tg: TypeGrammar) -> None:
        states: dict[int, State] = {}
        todo = [start]
        states[start] = tg.start
        while todo:
            s = todo.pop()
            prods = self._closure(nfa, s)
            state = states[s]
            ordered = self._sort(prods)
            for ev, target in ordered:
                if target is not None and target not in states:
                    states[target] = State()
                    todo.append(target)
            for code, (ev, target) in enumerate(ordered):
                prod = self._prod(ev, states.get(target))
                state.prods.append(prod)
                key = prod.key if prod.kind != SEW else None
                if prod.kind == EE:
                    state.ee = code
                elif key is not None and key not in state.by_key:
                    state.by_key[key] = code
            state.bits = len(ordered).bit_length()

    @staticmethod
    def _closure(nfa: _Nfa, s: int) -> list:
        out, seen_ev, visited = [], {}, set()

        def visit(i):
            if i in visited:
                return
            visited.add(i)
            for ev, target in nfa.trans[i]:
                if ev is None:
                    visit(target)
                    continue
                k = ev[0]
                key = (k, id(ev[1])) if k == "SE" else (k, ev[1]) if k in ("AT", "SEW") else (k,)
                prev = seen_ev.get(key)
                if prev is None:
                    seen_ev[key] = target
                    out.append((ev, target))
                elif prev != target and ev[0] != "CH":
                    raise SchemaError(f"non-deterministic content model at {ev[0]} {ev[1:]}")

        visit(s)
        return out

    @staticmethod
    def _sort(prods: list) -> list:
        def rank(item):
            ev = item[0]
            k = ev[0]
            if k == "AT":
                return (0, ev[1][1], ev[1][0])
            if k == "ATW":
                return (2, "", "")
            if k == "SE":
                return (3, "", "")
            if k == "SEW":
                return (4, "", "")
            if k == "EE":
                return (6, "", "")
            return (7, "", "")

        return sorted(prods, key=rank)  # stable: SE keep schema order

    def _prod(self, ev, target: Optional[State]) -> Prod:
        k = ev[0]
        if k == "AT":
            return Prod(AT, ev[1], target, None, ev[2])
        if k == "SE":
            decl: ElementDecl = ev[1]
            return Prod(SE, decl.name, target, self.type_grammar(decl.type, decl.name), None)
        if k == "SEW":
            return Prod(SEW, (ev[1] or "*", "*"), target, None, None)
        if k == "EE":
            return Prod(EE, None, None, None, None)
        if k == "ATW":
            return Prod(AT, ("*", "*"), target, None, None)
        return Prod(CH, None, target, None, ev[1])
