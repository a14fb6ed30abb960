"""Connection cuts the HTTP/2 fakes (APNs, FCM over h2c) can be scripted to make."""

from __future__ import annotations


class ConnectionCuts:
    """Mixed into a fake with a ``_cuts: list[tuple[int, str]]`` field: (requests to answer first,
    ``"goaway"`` or ``"drop"``). The fake's protocol asks :meth:`_cut` once per request."""

    _cuts: list[tuple[int, str]]

    def goaway(self, after: int = 0, times: int = 1) -> None:
        """After ``after`` more requests, refuse the next one with a GOAWAY (NO_ERROR, last stream
        the one before it) and close that connection once its earlier streams are answered;
        ``times`` requests in a row are refused so. Recorded as ``"GOAWAY"`` in ``answered``."""
        self._cuts.extend([(after, "goaway")] + [(0, "goaway")] * (times - 1))

    def disconnect(self, after: int = 0, times: int = 1) -> None:
        """After ``after`` more requests, drop the next one's connection without a word (recorded
        as ``"dropped"``)."""
        self._cuts.extend([(after, "drop")] + [(0, "drop")] * (times - 1))

    def _cut(self) -> str | None:
        if not self._cuts:
            return None
        after, how = self._cuts[0]
        if after > 0:
            self._cuts[0] = (after - 1, how)
            return None
        self._cuts.pop(0)
        return how
