"""Settings of the list_upload plugin, read from ``HUB_LIST_UPLOAD_*`` (or ``[hub.list_upload]``)."""

from __future__ import annotations

import msgspec


class ListUploadSettings(msgspec.Struct, kw_only=True, frozen=True):
    max_bytes: int = 104_857_600
    """HUB_LIST_UPLOAD_MAX_BYTES: largest upload (the CSV, or the whole multipart body), in bytes."""
    max_record_bytes: int = 65_536
    """HUB_LIST_UPLOAD_MAX_RECORD_BYTES: longest CSV record (one row, quoted line breaks and all), in
    bytes; a file without line breaks or with a quote left open is refused at this size."""
    max_rows: int = 1_000_000
    """HUB_LIST_UPLOAD_MAX_ROWS: most data rows (header aside) one upload may hold."""
    write_batch_rows: int = 2000
    """HUB_LIST_UPLOAD_WRITE_BATCH_ROWS: rows written per transaction while the file is received."""
    chunk_rows: int = 10_000
    """HUB_LIST_UPLOAD_CHUNK_ROWS: rows a worker records per transaction (progress commits with it)."""
    job_seconds: float = 20.0
    """HUB_LIST_UPLOAD_JOB_SECONDS: how long one job records chunks before handing over to the next
    (and the recorded rows' flows start running); at most a third of HUB_JOB_TIMEOUT_SECONDS."""
    stale_receiving_seconds: int = 3600
    """HUB_LIST_UPLOAD_STALE_RECEIVING_SECONDS: a still receiving upload older than this failed."""
