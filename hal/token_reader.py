"""The token reader contract: RFID cards, key codes and other identification tokens."""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import AsyncIterator, ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


@dataclass(frozen=True)
class TokenPresented:
    id_token: str
    #: OCPP IdTokenEnumType value: ISO14443, ISO15693, KeyCode, Local, MacAddress, NoAuthorization, ...
    token_type: str = "ISO14443"
    #: The EVSE the reader belongs to; None for a station-wide reader.
    evse_id: int | None = None


class TokenReader(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context
        self._queue: asyncio.Queue[TokenPresented] = asyncio.Queue()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def tokens(self) -> AsyncIterator[TokenPresented]:
        while True:
            yield await self._queue.get()

    def _emit(self, token: TokenPresented) -> None:
        self._queue.put_nowait(token)
