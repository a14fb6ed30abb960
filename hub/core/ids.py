"""Time-ordered ids (UUID version 7 layout), so rows made in one instant still sort in the order
they were made: events of one transaction share a timestamp, and queries break ties on the id."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def ordered_uuid() -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter within the millisecond, 62 random
    bits. Monotonic within a process; across processes, ordered to the millisecond."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms, _counter = ms, 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    # str(uuid.UUID(int=value)), without the constructor's checks (every event gets one of these)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
