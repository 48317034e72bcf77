#!/usr/bin/env python3
"""Check servesim's report.html in a real headless browser (Chromium).

    python3 scripts/check_report.py CHROMIUM PAGE.html CHARTS

The page is loaded by headless Chromium with its network log on. It passes when:
* the DOM after loading holds CHARTS <figure class="chart"> elements, each with an
  <svg> of positive width and height that draws at least one line (<polyline>/<path>);
* the page requested nothing: no request in the network log was started by the page
  (Chromium's own background requests carry the initiator "not an origin").

To show that the network check can see a request at all, a canary page that loads an
image from an unreachable host is checked first and must be caught. Standard library
only; exits non-zero with the reason on any failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--virtual-time-budget=5000",
]


def load(chromium: str, page: Path, workdir: Path) -> tuple[str, list[dict]]:
    """The DOM after loading `page`, and the page's own requests from the network log."""
    netlog = workdir / f"{page.stem}-net.json"
    # A browser killed by a signal (a crash of headless Chromium itself, seen once in a
    # CI run on the 2-core host) is retried; any other failure is reported at once.
    for attempt in range(3):
        out = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={workdir / 'profile'}",
             f"--log-net-log={netlog}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )
        if out.returncode >= 0:
            break
        print(f"chromium crashed on {page} (signal {-out.returncode}), attempt {attempt + 1} of 3",
              file=sys.stderr)
    if out.returncode != 0:
        sys.exit(f"chromium failed on {page} ({out.returncode}):\n{out.stderr[-2000:]}")
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    started = [
        e["params"] for e in log["events"]
        if types.get(e["type"]) == "URL_REQUEST_START_JOB"
        and e.get("params", {}).get("initiator", "not an origin") != "not an origin"
    ]
    return out.stdout, started


class Charts(HTMLParser):
    """Collects each chart figure's svg size and how many lines it draws."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict] = []
        self.depth = 0  # inside a chart figure

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "figure" and "chart" in (a.get("class") or "").split():
            self.charts.append({"svg": None, "lines": 0})
            self.depth = 1
        elif self.depth:
            if tag == "figure":
                self.depth += 1
            elif tag == "svg" and self.charts[-1]["svg"] is None:
                self.charts[-1]["svg"] = (a.get("width"), a.get("height"))
            elif tag in ("polyline", "path"):
                self.charts[-1]["lines"] += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "figure":
            self.depth -= 1


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    chromium, page, expected = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        canary = work / "canary.html"
        canary.write_text('<!DOCTYPE html><img src="http://servesim-canary.invalid/x.png">')
        _, caught = load(chromium, canary, work)
        if not any("servesim-canary.invalid" in r.get("url", "") for r in caught):
            sys.exit("the network check did not see the canary page's request; it proves nothing")
        dom, requests = load(chromium, page, work)
    if requests:
        sys.exit(f"{page} requested: {[r.get('url') for r in requests]}")
    parser = Charts()
    parser.feed(dom)
    charts = parser.charts
    if len(charts) != expected:
        sys.exit(f"{page}: {len(charts)} charts in the loaded page, expected {expected}")
    for i, c in enumerate(charts):
        w, h = c["svg"] or (None, None)
        if not (w and h and float(w) > 0 and float(h) > 0):
            sys.exit(f"{page}: chart {i + 1} has no sized <svg> ({c})")
        if c["lines"] == 0:
            sys.exit(f"{page}: chart {i + 1} draws nothing")
    print(f"{page}: {len(charts)} charts shown, no network requests")


if __name__ == "__main__":
    main()
