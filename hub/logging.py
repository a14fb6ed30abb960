"""Structured logs: one JSON object a line, with the request or job id bound in context."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from hub.settings import Settings

# Keys whose values never reach a log line, whatever a caller passes.
_SECRET_KEYS = re.compile(r"(secret|password|token|authorization|api_key|apikey|private_key)", re.I)

_configured: tuple[str, str] | None = None


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library (uvicorn, arq) to write the same format."""
    global _configured
    wanted = (settings.log_level.upper(), settings.log_format)
    if _configured == wanted:
        return
    _configured = wanted
    level = logging.getLevelNamesMapping().get(wanted[0], logging.INFO)
    renderer: Any = (structlog.dev.ConsoleRenderer() if settings.log_format == "console"
                     else structlog.processors.JSONRenderer())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's access log repeats what our request log line says, with less context.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # arq logs every job start and finish at INFO, the outbox relay cron included; Hub logs
    # retries and failures itself, so arq's lines only show at DEBUG.
    logging.getLogger("arq.worker").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    # The HTTP/2 libraries log whole header blocks at DEBUG (bearer tokens, provider tokens);
    # httpx logs every request URL at INFO (APNs URLs hold device tokens). Secrets are never logged.
    for name in ("hpack", "h2", "httpcore", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
