"""Native (pure Python) schema-informed EXI codec for the V2G messages (issue 6)."""

from .codec import NativeEXICodec
from .errors import EXICodecError
from .select import CODECS, make_exi_codec

__all__ = ["CODECS", "EXICodecError", "NativeEXICodec", "make_exi_codec"]
