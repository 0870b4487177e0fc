"""GitHub code scanning's `primaryLocationLineHash`, computed the way its upload action does.

The action hashes, for every line, the first 100 characters from the start of that line onwards
that are not spaces or tabs (CR, LF and CRLF all count as one LF), with a rolling hash in signed
64-bit arithmetic, and writes `<unsigned hex>:<n>` where n numbers repeats of the same hash in the
file. Fingerprints computed here equal the ones the action would add (the tests check the action's
own test vectors), so results uploaded through the REST API (which adds none) keep their alerts
across runs.
"""

from __future__ import annotations

BLOCK_SIZE = 100
_MOD = 37
_MASK = (1 << 64) - 1
_FIRST_MOD = pow(_MOD, BLOCK_SIZE, 1 << 64)
_TAB, _SPACE, _LF, _CR = 9, 32, 10, 13
_EOF = 65535


def line_hashes(text: str) -> dict[int, str]:
    """Line number (1-based) -> fingerprint, for every line of `text`."""
    # JavaScript strings are UTF-16: hash code units, not code points
    data = text.encode("utf-16-le")
    units = [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]
    window = [0] * BLOCK_SIZE
    line_numbers = [-1] * BLOCK_SIZE
    out: dict[int, str] = {}
    counts: dict[str, int] = {}
    state = {"hash": 0, "index": 0, "line": 0, "line_start": True, "prev_cr": False}

    def emit() -> None:
        index = state["index"]
        value = format(state["hash"] & _MASK, "x")
        counts[value] = counts.get(value, 0) + 1
        out[line_numbers[index]] = f"{value}:{counts[value]}"
        line_numbers[index] = -1

    def update(current: int) -> None:
        index = state["index"]
        begin = window[index]
        window[index] = current
        state["hash"] = (_MOD * state["hash"] + current - _FIRST_MOD * begin) & _MASK
        state["index"] = (index + 1) % BLOCK_SIZE

    def process(current: int) -> None:
        if current in (_SPACE, _TAB) or (state["prev_cr"] and current == _LF):
            state["prev_cr"] = False
            return
        if current == _CR:
            current = _LF
            state["prev_cr"] = True
        else:
            state["prev_cr"] = False
        if line_numbers[state["index"]] != -1:
            emit()
        if state["line_start"]:
            state["line_start"] = False
            state["line"] += 1
            line_numbers[state["index"]] = state["line"]
        if current == _LF:
            state["line_start"] = True
        update(current)

    for unit in units:
        process(unit)
    process(_EOF)
    for _ in range(BLOCK_SIZE):
        if line_numbers[state["index"]] != -1:
            emit()
        update(0)
    return out
