"""Simulated token reader (tokens come from `station sim token`), and the reader for "no reader"."""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra

from hal.driver import DriverContext
from hal.sim.world import SimWorld
from hal.token_reader import TokenPresented, TokenReader


class SimTokenReader(TokenReader):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.world = SimWorld.of(context)

    def _present(self, token: TokenPresented) -> None:
        self._emit(token)

    async def start(self) -> None:
        self.world.add_token_sink(self._present)

    async def stop(self) -> None:
        self.world.remove_token_sink(self._present)


class NoTokenReader(TokenReader):
    """No reader fitted: never presents a token."""

    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
