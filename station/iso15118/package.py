"""Loading the iso15118 package without letting it take over the process.

Importing it runs `logging.config.fileConfig`, which puts a DEBUG stdout handler on the root
logger and sets the root level from a `.env` in the working directory. We import it once, here,
and put the root logger back as it was; its own loggers get the level from our config.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading

_lock = threading.Lock()
_loaded = False

MODULES = (
    "iso15118.secc",
    "iso15118.secc.controller.interface",
    "iso15118.secc.secc_settings",
    "iso15118.shared.settings",
)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def load(log_level: str = "warning", modules: tuple[str, ...] = ()) -> None:
    """Import the package (once; `modules`: more of it, e.g. the EVCC) with the root logger untouched."""
    global _loaded
    with _lock:
        wanted = MODULES + modules
        if not _loaded or any(m not in sys.modules for m in wanted):
            root = logging.getLogger()
            handlers, level = list(root.handlers), root.level
            py4j_level = logging.getLogger("py4j").level
            try:
                for name in wanted:
                    importlib.import_module(name)
            finally:
                for handler in list(root.handlers):
                    if handler not in handlers:
                        root.removeHandler(handler)
                for handler in handlers:
                    if handler not in root.handlers:
                        root.addHandler(handler)
                root.setLevel(level)
                logging.getLogger("py4j").setLevel(py4j_level or logging.WARNING)
            _loaded = True
        logging.getLogger("iso15118").setLevel(LEVELS[log_level])
