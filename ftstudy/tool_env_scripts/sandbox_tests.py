"""The tests' side of ftstudy's code sandbox: run in a jail of its own (standard library only; imports nothing
from ftstudy), apart from the program's jail, which cannot read its files, see or trace its process, or write
to its pipes.

It waits until the program's process says it loaded the program, then executes /task/tests.py in a namespace
of its own: the tests' builtins and imports are this process's (a program that shadows `abs`, patches
`math.isclose` or `unittest` changes only its own process), and each other name the tests use is looked up in
the program (a module there is imported here, as this process's own). The program's functions and objects are
proxies; what they return arrives as plain builtin values (sandbox_wire.py), and the assertions compare those
here. Only when the tests ran to their end does this process copy the run's marker from MARKER_FD to
RESULT_FD, two pipes that only this jail holds.

Usage (by ftstudy/eval/sandbox.py):
    python -I /task/sandbox_tests.py REQUEST_FD REPLY_FD MARKER_FD RESULT_FD ASSERT,MEMORY,ERROR,EARLY
"""
import builtins
import importlib
import os
import sys
import traceback

sys.path.insert(0, "/task")
import sandbox_wire as wire  # noqa: E402 - from /task, beside this script
del sys.path[0]

sys.set_int_max_str_digits(0)  # a big int crosses as its digits; the deadline bounds the work
_req, _reply, _marker, _result = (int(a) for a in sys.argv[1:5])
EXIT_ASSERT, EXIT_MEMORY, EXIT_ERROR, EXIT_EARLY = (int(c) for c in sys.argv[5].split(","))


class EarlyEnd(BaseException):
    """The program's process ended (or called exit) before the tests finished: never caught by the tests."""


class BrokenChannel(BaseException):
    """The program's process wrote something that is not this protocol."""


class ProgramError(Exception):
    """An exception of a class the program defined, raised in the program's process."""


class Remote:
    """One of the program's objects, in the program's process. It has no comparisons of its own: compared with
    anything it is equal only to itself, so an object whose __eq__ always says yes never reaches a test."""
    __slots__ = ("_n", "_type")

    def __init__(self, n, type_name):
        self._n, self._type = n, type_name

    def __call__(self, *args, **kwargs):
        return _op("call", self._n, list(args), [[k, v] for k, v in kwargs.items()])

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _op("getattr", self._n, name)

    def __getitem__(self, key):
        return _op("getitem", self._n, key)

    def __len__(self):
        return _checked(_op("len", self._n), int)

    def __bool__(self):
        return _checked(_op("bool", self._n), bool)

    def __str__(self):
        return _checked(_op("str", self._n), str)

    def __iter__(self):
        it = _op("iter", self._n)
        while isinstance(it, Remote):
            try:
                yield _op("next", it._n)
            except StopIteration:
                return

    def __repr__(self):
        return f"<{self._type} object of the program>"


def _checked(value, kind):
    if type(value) is not kind:
        raise TypeError(f"the program answered a {type(value).__name__} where Python needs a {kind.__name__}")
    return value


def _ref_of(obj):
    if isinstance(obj, Remote):
        return {"ref": [obj._n, obj._type]}
    name = getattr(obj, "__name__", None)
    if isinstance(name, str) and getattr(builtins, name, None) is obj:  # len, str, int: by name
        return {"builtin": [name]}
    raise TypeError(f"sandbox: only plain values (numbers, strings, bytes, tuples, lists, dicts, sets), Python's "
                    f"builtins and the program's own objects can be passed to the program, not a {type(obj).__name__}")


_decode = wire.decoder(Remote)


def _request(*msg):
    body = wire.encode(list(msg), _ref_of)
    try:
        wire.send(_req, body)
        reply = _decode(wire.recv(_reply))
    except (EOFError, BrokenPipeError):
        raise EarlyEnd("the program's process ended before its tests finished") from None
    except (wire.ProtocolError, ValueError) as exc:
        raise BrokenChannel(f"the program's process broke the sandbox protocol ({exc})") from None
    if type(reply) is not list or not reply or type(reply[0]) is not str:
        raise BrokenChannel(f"the program's process answered {reply!r:.80}")
    return reply


def _op(*msg):
    reply = _request(*msg)
    if reply[0] == "ok" and len(reply) == 2:
        return reply[1]
    if reply[0] == "stop" and msg[0] == "next":
        raise StopIteration
    if reply[0] == "raised" and len(reply) == 3 and all(type(r) is str for r in reply[1:]):
        name, message = reply[1], reply[2]
        if name == "SystemExit":
            raise EarlyEnd(message)
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                exc = cls(f"{message} (raised in the program)")
            except Exception:
                exc = ProgramError(f"{name}: {message}")
        else:
            exc = ProgramError(f"{name}: {message}")
        raise exc
    raise BrokenChannel(f"the program's process answered {reply!r:.80}")


class Namespace(dict):
    """The tests' globals: a name the tests do not define and that is not one of this process's builtins is the
    program's; a module there is imported here instead."""

    def __missing__(self, name):
        if name.startswith("__") or hasattr(builtins, name):
            raise KeyError(name)
        reply = _request("get", name)
        if reply[0] == "ok" and len(reply) == 2:
            value = reply[1]
        elif reply[0] == "module" and len(reply) == 2 and type(reply[1]) is str:
            if reply[1].partition(".")[0] not in sys.stdlib_module_names or "__main__" in reply[1]:
                raise ImportError(f"sandbox: the tests use {name}, the program's module {reply[1]}, which is not "
                                  "in the standard library")
            value = importlib.import_module(reply[1])
        elif reply[0] == "missing":
            raise KeyError(name)
        else:
            raise BrokenChannel(f"the program's process answered {reply!r:.80}")
        self[name] = value
        return value


def _end(code, message=None):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    if message:
        os.write(2, message.encode(errors="replace") + b"\n")
    os._exit(code)


def main():
    try:
        hello = _decode(wire.recv(_reply))
    except EOFError:
        _end(EXIT_EARLY, "the program's process ended before its tests started")
    except (wire.ProtocolError, ValueError) as exc:
        _end(EXIT_ERROR, f"the program's process broke the sandbox protocol ({exc})")
    if hello != ["ready"]:
        kind = hello[1] if type(hello) is list and len(hello) == 3 and hello[0] == "load_error" else "error"
        codes = {"early": EXIT_EARLY, "memory": EXIT_MEMORY, "assert": EXIT_ASSERT}
        _end(codes.get(kind, EXIT_ERROR), f"loading the program failed: {str(hello[-1])[:500]}")
    with open("/task/tests.py", encoding="utf-8") as fh:
        source = fh.read()
    ns = Namespace(__name__="tests", __file__="/task/tests.py", __builtins__=builtins)
    try:
        exec(compile(source, "/task/tests.py", "exec"), ns)
    except EarlyEnd as exc:
        _end(EXIT_EARLY, str(exc))
    except BrokenChannel as exc:
        _end(EXIT_ERROR, str(exc))
    except AssertionError:
        traceback.print_exc()
        _end(EXIT_ASSERT)
    except MemoryError:
        _end(EXIT_MEMORY, "MemoryError: the sandbox memory limit was reached")
    except SystemExit:
        _end(EXIT_EARLY, "the tests called exit")
    except BaseException:
        traceback.print_exc()
        _end(EXIT_ERROR)
    _end_ok = os.read(_marker, 64)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.write(_result, _end_ok)
    os._exit(0)


main()
