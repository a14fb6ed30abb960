"""Reading CSV as it arrives (``csvstream``): however the bytes are cut into chunks, the records
are those :mod:`csv` reads from the whole text; encoding, NUL and limit refusals."""

import csv
import io
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub_plugins.list_upload.csvstream import RecordReader, UploadRefused, counted

# Quoted fields holding commas, doubled quotes and line breaks (LF and CRLF), 2-, 3- and 4-byte
# UTF-8 characters, CRLF record ends, an empty record, and no line break after the last record.
TRICKY = (
    'id,name,note\r\n'
    '1,"Smith, J","line one\r\nline two"\r\n'
    '2,Zoë,"say ""hi"", then\nleave"\r\n'
    '\r\n'
    '3,€uro 😀,plain\r\n'
    '4,"",last'
)


def whole(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def streamed(chunks: list[bytes], max_record_bytes: int | None = None) -> list[list[str]]:
    reader = RecordReader(max_record_bytes)
    records = [r for chunk in chunks for r in reader.feed(chunk)]
    return records + reader.finish()


def cut(data: bytes, points: tuple[int, ...]) -> list[bytes]:
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def test_the_tricky_text_parses_like_the_csv_module():
    assert streamed([TRICKY.encode()]) == whole(TRICKY)
    assert whole(TRICKY)[2] == ["2", "Zoë", 'say "hi", then\nleave']  # the case is as tricky as meant


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_records_are_the_same_whatever_two_or_three_chunks_the_bytes_arrive_in(bom):
    data = bom + TRICKY.encode()
    expected = whole(TRICKY)
    for split in range(len(data) + 1):  # every single cut, inside multibyte characters too
        assert streamed(cut(data, (split,))) == expected, f"cut at byte {split}"
    for points in combinations(range(1, len(data)), 2):  # every pair of cuts
        assert streamed(cut(data, points)) == expected, f"cuts at bytes {points}"


def test_one_byte_at_a_time():
    data = TRICKY.encode()
    assert streamed([data[i : i + 1] for i in range(len(data))]) == whole(TRICKY)


FIELD = st.lists(st.sampled_from([*'ab ,"\n\r\téü€😀', "\r\n"]), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(FIELD, min_size=1, max_size=4), min_size=1, max_size=6),
    terminator=st.sampled_from(["\r\n", "\n"]),
    trailing=st.booleans(),
    data=st.data(),
)
def test_any_csv_cut_anywhere_parses_like_the_csv_module(rows, terminator, trailing, data):
    # Written with CRLF so that a field holding a lone CR is quoted (with "\n" as line terminator
    # csv.writer leaves it bare, which is not valid CSV), then joined with the terminator drawn.
    lines = []
    for row in rows:
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\r\n").writerow(row)
        lines.append(out.getvalue().removesuffix("\r\n"))
    text = terminator.join(lines) + (terminator if trailing else "")
    raw = text.encode()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=6, unique=True).map(sorted))
    assert streamed(cut(raw, tuple(points))) == whole(text)


def test_a_multibyte_character_cut_in_two_is_not_refused_but_a_bad_byte_is():
    euro = "€".encode()
    reader = RecordReader()
    assert reader.feed(b"a,b\n1," + euro[:1]) == [["a", "b"]]
    assert reader.feed(euro[1:] + b"\n") == [["1", "€"]]
    with pytest.raises(UploadRefused) as refused:
        RecordReader().feed(b"a,b\n1,\xff\n")
    assert (refused.value.status, refused.value.field) == (422, "body") and "UTF-8" in refused.value.reason
    with pytest.raises(UploadRefused) as truncated:
        reader = RecordReader()
        reader.feed(b"a,b\n1," + euro[:2])
        reader.finish()  # the file ends inside a character
    assert "UTF-8" in truncated.value.reason


def test_a_bare_carriage_return_outside_quotes_is_refused_naming_the_row():
    # Old Mac line ends, or a stray CR in a field: a clear refusal, not a csv.Error (a 500).
    reader = RecordReader()
    assert reader.feed(b"a,b\n1,2\n") == [["a", "b"], ["1", "2"]]
    with pytest.raises(UploadRefused) as refused:
        reader.feed(b"3,4\n5\r6,7\n")
    assert (refused.value.status, refused.value.field) == (422, "body")
    assert refused.value.reason.startswith("row 4 has a line break (CR) outside quotes")
    mac_reader = RecordReader()
    assert mac_reader.feed(b"a,b\r1,2\r3,4\r") == []  # no LF yet: nothing complete
    with pytest.raises(UploadRefused) as mac:
        mac_reader.finish()
    assert "row 1 has a line break (CR)" in mac.value.reason


def refusal(max_record_bytes: int, chunks: list[bytes]) -> UploadRefused | None:
    try:
        streamed(chunks, max_record_bytes)
    except UploadRefused as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("data", "row"),
    [
        (b"a,b\n1,2\n" + b"x" * 150, 3),  # no line break after row 2
        (b"a,b\n1,2\n3,\"open\n" + b"more,\n" * 30 + b"4,5\n", 3),  # a quote never closed
        (b"a,b\n" + b"y" * 150 + b"\n5,6\n", 2),  # over the limit, line break and all
        (b"a,b\n1," + "€".encode() * 40 + b"\n", 2),  # 40 characters, but 120 bytes
    ],
    ids=["no-line-break", "open-quote", "one-long-line", "multibyte"],
)
def test_a_record_over_the_limit_is_refused_naming_its_row_however_it_arrives(data, row):
    for chunks in ([data], [data[i : i + 7] for i in range(0, len(data), 7)], cut(data, (len(data) // 2,))):
        refused = refusal(100, chunks)
        assert refused is not None, chunks
        assert (refused.status, refused.field) == (413, "body")
        assert refused.reason.startswith(
            f"row {row} is longer than 100 bytes (HUB_LIST_UPLOAD_MAX_RECORD_BYTES)")


@pytest.mark.parametrize("start", [b"a,b\n1,", b'a,b\n1,"open\n'], ids=["no-line-break", "open-quote"])
def test_the_refusal_comes_as_the_record_passes_the_limit_not_at_the_end_of_the_file(start):
    reader = RecordReader(100)
    reader.feed(start)
    fed = len(start)
    with pytest.raises(UploadRefused):
        for _ in range(10_000):  # 100 kB more, were it all read
            reader.feed(b"xxxxxxxx\n" if b'"' in start else b"xxxxxxxxx,")
            fed += 10
    assert fed <= 4 + 100 + 10  # the header, the limit, the chunk that crossed it


def test_records_up_to_the_limit_are_read():
    exact = b"1," + "€".encode() * 32 + b"x\n"  # 2 + 96 + 1 + the line break: 100 bytes
    assert len(exact) == 100
    data = b"a,b\n" + exact + b"q" * 99  # and a last line of 99 bytes with no line break
    for points in [(), *((i,) for i in range(len(data) + 1))]:
        assert streamed(cut(data, points), 100) == [["a", "b"], ["1", "€" * 32 + "x"], ["q" * 99]]
    assert refusal(99, [data]) is not None


def test_nul_bytes_are_refused():
    with pytest.raises(UploadRefused) as refused:
        RecordReader().feed(b"a,b\n1,\x002\n")
    assert refused.value.status == 422 and "NUL" in refused.value.reason


def test_a_quote_left_open_at_the_end_is_read_and_flagged():
    reader = RecordReader()
    assert reader.feed(b'a,b\n1,"open\nstill open\n') == [["a", "b"]]
    assert not reader.unterminated
    assert reader.finish() == [["1", "open\nstill open\n"]]
    assert reader.unterminated


async def test_counted_passes_bytes_up_to_the_limit_and_refuses_past_it():
    async def chunks(*pieces):
        for piece in pieces:
            yield piece

    seen = [0]
    assert [c async for c in counted(chunks(b"abc", b"", b"de"), 5, seen)] == [b"abc", b"de"]
    assert seen == [5]
    got, seen = [], [0]
    with pytest.raises(UploadRefused) as refused:
        async for chunk in counted(chunks(b"abc", b"def", b"never"), 5, seen):
            got.append(chunk)
    assert got == [b"abc"] and seen == [6]
    assert refused.value.status == 413 and "HUB_LIST_UPLOAD_MAX_BYTES" in refused.value.reason
