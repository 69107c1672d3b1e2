"""Choosing the EXI codec the SECC runs with: ours by default, the package's Java one on request."""

from __future__ import annotations

CODECS = ("native", "java")


def make_exi_codec(kind: str = "native", *, preload: bool = True, cache_dir: str | None = None):
    """An iso15118 IEXICodec: "native" (pure Python, no JVM) or "java" (the package's EXIficient jar).

    preload builds every schema's grammars now, so the first message of a session pays nothing.
    """
    if kind == "native":
        from .codec import NativeEXICodec

        return NativeEXICodec(preload=preload, cache_dir=cache_dir)
    if kind == "java":
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        return ExificientEXICodec()
    raise ValueError(f"unknown EXI codec {kind!r}; choose one of {', '.join(CODECS)}")
