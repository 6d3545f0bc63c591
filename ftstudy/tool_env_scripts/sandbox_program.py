"""The program's side of ftstudy's code sandbox: run in its own jail (standard library only; imports nothing
from ftstudy). It executes /task/solution.py as module `solution` (never __main__), says "ready" (or how
loading ended), then answers the tests' side: the value of a global, a call, an attribute, len, iteration...
Each answer is a plain value or a reference (sandbox_wire.py). The program may replace anything here, trace
it, or write to the pipes itself: all it can send is values, and the tests' jail decides what they mean.

Usage (by ftstudy/eval/sandbox.py): python -I /task/sandbox_program.py REQUEST_FD REPLY_FD
"""
import builtins
import os
import sys
import traceback
import types

sys.path.insert(0, "/task")
import sandbox_wire as wire  # noqa: E402 - from /task, beside this script
del sys.path[0]

_exit, _print_exc = os._exit, traceback.print_exc
_req, _reply = int(sys.argv[1]), int(sys.argv[2])
_send, _recv = wire.send, wire.recv
sys.set_int_max_str_digits(0)  # a big int crosses as its digits, as the tests' side reads them
_BLOCKED = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")


def _hook(event, args):  # readable messages for the usual ways; the jail is the boundary
    if event in _BLOCKED:
        raise PermissionError(f"sandbox: starting other programs is blocked ({event})")
    if event.startswith("socket.") and event not in ("socket.__new__", "socket.gethostname"):
        raise PermissionError(f"sandbox: network access is blocked ({event})")


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _load():
    with open("/task/solution.py", encoding="utf-8") as fh:
        source = fh.read()
    module = types.ModuleType("solution")
    module.__file__ = "/task/solution.py"
    sys.modules["solution"] = module
    sys.argv = ["solution.py"]
    sys.addaudithook(_hook)
    try:
        exec(compile(source, "/task/solution.py", "exec"), module.__dict__)
    except SystemExit:
        _flush()
        return ["load_error", "early", "SystemExit"]
    except MemoryError:
        _flush()
        return ["load_error", "memory", "MemoryError: the sandbox memory limit was reached"]
    except BaseException as exc:
        _flush()
        _print_exc()
        return ["load_error", "assert" if isinstance(exc, AssertionError) else "error",
                f"{type(exc).__name__}: {exc}"[:2000]]
    _flush()
    return module


_table = {}


def _ref(obj):
    _table[len(_table)] = obj
    return {"ref": [len(_table) - 1, type(obj).__name__]}


def _resolve(n, _type):
    return _table[n]


_decode = wire.decoder(_resolve, lambda name: getattr(builtins, name))


def _answer(module, msg):
    op, args = msg[0], msg[1:]
    if op == "get":
        if args[0] not in module.__dict__:
            return ["missing"]
        value = module.__dict__[args[0]]
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        return ["ok", wire.encode(value, _ref)]
    target = _table[args[0]]
    if op == "call":
        result = target(*args[1], **dict(args[2]))
    elif op == "getattr":
        result = getattr(target, args[1])
    elif op == "getitem":
        result = target[args[1]]
    elif op in ("len", "str", "repr", "bool", "iter"):
        result = {"len": len, "str": str, "repr": repr, "bool": bool, "iter": iter}[op](target)
    elif op == "next":
        try:
            result = next(target)
        except StopIteration:
            return ["stop"]
    else:
        return ["raised", "ValueError", f"unknown operation {op!r}"]
    return ["ok", wire.encode(result, _ref)]


def main():
    loaded = _load()
    if isinstance(loaded, list):
        _send(_reply, loaded)
        _exit(0)
    _send(_reply, ["ready"])
    while True:
        try:
            msg = _decode(_recv(_req))
        except EOFError:
            _exit(0)
        try:
            reply = _answer(loaded, msg)
        except SystemExit:
            reply = ["raised", "SystemExit", "the code ended the process during a test"]
        except BaseException as exc:
            _print_exc()
            reply = ["raised", type(exc).__name__, str(exc)[:2000]]
        _flush()
        try:
            _send(_reply, reply)
        except (ValueError, TypeError, RecursionError) as exc:  # json could not write it (a cycle, a huge int)
            _send(_reply, ["raised", type(exc).__name__, str(exc)[:2000]])


main()
