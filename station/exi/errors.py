"""The one exception type the EXI codec raises for bad input."""

from __future__ import annotations


class EXICodecError(ValueError):
    """Bad input to the codec: undecodable EXI bytes or JSON that does not fit the schema.

    `position` says where: a bit offset into the EXI stream when decoding, a JSON path
    (e.g. "V2G_Message.Body.CurrentDemandReq.EVTargetCurrent") when encoding.
    """

    def __init__(self, reason: str, position: object = None, namespace: str = ""):
        self.reason = reason
        self.position = position
        self.namespace = namespace
        where = ""
        if isinstance(position, int):
            where = f" at bit {position}"
        elif position:
            where = f" at {position}"
        super().__init__(f"{reason}{where}" + (f" (schema {namespace})" if namespace else ""))
