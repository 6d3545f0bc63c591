"""What crosses between the program's jail and the tests' jail of ftstudy's code sandbox (standard library only;
copied into both jails; imports nothing from ftstudy).

Plain values cross by value: None, bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset and
range; a subclass of one crosses as its base type (a namedtuple as a tuple, a Counter as a dict), as the
program's side writes it. Any other object of the program's stays in the program's process and crosses as a
reference number; from the tests' side, one of Python's builtins (`len`, `str`) crosses by its name.
The tests' side decodes with `json` into these builtin types only, so no object of the program's (an `__eq__`
that is always true, a `str` subclass with its own comparisons) ever reaches the tests: whatever the program's
process writes, the tests compare builtin values with builtin comparisons.

A message is a 4-byte length and that much JSON, on a pipe.
"""
import json
import os
import struct

MAX_MESSAGE = 64 << 20  # a reply larger than this is refused by the tests' side (a flood is not a value)


class ProtocolError(Exception):
    """A message that is not one this protocol writes."""


def encode(value, ref):
    """`value` as JSON-ready data; `ref(obj)` gives what stands for an object that cannot cross by value
    ({"ref": [n, type name]} or {"builtin": [name]}), or raises."""
    def enc(x):
        if x is None or x is True or x is False:
            return x
        t = type(x)
        if t is int or t is str or t is float:
            return x
        if t is list:
            return [enc(v) for v in x]
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int.__int__(x)
        if isinstance(x, float):
            return float.__float__(x)
        if isinstance(x, str):
            return str.__str__(x)
        if isinstance(x, complex):
            return {"c": [complex.real.__get__(x), complex.imag.__get__(x)]}
        if isinstance(x, (bytes, bytearray)):
            return {"b": [bytes(x).hex()]}
        if isinstance(x, list):
            return [enc(v) for v in list.__iter__(x)]
        if isinstance(x, tuple):
            return {"t": [enc(v) for v in tuple.__iter__(x)]}
        if isinstance(x, frozenset):
            return {"f": [enc(v) for v in frozenset.__iter__(x)]}
        if isinstance(x, set):
            return {"s": [enc(v) for v in set.__iter__(x)]}
        if isinstance(x, dict):
            return {"d": [[enc(k), enc(v)] for k, v in dict.items(x)]}
        if t is range:
            return {"r": [x.start, x.stop, x.step]}
        return ref(x)
    return enc(value)


def decoder(remote, builtin=None):
    """A function from JSON text to builtin values; `remote(n, type_name)` makes what stands for a reference,
    `builtin(name)` one of Python's builtins (only the program's side accepts those)."""
    def hook(pairs):
        if len(pairs) != 1:
            raise ProtocolError("an object with other than one key")
        tag, v = pairs[0]
        if type(v) is not list:
            raise ProtocolError(f"{tag!r} without a list")
        if tag == "t":
            return tuple(v)
        if tag == "s":
            return set(v)
        if tag == "f":
            return frozenset(v)
        if tag == "d":
            if not all(type(p) is list and len(p) == 2 for p in v):
                raise ProtocolError("a dict entry that is not a pair")
            return dict(v)
        if tag == "b" and len(v) == 1 and type(v[0]) is str:
            return bytes.fromhex(v[0])
        if tag == "c" and len(v) == 2 and all(type(p) in (int, float) for p in v):
            return complex(*v)
        if tag == "r" and len(v) == 3 and all(type(p) is int for p in v):
            return range(*v)
        if tag == "ref" and len(v) == 2 and type(v[0]) is int and type(v[1]) is str:
            return remote(v[0], v[1])
        if tag == "builtin" and builtin is not None and len(v) == 1 and type(v[0]) is str:
            return builtin(v[0])
        raise ProtocolError(f"unknown tag {tag!r}")

    def decode(text):
        try:
            return json.loads(text, object_pairs_hook=hook)
        except ProtocolError:
            raise
        except (ValueError, TypeError, RecursionError) as exc:  # unhashable set items, bad hex, bad JSON
            raise ProtocolError(f"{type(exc).__name__}: {exc}") from None
    return decode


def send(fd, data, write=os.write):
    body = json.dumps(data, separators=(",", ":")).encode()
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        view = view[write(fd, view):]


def recv(fd, read=os.read):
    """The next message's text; EOFError when the other side is gone."""
    head = _exactly(fd, 4, read)
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE:
        raise ProtocolError(f"a message of {size} bytes")
    return _exactly(fd, size, read).decode("utf-8", errors="strict")


def _exactly(fd, n, read):
    chunks, got = [], 0
    while got < n:
        chunk = read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed its end")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
