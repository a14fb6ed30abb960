"""Reading an uploaded CSV as it arrives: bytes → text → records, never the whole file at once.

:class:`RecordReader` turns text fed in pieces into CSV records (lists of strings). A record
ends at a line break outside quotes; quotes are counted per record (a doubled quote inside a
quoted field counts twice), so a quoted field may hold line breaks. Complete records of each
piece go through one :func:`csv.reader`. :func:`counted` enforces the byte limit on a stream of
chunks, and :class:`MultipartSource` reads a ``multipart/form-data`` body: the form fields before
the file part, then the file part's bytes as they come.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator
from typing import Any

import multipart

FIELD_MAX_BYTES = 4096


class UploadRefused(Exception):
    """An upload Hub will not read on: ``status``, the ``field`` at fault and the ``reason``."""

    def __init__(self, status: int, field: str, reason: str, extra: dict[str, Any] | None = None):
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason
        self.extra = extra or {}


class RecordReader:
    """Incremental CSV records from text pieces; ``feed(text)`` then ``finish()`` at the end.

    ``max_record_bytes`` bounds one record (what is held while waiting for its end): a file
    without line breaks, or with a quote never closed, is refused there, not read whole."""

    def __init__(self, max_record_bytes: int | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._partial = ""  # the text after the last line break
        self._record: list[str] = []  # lines of a record whose quotes are still open
        self._chars = 0  # characters in _record, line breaks included
        self._quotes = 0
        self._max = max_record_bytes
        self.unterminated = False
        self.records = 0  # records returned so far (the header is record 1)

    def feed(self, data: bytes) -> list[list[str]]:
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError:
            raise UploadRefused(422, "body", "is not UTF-8 text (save the sheet as CSV UTF-8)") from None
        return self._records(text, final=False)

    def finish(self) -> list[list[str]]:
        try:
            text = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UploadRefused(422, "body", "is not UTF-8 text (save the sheet as CSV UTF-8)") from None
        return self._records(text, final=True)

    def _check_size(self, rest: str, done: int) -> None:
        """Refuse the record being read (its open lines, then ``rest``) past the limit."""
        if self._max is None:
            return
        chars = self._chars + len(rest)
        if chars * 4 <= self._max:  # UTF-8 takes at most 4 bytes a character: surely within
            return
        if chars <= self._max:  # perhaps within: count the bytes
            size = sum(len(line.encode()) + 1 for line in self._record) + len(rest.encode())
            if size <= self._max:
                return
        raise UploadRefused(
            413, "body", f"row {self.records + done + 1} is longer than {self._max} bytes "
            "(HUB_LIST_UPLOAD_MAX_RECORD_BYTES): is a quote left open, or are the line breaks missing?"
        )

    def _records(self, text: str, final: bool) -> list[list[str]]:
        if "\x00" in text:
            raise UploadRefused(422, "body", "holds NUL bytes: not a CSV text file")
        lines = (self._partial + text).split("\n")
        self._partial = "" if final else lines.pop()
        complete: list[str] = []
        for line in lines:
            if final and not line and not self._record:
                continue  # the empty text after the final line break
            self._record.append(line)
            self._chars += len(line) + 1
            self._check_size("", len(complete))
            self._quotes += line.count('"')
            if self._quotes % 2 == 0:
                complete.append("\n".join(self._record) + "\n")
                self._record, self._quotes, self._chars = [], 0, 0
        self._check_size(self._partial, len(complete))
        if final and self._record:
            self.unterminated = True
            complete.append("\n".join(self._record) + '"\n')  # closed, so csv reads what there is
            self._record = []
        if not complete:
            return []
        reader = csv.reader(complete)
        try:
            records = list(reader)
        except csv.Error as exc:  # one item per record: line_num is the record that failed
            row = self.records + reader.line_num
            if "new-line" in str(exc):
                raise UploadRefused(
                    422, "body", f"row {row} has a line break (CR) outside quotes: end lines with LF "
                    "or CRLF, and quote fields that hold line breaks"
                ) from None
            raise UploadRefused(422, "body", f"row {row} is not valid CSV: {exc}") from None
        self.records += len(records)
        return records


async def counted(chunks: AsyncIterator[bytes], max_bytes: int, seen: list[int]) -> AsyncIterator[bytes]:
    """``chunks``, refusing (413) past ``max_bytes``; ``seen[0]`` counts the bytes read."""
    async for chunk in chunks:
        seen[0] += len(chunk)
        if seen[0] > max_bytes:
            raise UploadRefused(413, "body", f"is larger than {max_bytes} bytes (HUB_LIST_UPLOAD_MAX_BYTES)")
        if chunk:
            yield chunk


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart content type (415 when missing)."""
    _, params = multipart.parse_options_header(content_type)
    boundary = params.get("boundary", "")
    if not boundary:
        raise UploadRefused(415, "header.content-type", "multipart/form-data needs a boundary")
    return str(boundary)


class MultipartSource:
    """A ``multipart/form-data`` upload: form fields (``await fields()``), then the file part."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: str):
        try:
            self._parser = multipart.PushMultipartParser(boundary, max_segment_count=64)
        except multipart.MultipartError as exc:
            raise UploadRefused(415, "header.content-type", f"bad multipart boundary: {exc}") from None
        self._chunks = chunks
        self._events = self._parse()
        self.filename: str | None = None

    async def _parse(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._chunks:
                for event in self._parser.parse(chunk):
                    yield event
            for event in self._parser.parse(b""):
                yield event
            self._parser.close()
        except multipart.MultipartError as exc:
            raise UploadRefused(400, "body", f"is not a valid multipart/form-data body: {exc}") from None

    async def fields(self) -> dict[str, list[str]]:
        """The form fields sent before the file part (named ``file``, or any part with a filename)."""
        found: dict[str, list[str]] = {}
        name, value = "", b""
        async for event in self._events:
            if isinstance(event, multipart.MultipartSegment):
                if event.filename is not None or event.name == "file":
                    self.filename = event.filename or None
                    return found
                name, value = event.name or "", b""
            elif event is None:
                found.setdefault(name, []).append(value.decode("utf-8", "replace"))
            else:
                value += event
                if len(value) > FIELD_MAX_BYTES:
                    raise UploadRefused(422, f"form.{name}", f"is longer than {FIELD_MAX_BYTES} bytes")
        raise UploadRefused(422, "form.file", "missing: send the CSV as a part named file")

    async def file(self) -> AsyncIterator[bytes]:
        """The file part's bytes; a form field after it is refused (the mapping must come first)."""
        in_file = True
        async for event in self._events:
            if in_file:
                if event is None:
                    in_file = False
                elif not isinstance(event, multipart.MultipartSegment):
                    yield bytes(event)
            elif isinstance(event, multipart.MultipartSegment):
                raise UploadRefused(
                    422, f"form.{event.name}", "must come before the file part (the mapping is read first)"
                )
