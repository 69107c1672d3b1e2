"""NativeEXICodec: the iso15118 package's IEXICodec without a JVM.

`encode(json_str, namespace)` and `decode(bytes, namespace)` speak the same JSON
dialect as the package's bundled Java codec (EXIficient + JAXB/MOXy): one root
key, element local names as keys, arrays for repeatable elements, attributes by
local name, "value" for simple content, hexBinary as upper-case hex, base64Binary
as base64. Grammars come from the XSDs shipped in the iso15118 package; they are
built on first use of a namespace and cached (memory, and a pickle on disk).
"""

from __future__ import annotations

import gc
import json
import threading

from . import grammar_cache
from .decoder import decode_document
from .encoder import encode_document
from .errors import EXICodecError

try:  # the package is optional at import time; the interface is tiny
    from iso15118.shared.iexi_codec import IEXICodec as _Base
except ImportError:  # pragma: no cover - exercised only without iso15118
    _Base = object

VERSION = "station-native-exi 1.0"


class NativeEXICodec(_Base):
    def __init__(self, preload: bool = False, cache_dir: str | None = None, jar_compat: bool = False,
                 freeze_gc: bool = True):
        """preload: build every schema's grammars now rather than at first use.
        cache_dir: where grammar pickles live ("" = no disk cache, None = ~/.cache/evstation/exi).
        jar_compat: reproduce the Java codec's one quirk bit for bit: four optional integer
        elements (see grammar.JAR_PRIMITIVE_DEFAULTS) are sent as 0 when absent.
        freeze_gc: after loading grammars, move the objects alive then out of the cyclic garbage
        collector (gc.freeze): the grammars are ~60 000 long-lived objects and a full collection
        walking them costs 5-30 ms, which would show up as p99 latency of whatever message runs then.
        """
        self._freeze = freeze_gc
        self._cache_dir = cache_dir
        self._compat = jar_compat
        self._lock = threading.Lock()
        self._grammars: dict[str, grammar_cache.SchemaGrammars] = {}
        if preload:
            for ns in grammar_cache.NAMESPACES:
                self.grammars(ns)

    def grammars(self, namespace: str) -> "grammar_cache.SchemaGrammars":
        g = self._grammars.get(namespace)
        if g is None:
            with self._lock:
                g = self._grammars.get(namespace)
                if g is None:
                    g = grammar_cache.load(namespace, self._cache_dir)
                    self._grammars[namespace] = g
                    if self._freeze:
                        gc.freeze()
        return g

    def encode(self, message: str, namespace: str) -> bytes:
        g = self.grammars(namespace)
        try:
            obj = json.loads(message)
        except (TypeError, ValueError) as exc:
            raise EXICodecError(f"invalid JSON: {exc}", "$", namespace) from None
        fragment = g.fragment if g.always_fragment else None
        if isinstance(obj, dict) and len(obj) == 1 and (g.fragment_roots or g.root_aliases):
            (root, body), = obj.items()
            if root in g.root_aliases:
                root = g.root_aliases[root]
                obj = {root: body}
            if root in g.fragment_roots:
                fragment = g.fragment
        try:
            return encode_document(g.document, obj, fragment, self._compat)
        except EXICodecError as exc:
            exc.namespace = namespace
            raise
        except RecursionError:
            raise EXICodecError("JSON nested too deeply", "$", namespace) from None

    def decode(self, stream: bytes, namespace: str, fragment: bool = False) -> str:
        """fragment=True reads a signed part encoded on its own (the Java codec never decodes those)."""
        g = self.grammars(namespace)
        if fragment and g.fragment is None:
            raise EXICodecError("this schema has no fragments", 0, namespace)
        try:
            obj = decode_document(g.document, stream, g.fragment if fragment or g.always_fragment else None,
                                  self._compat)
        except EXICodecError as exc:
            exc.namespace = namespace
            raise
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)

    def get_version(self) -> str:
        return VERSION
