"""The report renders: self-contained (no network), its table and charts show in headless Chromium, the page
logs no console error, no two chart labels overlap and the page is a few screens long at most. Chromium is
Debian's package, installed by the project's test set-up."""
import json
import re
import shutil
import subprocess

import pytest

from ftstudy.study import report
from tests.test_compare import put, scores

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium(args, tmp_path, timeout=120):
    # never skipped: `make test` and `make test-fast` install Debian's chromium (the `browser` target)
    assert CHROMIUM, "headless Chromium is missing: run `make browser` (apt-get install chromium)"
    prof = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={prof}", *args], capture_output=True, text=True,
                          timeout=timeout)


# Run in the page by headless Chromium: the laid-out boxes of every chart label (SVG <text>), the pairs that
# overlap, and the page's height; written into the DOM, which --dump-dom prints.
PROBE = """<script>
const boxes = [...document.querySelectorAll('figure svg text')].map(t => t.getBoundingClientRect())
  .filter(b => b.width > 0 && b.height > 0);
const overlaps = [];
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
  const a = boxes[i], b = boxes[j];
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  if (w > 1 && h > 1) overlaps.push([i, j]);
}
const out = document.createElement('pre'); out.id = 'probe';
out.textContent = JSON.stringify({labels: boxes.length, overlaps: overlaps, height: document.documentElement.scrollHeight});
document.body.appendChild(out);
</script>"""
SCREEN = 900          # px of a laptop screen at 1280 px wide
MAX_SCREENS = 4       # "a few screens": the demo's report must fit


def layout(html_path, tmp_path) -> dict:
    """Open the page (with the probe added) in headless Chromium at 1280 px wide; return what the probe saw."""
    probed = tmp_path / "probed.html"
    probed.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    res = chromium(["--window-size=1280,900", "--dump-dom", probed.as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert found, "the probe did not run"
    return json.loads(found.group(1).replace("&quot;", '"'))


def console_errors(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if "CONSOLE" in l and ("Uncaught" in l or "Error" in l or ":ERROR:" in l)]


@pytest.fixture
def study(tmp_path):
    res = tmp_path / "results"
    put(res, "classification", "base", "ag_news", scores(60, 0.3, 1))
    put(res, "classification", "lora", "ag_news", scores(60, 0.8, 1))
    put(res, "classification", "full", "ag_news", scores(60, 0.9, 2))
    put(res, "math", "base", "gsm8k", scores(60, 0.3, 3))
    put(res, "math", "lora", "gsm8k", scores(60, 0.6, 3))
    put(res, "medical", "base", "medqa", scores(60, 0.4, 4))
    put(res, "medical", "lora", "medqa", scores(60, 0.45, 4))
    run = tmp_path / "runs" / "classification" / "lora-cpu-1234abcd"
    run.mkdir(parents=True)
    (run / "train.json").write_text(json.dumps({"experiment": "classification", "method": "lora", "hardware": "cpu",
                                                "steps": 3, "loss_curve": [[1, 2.0], [2, 1.5], [3, 1.1]],
                                                "wall_time_s": 12.5, "tokens_per_second": 900.0, "peak_memory_gb": 0.8}))
    lock = {"ftstudy": "0", "experiments": {"classification/lora-cpu": {"benchmarks": {
        "base/ag_news": {"subset_ids": [f"subset-id-{i}" for i in range(500)]}}}}}
    (tmp_path / "study.lock.json").write_text(json.dumps(lock))
    return tmp_path


def test_report_contents_and_offline(study, tmp_path):
    html_path, md_path = report.write(study, tmp_path / "out")
    page = html_path.read_text()
    assert page.count("<tr>") >= 4 and page.count('<figure class="chart"') == 3 and "<svg" in page
    assert page.index("Base vs fine-tuned") < page.index("<svg"), "the verdict table comes first"
    assert not re.search(r"(src|href)=\"https?://", page), "the page must open without a network"
    md = md_path.read_text()
    # (report.md escapes Markdown's link brackets in every cell: `\[` renders as `[`)
    assert "| classification | lora | ag_news \\[0-shot, chat template" in md
    assert "| classification | full | ag_news \\[" in md
    # beside each number: its protocol, its source and any declared deviation
    assert "DEVIATION: ftstudy's own 4-way multiple-choice prompt" in md and "DEVIATION: ftstudy&#x27;s own 4-way" in page
    assert "| math | lora | gsm8k \\[5-shot, no chat template, test split, 1319 items" in md
    assert "plan's qlora result 0.9514" in md and "lora-cpu" not in md
    assert "| math | lora | gsm8k \\[" in md and "0.5-0.6 -> 0.75-0.85 (gain +0.15..0.35); published base 0.854" in md
    assert "## Cautions" in md and "not medical advice" in md and "not medical advice" in page
    examples = [l for l in md.split("## Held-out examples")[1].split("##")[0].splitlines() if l.startswith("| ") and "·" in l]
    per_exp = {l.split(" | ")[0] for l in examples}
    assert len(examples) == 3 * len(per_exp) and len(per_exp) == 3, examples  # a few per experiment, not all
    assert "(score 0)" in examples[0].split(" | ")[4] and "(score 1)" in examples[0].split(" | ")[5]  # fixes first
    assert "study.lock.json" in md and "subset-id-17" not in md  # the lock is linked, never dumped
    assert page.index("<details") < page.index("subset-id-17")  # in the page: folded away


def test_console_error_detection_works(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    res = chromium(["--dump-dom", bad.as_uri()], tmp_path)
    assert console_errors(res.stderr), "the check must be able to fail"


def test_report_renders_in_headless_chromium(study, tmp_path):
    html_path, _ = report.write(study, tmp_path / "out")
    dom = chromium(["--dump-dom", html_path.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not console_errors(dom.stderr), console_errors(dom.stderr)
    assert "<table" in dom.stdout and dom.stdout.count('<figure class="chart"') == 3 and "Base vs fine-tuned" in dom.stdout
    seen = layout(html_path, tmp_path)
    assert seen["labels"] >= 20, seen            # the charts' labels were measured, not skipped
    assert seen["overlaps"] == [], f"chart labels overlap: {seen}"
    assert seen["height"] <= MAX_SCREENS * SCREEN, f"the page is {seen['height']} px long, more than {MAX_SCREENS} screens"
    shot = tmp_path / "report.png"
    res = chromium([f"--screenshot={shot}", f"--window-size=1280,{seen['height']}", html_path.as_uri()], tmp_path)
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, "an empty or blank screenshot"


def test_probe_sets_are_labelled_as_probes():
    from ftstudy.study import report

    row = {"experiment": "chat", "method": "lora", "status": "ok", "base": 5.0, "ft": 6.0, "delta": 1.0, "verdict": "better"}
    rows = report.table_rows({"rows": [{**row, "benchmark": "mt_bench_mini"}, {**row, "benchmark": "mt_bench"}]})
    assert rows[0][2].startswith("mt_bench_mini (probe set, not the public benchmark) [") and rows[1][2].startswith("mt_bench [")
    assert "source: ftstudy probe set" in rows[0][2] and "source: FastChat" in rows[1][2]


def test_layout_probe_sees_overlaps_and_long_pages(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><figure><svg width="200" height="50"><text x="10" y="20">label one</text>'
                   '<text x="14" y="22">label two</text></svg></figure><div style="height:5000px"></div></body></html>')
    seen = layout(bad, tmp_path)
    assert seen["labels"] == 2 and seen["overlaps"] == [[0, 1]] and seen["height"] > MAX_SCREENS * SCREEN


# Model output, item text and a result tag that try to run script or add a link in the report: each is a
# payload that, if it ever ran, would mark the page (data-pwned), beside the plain alert(1) forms.
MARK = "document.documentElement.dataset.pwned"
MARKING = ["<script>" + MARK + "='script'</script>", f"<img src=x onerror=\"{MARK}='img'\">"]
PAYLOADS = ["<script>alert(1)</script>" + MARKING[0], "<img src=x onerror=alert(1)>" + MARKING[1],
            "[click](javascript:alert(1)) <div onclick=alert(1)>raw block</div> <https://example.invalid/x>"]
HOSTILE_TAG = f"<img src=x onerror=\"{MARK}='tag'\">"


@pytest.fixture
def hostile(tmp_path):
    from ftstudy.eval import records

    res, items = tmp_path / "results", tmp_path / "items"
    ids = [str(i) for i in range(12)]
    put(res, "classification", "base", "ag_news", {i: 0.0 for i in ids}, {i: f"base answer {i}" for i in ids})
    items.mkdir()
    (items / "ag_news.jsonl").write_text("".join(json.dumps({"id": i, "text": f"item {i}: {PAYLOADS[int(i) % 3]}",
                                                             "label": 1}) + "\n" for i in ids))
    for tag in ("lora", HOSTILE_TAG):
        put(res, "classification", tag, "ag_news", {i: 1.0 for i in ids}, {i: PAYLOADS[int(i) % 3] for i in ids})
        path = records.paths(res, "classification", tag, "ag_news")[0]
        records.save(res, {**json.loads(path.read_text()), "data_dir": str(items)}, records.load_samples(path))
    return tmp_path


def test_model_output_item_text_and_names_cannot_put_html_or_script_in_the_report(hostile, tmp_path):
    from markdown_it import MarkdownIt

    html_path, md_path = report.write(hostile, tmp_path / "out")
    md, page = md_path.read_text(), html_path.read_text()
    assert "&lt;script>alert(1)&lt;/script>" in md and "&lt;img src=x onerror=alert(1)>" in md  # shown, escaped
    # rendered by a CommonMark renderer that passes raw HTML through (its default), nothing becomes markup
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert rendered.count("<tr>") >= 6, rendered  # the tables survived the escaping
    for tag in ("<script", "<img", "<a ", "<div"):
        assert tag not in rendered.lower() and tag not in page.lower(), tag
    for shown in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;",
                  "[click](javascript:alert(1))"):
        assert shown in rendered, shown
    for shown in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "item 1: &lt;img"):
        assert shown in page, shown
    # in a browser nothing ran: neither the report page nor the rendered Markdown marks itself; the same
    # marking payloads written raw into a page do (the check can fail; an alert would hold headless Chromium)
    (tmp_path / "md.html").write_text(f"<!doctype html><html><body>{rendered}</body></html>")
    (tmp_path / "raw.html").write_text(f"<!doctype html><html><body>{''.join(MARKING)}</body></html>")
    for name, ran in (("report", html_path), ("markdown", tmp_path / "md.html"), ("raw", tmp_path / "raw.html")):
        dom = chromium(["--dump-dom", ran.as_uri()], tmp_path)
        assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
        assert ("data-pwned" in dom.stdout) == (name == "raw"), (name, dom.stdout[:300])
