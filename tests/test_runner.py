"""The one executor: its children get back the default action of the signals ftstudy stops them with."""
import signal
import sys

from ftstudy.core import runner


def test_a_tool_started_under_nohup_background_still_obeys_hup_int_term():
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        lines: list[str] = []
        code = "print(open('/proc/self/status').read().split('SigIgn:')[1].split()[0])"
        res = runner.run([sys.executable, "-c", code], on_line=lines.append, quiet=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    assert res.returncode == 0
    ignored = int(lines[-1], 16)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        assert not ignored & (1 << (sig - 1)), f"the tool inherited an ignored {sig.name}"
