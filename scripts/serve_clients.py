#!/usr/bin/env python3
"""Run real benchmark clients against `servesim serve`, offline, and compare what they report.

Usage:
    python3 scripts/serve_clients.py [options] [-- SERVE_FLAGS...]
    python3 scripts/serve_clients.py --smoke -- --tokenizer tests/fixtures/tokenizer/llama3-style-bpe2k

For each client (guidellm, aiperf, inference-perf, and a small driver on the openai SDK,
scripts/serve_clients_openai.py) the script keeps one venv under `--cache` (default
`.venv-clients/` at the repository root, which must be git-ignored) with pinned versions
from PyPI, starts a fresh `servesim serve --port 0 SERVE_FLAGS...` for it, waits for
/health, runs the client at a fixed open-loop load (default 5 req/s for 20 s, prompts of
256 tokens, 128 output tokens, streaming chat with ignore_eos; inference-perf can only
send completions), and collects per request what the client recorded: send, first-token
and last-token times, the server's usage, and the client's own token counts. Each
request's prompt and output are then recounted with the tokenizer the way vLLM counts
(chat template with the generation prompt, or BOS for completions; the output without
special tokens): a *mismatch* is a request whose server usage differs from that recount.
The server's /metrics counters (requests, prompt and generation tokens) are checked
against the sum of the usages.

It prints one table (TTFT, ITL, end-to-end latency as median/mean; the client's own mean
prompt/output counts, the usage means, the mismatches) and writes under `--out` (default
output/serve-clients/) per client: the command line, pip freeze, logs, the client's raw
results, `summary.json` and `requests.csv`, one row per request sorted by send time, in
seconds after the client's first send on the client's clock:
`arrival_s,first_token_s,finish_s,input_tokens,output_tokens,timing,status` (readable by
`servesim validate`; the token columns are the server's usage) then
`client_input_tokens,client_output_tokens,ref_input_tokens,ref_output_tokens`; and
`summary.json` for all.

Every client gets the tokenizer folder `--tokenizer` (default the shipped test tokenizer
tests/fixtures/tokenizer/llama3-style-bpe2k): guidellm `--tokenizer kind=huggingface_auto,
model=DIR`, aiperf `--tokenizer DIR`, inference-perf `tokenizer.pretrained_model_name_or_path`,
and runs with HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, HF_DATASETS_OFFLINE=1. The server
gets only SERVE_FLAGS: pass `-- --tokenizer DIR` for it to count tokens with the same one.

`--smoke` (for CI) runs only the openai driver and guidellm, briefly (2 req/s for 8 s,
64 output tokens: about 40 s once the venvs exist), and exits 1 if a client could not
run, any request failed, or (unless `--allow-mismatch`) any mismatch or /metrics
disagreement was found. Without `--smoke` the exit status is 0 unless no client ran.

inference-perf 0.7.0 needs Python >= 3.12: `--python312 PATH`, else the first of
python3.12, python3.13 on PATH and ~/.pyenv/versions/3.1[23]*/bin that runs; with none,
it is skipped with a message. This file uses only the Python standard library.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOKENIZER = REPO / "tests/fixtures/tokenizer/llama3-style-bpe2k"
OPENAI_DRIVER = REPO / "scripts/serve_clients_openai.py"

# Pinned client versions (top-level packages; pip resolves the rest, and each venv's
# `pip freeze` is saved next to the results). guidellm 0.8.1 pulls torch from PyPI
# (several GB with its CUDA wheels): its data loader imports torch.
CLIENTS = {
    "openai": {"python": "3.11", "packages": ["openai==3.60.0", "transformers==5.25.0", "tokenizers==0.23.3", "jinja2==3.1.6"]},
    "guidellm": {"python": "3.11", "packages": ["guidellm==0.8.1"]},
    "aiperf": {"python": "3.11", "packages": ["aiperf==0.13.0"]},
    "inference-perf": {"python": "3.12", "packages": ["inference-perf==0.7.0"]},
}
SMOKE_CLIENTS = ["openai", "guidellm"]
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


def log(msg):
    print(f"[serve_clients] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- venvs


def python_for(version, args):
    """A Python interpreter of `version` (3.11: this one, or the newest >= 3.11 found for 3.12)."""
    if version == "3.11":
        return sys.executable if sys.version_info[:2] >= (3, 11) else shutil.which("python3.11")
    cands = [args.python312] if args.python312 else []
    cands += [shutil.which(n) for n in ("python3.12", "python3.13")]
    home = Path.home()
    cands += sorted(glob.glob(str(home / ".pyenv/versions/3.12*/bin/python3.12")))
    cands += sorted(glob.glob(str(home / ".pyenv/versions/3.13*/bin/python3.13")))
    cands += ["/usr/bin/python3.12", "/usr/bin/python3.13", "/usr/local/bin/python3.12", "/usr/local/bin/python3.13"]
    for c in cands:
        if not c or not os.path.exists(c):
            continue
        try:
            out = subprocess.run([c, "-c", "import sys, venv; print(sys.version_info[0], sys.version_info[1])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            major, minor = map(int, out.stdout.split())
            if (major, minor) >= (3, 12):
                return c
    return None


def ensure_venv(name, args):
    """The venv's bin folder, creating it and installing the pinned packages if needed."""
    spec = CLIENTS[name]
    venv = args.cache / name
    stamp = venv / "serve_clients.installed"
    want = json.dumps(spec, sort_keys=True)
    if stamp.exists() and stamp.read_text() == want and (venv / "bin/python").exists():
        return venv / "bin"
    py = python_for(spec["python"], args)
    if py is None:
        raise Skip(f"needs Python >= {spec['python']}: none found (give one with --python312 PATH)")
    if venv.exists():
        shutil.rmtree(venv)
    log(f"{name}: creating {venv} with {py} and installing {' '.join(spec['packages'])} (guidellm: several GB, minutes)")
    args.cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([py, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    with (args.cache / f"{name}.install.log").open("w") as f:
        for cmd in (pip + ["install", "-U", "pip"], pip + ["install"] + spec["packages"]):
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise Skip(f"pip install failed (rc {r.returncode}); see {args.cache / (name + '.install.log')}")
    freeze = subprocess.run(pip + ["freeze"], capture_output=True, text=True).stdout
    (venv / "serve_clients.freeze.txt").write_text(freeze)
    stamp.write_text(want)
    return venv / "bin"


class Skip(Exception):
    pass


# ---------------------------------------------------------------- server


class Server:
    """`servesim serve --port 0 FLAGS`: started, its address read from stderr, /health awaited."""

    def __init__(self, binary, flags, logpath):
        self.cmd = [str(binary), "serve"] + flags
        if not any(f == "--port" or f.startswith("--port=") for f in flags):
            self.cmd[2:2] = ["--port", "0"]
        self.logpath = logpath
        self.url = None
        self.lines = []
        self.proc = None

    def __enter__(self):
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.log = self.logpath.open("w")
        self.log.write("$ " + shlex.join(self.cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        found = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.write(line)
                self.log.flush()
                self.lines.append(line)
                m = re.search(r"on (https?://[^\s]+)", line)
                if m and not self.url:
                    self.url = m.group(1).rstrip(" .)")
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        found.wait(60)
        if not self.url:
            raise RuntimeError("servesim serve printed no address:\n" + "".join(self.lines[-20:]))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("servesim serve exited:\n" + "".join(self.lines[-20:]))
            time.sleep(0.2)
        else:
            raise RuntimeError("servesim serve never became healthy")
        models = json.loads(urllib.request.urlopen(self.url + "/v1/models", timeout=5).read())
        self.model = models["data"][0]["id"]
        return self

    def metrics(self):
        """Sums of servesim's /metrics counters over replicas (vLLM names)."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        out = {"prompt_tokens": 0.0, "generation_tokens": 0.0, "requests_finished": 0.0}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if not m:
                continue
            name, value = m.group(1), float(m.group(3))
            if name == "vllm:prompt_tokens_total":
                out["prompt_tokens"] += value
            elif name == "vllm:generation_tokens_total":
                out["generation_tokens"] += value
            elif name == "vllm:request_success_total":
                out["requests_finished"] += value
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "log"):
            self.log.close()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- helpers


def stats(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return {"median": None, "mean": None}
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs)}


def run_logged(cmd, outdir, env, timeout, cwd=None):
    (outdir / "command.txt").write_text(shlex.join(cmd) + "\n")
    with (outdir / "stdout.log").open("w") as so, (outdir / "stderr.log").open("w") as se:
        p = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=cwd or outdir, start_new_session=True)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            rc = "timeout"
    if rc != 0:
        tail = (outdir / "stderr.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"exited {rc}; stderr ends:\n{tail}")


ROW_COLUMNS = ["arrival_s", "first_token_s", "finish_s", "input_tokens", "output_tokens", "timing", "status",
               "client_input_tokens", "client_output_tokens", "ref_input_tokens", "ref_output_tokens"]


def write_requests_csv(path, rows):
    """Per request, sorted by send time, times in seconds after the first send (client clock).

    input_tokens/output_tokens: the server's usage (the reference recount where the client
    kept no usage); client_*: what the client itself reports; ref_*: the recount of what
    was sent and received with the tokenizer (vLLM's way: chat template, BOS)."""
    ok = [r for r in rows if r.get("arrival_s") is not None]
    t0 = min((r["arrival_s"] for r in ok), default=0.0)
    ok.sort(key=lambda r: r["arrival_s"])

    def t(x):
        return "" if x is None else f"{x - t0:.6f}"

    def n(x):
        return "" if x is None else int(x)

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(ROW_COLUMNS)
        for r in ok:
            fin = r.get("status") == "finished"
            w.writerow([t(r["arrival_s"]), t(r.get("first_token_s")) if fin else "", t(r.get("finish_s")) if fin else "",
                        n(first_known(r.get("input_tokens"), r.get("ref_input_tokens"))),
                        n(first_known(r.get("output_tokens"), r.get("ref_output_tokens"))),
                        "client", r.get("status", "finished"),
                        n(r.get("client_input_tokens")), n(r.get("client_output_tokens")),
                        n(r.get("ref_input_tokens")), n(r.get("ref_output_tokens"))])


def first_known(*xs):
    return next((x for x in xs if x is not None), None)


def summarize_rows(client, rows):
    """The common summary from per-request rows (seconds; token fields may be None)."""
    good = [r for r in rows if r.get("status") == "finished"]

    def ms(a, b):
        return None if a is None or b is None else (b - a) * 1e3

    itl = [r.get("itl_ms") for r in good]
    if all(x is None for x in itl):
        itl = []
        for r in good:
            k = first_known(r.get("output_tokens"), r.get("client_output_tokens"))
            if k and k > 1 and r.get("first_token_s") is not None and r.get("finish_s") is not None:
                itl.append((r["finish_s"] - r["first_token_s"]) * 1e3 / (k - 1))
    return {
        "client": client,
        "requests": len(rows), "succeeded": len(good), "failed": len(rows) - len(good),
        "errors": sorted({str(r.get("error"))[:200] for r in rows if r.get("status") != "finished" and r.get("error")})[:5],
        "ttft_ms": stats([ms(r["arrival_s"], r.get("first_token_s")) for r in good]),
        "itl_ms": stats(itl),
        "e2e_ms": stats([ms(r["arrival_s"], r.get("finish_s")) for r in good]),
        "prompt_tokens": stats([r.get("client_input_tokens") for r in good]),
        "output_tokens": stats([r.get("client_output_tokens") for r in good]),
        "usage_prompt_tokens": stats([r.get("input_tokens") for r in good]),
        "usage_output_tokens": stats([r.get("output_tokens") for r in good]),
        "ref_prompt_tokens": stats([r.get("ref_input_tokens") for r in good]),
        "ref_output_tokens": stats([r.get("ref_output_tokens") for r in good]),
        # the server's usage against the recount: does servesim count like vLLM would?
        "prompt_mismatches": mismatches(good, "ref_input_tokens", "input_tokens"),
        "output_mismatches": mismatches(good, "ref_output_tokens", "output_tokens"),
        # the client's own counts against the server's usage (differ by design where a
        # client counts the prompt without the chat template or BOS)
        "client_prompt_mismatches": mismatches(good, "client_input_tokens", "input_tokens"),
        "client_output_mismatches": mismatches(good, "client_output_tokens", "output_tokens"),
        "usage_prompt_tokens_total": sum(r.get("input_tokens") or 0 for r in good),
        "usage_output_tokens_total": sum(r.get("output_tokens") or 0 for r in good),
        "usage_missing": sum(r.get("input_tokens") is None or r.get("output_tokens") is None for r in good),
    }


def mismatches(rows, a, b):
    """Rows where both counts are known and differ (None when no row has both)."""
    both = [r for r in rows if r.get(a) is not None and r.get(b) is not None]
    return sum(int(r[a]) != int(r[b]) for r in both) if both else None


def recount(rows, args, outdir, env):
    """Fill ref_input_tokens/ref_output_tokens from each row's `payload` with the
    tokenizer (in the openai venv, which has transformers)."""
    todo = [r for r in rows if r.get("payload")]
    if not todo:
        return
    inp, out = outdir / "recount.in.jsonl", outdir / "recount.out.jsonl"
    with inp.open("w") as fh:
        for r in todo:
            fh.write(json.dumps(r["payload"]) + "\n")
    py = ensure_venv("openai", args) / "python"
    subprocess.run([str(py), str(OPENAI_DRIVER), "recount", "--tokenizer", str(args.tokenizer), str(inp), str(out)],
                   env=env, check=True, capture_output=True)
    for r, line in zip(todo, out.read_text().splitlines()):
        c = json.loads(line)
        if r.get("ref_input_tokens") is None:
            r["ref_input_tokens"] = c["prompt_tokens"]
        if r.get("ref_output_tokens") is None:
            r["ref_output_tokens"] = c["output_tokens"]
    inp.unlink()
    out.unlink()


# ---------------------------------------------------------------- clients
#
# Each runner runs its client into `outdir` and returns per-request rows: arrival_s,
# first_token_s, finish_s (seconds, any origin, client clock), status ("finished" or
# "failed"), error, input_tokens/output_tokens (server usage), client_input_tokens/
# client_output_tokens (the client's own counts), ref_* or a `payload` to recount.


def run_openai(bin_, srv, args, outdir, env):
    cmd = [str(bin_ / "python"), str(OPENAI_DRIVER), "--base-url", srv.url + "/v1", "--model", srv.model,
           "--tokenizer", str(args.tokenizer), "--rate", str(args.rate), "--duration", str(args.duration),
           "--prompt-tokens", str(args.prompt_tokens), "--output-tokens", str(args.output_tokens),
           "--endpoint", args.endpoint, "--out", str(outdir)]
    run_logged(cmd, outdir, env, args.duration + 300)
    return [json.loads(line) for line in (outdir / "records.jsonl").read_text().splitlines()]


def run_guidellm(bin_, srv, args, outdir, env):
    endpoint = "/v1/chat/completions" if args.endpoint == "chat" else "/v1/completions"
    n = max(1, round(args.rate * args.duration))
    cmd = [str(bin_ / "guidellm"), "run",
           "--backend", json.dumps({"kind": "openai_http", "target": srv.url, "model": srv.model,
                                    "request_format": endpoint, "http2": False, "timeout": 600,
                                    "extras": {"body": {"ignore_eos": True}}}),
           "--profile", f"kind=constant,rate={args.rate}",
           "--constraint", f"kind=max_requests,count={n}",
           "--constraint", f"kind=max_duration,seconds={args.duration + 120:g}",
           "--data", f"kind=synthetic_text,prompt_tokens={args.prompt_tokens},output_tokens={args.output_tokens}",
           "--tokenizer", f"kind=huggingface_auto,model={args.tokenizer}",
           "--seed", "kind=static,value=42",
           "--output", f"kind=json,path={outdir / 'benchmarks.json'}",
           "--output", f"kind=csv,path={outdir / 'benchmarks.csv'}",
           "--disable-console-interactive"]
    run_logged(cmd, outdir, env, args.duration + 600)
    data = json.loads((outdir / "benchmarks.json").read_text())
    reqs = data["benchmarks"][0]["requests"]
    rows = []
    for key in ("successful", "errored", "incomplete"):
        for r in reqs.get(key) or []:
            t = (r.get("info") or {}).get("timings") or {}
            body = json.loads(r["request_args"]).get("body") or {} if r.get("request_args") else {}
            payload = {"endpoint": args.endpoint, "output": r.get("output")}
            payload.update({"messages": body["messages"]} if "messages" in body else {"prompt": body.get("prompt")})
            # prefer_response_metrics (guidellm's default): prompt_tokens/output_tokens are
            # the server's usage when it sent one, else guidellm's own count
            rows.append({
                "arrival_s": t.get("request_start"), "first_token_s": t.get("first_token_iteration"),
                "finish_s": t.get("last_token_iteration") or t.get("request_end"),
                "status": "finished" if key == "successful" else "failed",
                "error": (r.get("info") or {}).get("error"),
                "input_tokens": r.get("prompt_tokens"), "output_tokens": r.get("output_tokens"),
                "client_input_tokens": r.get("prompt_tokens"), "client_output_tokens": r.get("output_tokens"),
                "itl_ms": r.get("inter_token_latency_ms"),
                "payload": payload,
            })
    return rows


def stage_in_hf_cache(folder, hf_home):
    """Copy a tokenizer folder into the HuggingFace hub cache under `hf_home` as the repo
    `servesim-test/<folder name>` (revision main) and return that repo id.

    aiperf 0.13.0 cannot load a local tokenizer folder when HF_HUB_OFFLINE or
    TRANSFORMERS_OFFLINE is set (it hands the path to snapshot_download, which rejects
    it as a repo id); a cached repo id loads offline."""
    import hashlib
    files = sorted(p for p in folder.iterdir() if p.is_file())
    commit = hashlib.sha1(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()
    repo = f"servesim-test/{folder.name}"
    root = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / commit
    if not snap.exists():
        snap.mkdir(parents=True)
        for p in files:
            shutil.copy(p, snap / p.name)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return repo


def run_aiperf(bin_, srv, args, outdir, env):
    n = max(1, round(args.rate * args.duration))
    art = outdir / "artifacts"
    tokenizer = stage_in_hf_cache(args.tokenizer, Path(env["HF_HOME"]))
    cmd = [str(bin_ / "aiperf"), "profile",
           "--model", srv.model, "--url", srv.url,
           "--endpoint-type", "chat" if args.endpoint == "chat" else "completions",
           "--streaming",
           "--tokenizer", tokenizer,
           "--request-rate", str(args.rate), "--arrival-pattern", "constant",
           "--request-count", str(n),
           "--isl", str(args.prompt_tokens), "--isl-stddev", "0",
           "--osl", str(args.output_tokens), "--osl-stddev", "0",
           "--extra-inputs", "ignore_eos:true",
           "--random-seed", "42",
           "--ui-type", "none",
           "--no-server-metrics",
           "--artifact-dir", str(art),
           "--export-level", "records"]
    run_logged(cmd, outdir, env, args.duration + 600)
    payloads = {}
    inputs = json.loads((art / "inputs.json").read_text())
    for sess in inputs.get("data", []):
        for i, p in enumerate(sess.get("payloads", [])):
            payloads[(sess.get("session_id"), i)] = p
    rows = []
    for line in (art / "profile_export.jsonl").read_text().splitlines():
        rec = json.loads(line)
        md, m = rec.get("metadata", {}), rec.get("metrics", {})
        v = lambda k: (m.get(k) or {}).get("value")  # noqa: E731
        start = md.get("request_start_ns")
        ttft = v("time_to_first_token")
        p = payloads.get((md.get("conversation_id"), md.get("turn_index", 0))) or {}
        err = rec.get("error")
        rows.append({
            "arrival_s": start / 1e9 if start else None,
            "first_token_s": start / 1e9 + ttft / 1e3 if start and ttft is not None else None,
            "finish_s": md["request_end_ns"] / 1e9 if md.get("request_end_ns") else None,
            "status": "failed" if err or md.get("was_cancelled") else "finished", "error": err,
            "input_tokens": v("usage_prompt_tokens"), "output_tokens": v("usage_completion_tokens"),
            "client_input_tokens": v("input_sequence_length"), "client_output_tokens": v("output_sequence_length"),
            # aiperf counts the output text without special tokens, as the recount would
            "ref_output_tokens": v("output_sequence_length"),
            "itl_ms": v("inter_token_latency"),
            "payload": {"endpoint": args.endpoint, **({"messages": p["messages"]} if "messages" in p else {"prompt": p.get("prompt")})},
        })
    return rows


def run_inference_perf(bin_, srv, args, outdir, env):
    # Its synthetic and random data generators support only the completions API.
    cfg = {
        "api": {"type": "completion", "streaming": True},
        "data": {"type": "synthetic",
                 "input_distribution": {"min": args.prompt_tokens, "max": args.prompt_tokens, "mean": args.prompt_tokens, "std_dev": 0},
                 "output_distribution": {"min": args.output_tokens, "max": args.output_tokens, "mean": args.output_tokens, "std_dev": 0}},
        "load": {"type": "constant", "stages": [{"rate": args.rate, "duration": max(1, round(args.duration))}], "num_workers": 2},
        "server": {"type": "vllm", "model_name": srv.model, "base_url": srv.url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": str(args.tokenizer)},
        "report": {"request_lifecycle": {"summary": True, "per_stage": True, "per_request": True,
                                         "per_request_fields": {"request": True, "response": False, "info": True,
                                                                "response_chunks": False, "computed_metrics": True}}},
        "storage": {"local_storage": {"path": str(outdir / "reports")}},
    }
    (outdir / "config.yml").write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is YAML
    cmd = [str(bin_ / "inference-perf"), "--config_file", str(outdir / "config.yml")]
    watch = MetricsWatch(srv.url)
    try:
        run_logged(cmd, outdir, env, args.duration + 600)
    finally:
        watch.stop()
    check_inference_perf_metrics(bin_, watch, outdir)
    rows = []
    for r in json.loads((outdir / "reports/per_request_lifecycle_metrics.json").read_text()):
        info = r.get("info") or {}
        resp = info.get("response_metrics") or {}
        usage = resp.get("server_usage") or {}
        cm = r.get("computed_metrics") or {}
        req = json.loads(r["request"]) if isinstance(r.get("request"), str) else (r.get("request") or {})
        ttft = cm.get("time_to_first_token")
        rows.append({
            "arrival_s": r.get("start_time"),
            "first_token_s": r["start_time"] + ttft if ttft is not None and r.get("start_time") is not None else None,
            "finish_s": r.get("end_time"),
            "status": "failed" if r.get("error") else "finished", "error": r.get("error"),
            "input_tokens": usage.get("prompt_tokens"), "output_tokens": usage.get("completion_tokens"),
            "client_input_tokens": cm.get("input_tokens", ((info.get("request_metrics") or {}).get("text") or {}).get("input_tokens")),
            "client_output_tokens": cm.get("output_tokens", resp.get("output_tokens")),
            "ref_output_tokens": cm.get("output_tokens", resp.get("output_tokens")),
            "itl_ms": cm["inter_token_latency"] * 1e3 if cm.get("inter_token_latency") is not None else None,
            "payload": {"endpoint": "completions", "prompt": req.get("prompt")} if "prompt" in req else
                       {"endpoint": "chat", "messages": req.get("messages", [])},
        })
    return rows


class MetricsWatch:
    """Polls /metrics every half second while a client runs and keeps, per metric, the
    largest value seen (summed over its label sets): what a Prometheus server scraping
    the endpoint would have had to answer the client's queries."""

    def __init__(self, url):
        self.url, self.max, self.done = url, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _poll(self):
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        now = {}
        for line in text.splitlines():
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m and not line.startswith("#") and 'le="' not in (m.group(2) or ""):
                now[m.group(1)] = now.get(m.group(1), 0.0) + float(m.group(3))
        for k, v in now.items():
            self.max[k] = max(self.max.get(k, 0.0), v)

    def _run(self):
        while not self.done.wait(0.5):
            try:
                self._poll()
            except OSError:
                pass

    def stop(self):
        self.done.set()
        self.thread.join()
        self._poll()


def check_inference_perf_metrics(bin_, watch, outdir):
    """Every metric inference-perf's vLLM client reads (from its installed source), with
    the largest value the server exposed during the run: counters as `_total`,
    histograms by `_count`. Written to server_metrics.csv; zero or absent ones are
    returned for the notes."""
    src = subprocess.run([str(bin_ / "python"), "-c",
                          "import inference_perf.client.modelserver.vllm_client as m; print(m.__file__)"],
                         capture_output=True, text=True).stdout.strip()
    wanted = re.findall(r'(Counter|Histogram|Gauge)Metric\("([^"]+)"\)', Path(src).read_text()) if src else []
    rows, seen = [], set()
    for kind, name in wanted:
        if name in seen:
            continue
        seen.add(name)
        exposed = {"Counter": name + "_total", "Histogram": name + "_count", "Gauge": name}[kind]
        value = watch.max.get(exposed)
        rows.append((name, kind.lower(), exposed, value))
    with open(outdir / "server_metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "type", "series", "max_value"])
        for r in rows:
            w.writerow([r[0], r[1], r[2], "" if r[3] is None else r[3]])
    return rows


RUNNERS = {"openai": run_openai, "guidellm": run_guidellm, "aiperf": run_aiperf, "inference-perf": run_inference_perf}


# ---------------------------------------------------------------- simulate


# `servesim serve` flags that `simulate` does not take (the value-taking ones eat the
# word after them; --served-model-name takes several).
SERVE_ONLY_FLAGS = {"--host": 1, "--port": 1, "--speedup": 1, "--max-queue": 1, "--served-model-name": -1,
                    "--default-max-tokens": 1, "--shutdown-timeout-s": 1, "--api-key": 1,
                    "--header-read-timeout-s": 1, "--keep-alive-timeout-s": 1, "--max-connections": 1,
                    "--tokenizer": 1, "--enable-prompt-tokens-details": 0}
# Smoke limits on the agreement with `simulate`, per-request medians (generous: CI
# machines are noisy; the figures measured on a quiet machine are in docs/serve.md).
# Client-observed minus simulated TTFT: a client's own work (building the request,
# parsing chunks; a few ms for the openai SDK on a busy 2-core machine) only adds time,
# so the band is lopsided; a server releasing early, or dropping the API server's
# time, shows below it.
SMOKE_TTFT_DELTA_MS = (-3.0, 8.0)
SMOKE_MAX_E2E_DELTA_PCT = 3.0


def simulate_flags(serve_flags):
    """The deployment and engine flags of `serve_flags`, for `servesim simulate`."""
    out, i = [], 0
    while i < len(serve_flags):
        f = serve_flags[i]
        name = f.split("=", 1)[0]
        if name in SERVE_ONLY_FLAGS:
            n = SERVE_ONLY_FLAGS[name]
            i += 1
            if "=" in f or n == 0:
                continue
            if n == -1:
                while i < len(serve_flags) and not serve_flags[i].startswith("-"):
                    i += 1
            else:
                i += n
            continue
        out.append(f)
        i += 1
    return out


def compare_with_simulate(rows, args, serve_flags, outdir):
    """Replay the client's send times (and the server's token counts) through
    `servesim simulate` with the same deployment, and compare per request: the median
    of client TTFT minus simulated TTFT (ms), and the relative difference of the mean
    inter-token latency and of the mean end-to-end latency (%)."""
    done = [r for r in rows if r.get("status") == "finished" and r.get("first_token_s") is not None
            and r.get("arrival_s") is not None]
    for r in done:
        r["_in"] = first_known(r.get("input_tokens"), r.get("ref_input_tokens"))
        r["_out"] = first_known(r.get("output_tokens"), r.get("ref_output_tokens"))
    done = [r for r in done if r["_in"] and r["_out"]]
    if not done:
        return None
    done.sort(key=lambda r: r["arrival_s"])
    t0 = done[0]["arrival_s"]
    trace = outdir / "simulate-trace.csv"
    with open(trace, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "arrival_time_s", "input_tokens", "output_tokens"])
        for i, r in enumerate(done):
            w.writerow([i, f"{r['arrival_s'] - t0:.6f}", int(r["_in"]), int(r["_out"])])
    simdir = outdir / "simulate"
    cmd = [str(args.servesim), "simulate", "--trace", str(trace), "--output-dir", str(simdir)] + simulate_flags(serve_flags)
    r = subprocess.run(cmd, capture_output=True, text=True)
    (outdir / "simulate.log").write_text(shlex.join(cmd) + "\n" + r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"servesim simulate failed (rc {r.returncode}); see {outdir / 'simulate.log'}")
    with open(simdir / "requests.csv") as f:
        sim = {int(x["request_id"]): x for x in csv.DictReader(f)}
    ttft_d, itl_c, itl_s, e2e_c, e2e_s, e2e_rel = [], [], [], [], [], []
    for i, r in enumerate(done):
        x = sim[i]
        c_ttft = r["first_token_s"] - r["arrival_s"]
        c_e2e = r["finish_s"] - r["arrival_s"]
        ttft_d.append((c_ttft - float(x["ttft_s"])) * 1e3)
        e2e_c.append(c_e2e)
        e2e_s.append(float(x["e2e_s"]))
        e2e_rel.append((c_e2e / float(x["e2e_s"]) - 1) * 100)
        n = int(r["_out"])
        if n > 1:
            itl_c.append((c_e2e - c_ttft) / (n - 1))
            itl_s.append(float(x["tpot_s"]))
    pct = lambda a, b: (statistics.fmean(a) / statistics.fmean(b) - 1) * 100 if a and b else None  # noqa: E731
    return {"requests": len(done), "ttft_delta_ms_median": statistics.median(ttft_d),
            "simulated_ttft_ms_median": statistics.median(float(sim[i]["ttft_s"]) * 1e3 for i in range(len(done))),
            "itl_delta_pct": pct(itl_c, itl_s), "e2e_delta_pct": pct(e2e_c, e2e_s),
            "e2e_delta_pct_median": statistics.median(e2e_rel)}


# ---------------------------------------------------------------- main


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def print_table(results):
    """One line per client. tokens: the client's own mean prompt/output counts, then the
    server's usage means; mismatch: requests whose server usage differs from the recount
    with the tokenizer (prompt/output)."""
    head = ["client", "version", "ok", "fail", "TTFT ms med/mean", "ITL ms med/mean", "E2E ms med/mean",
            "client tok in/out", "usage tok in/out", "mismatch in/out", "notes"]
    lines = [head]
    for s in results:
        if "error" in s:
            lines.append([s["client"]] + ["-"] * 9 + [s["error"].splitlines()[0][:90]])
            continue
        lines.append([
            s["client"], str(s.get("version") or "-"), str(s["succeeded"]), str(s["failed"]),
            f"{fmt(s['ttft_ms']['median'])}/{fmt(s['ttft_ms']['mean'])}",
            f"{fmt(s['itl_ms']['median'], 2)}/{fmt(s['itl_ms']['mean'], 2)}",
            f"{fmt(s['e2e_ms']['median'], 0)}/{fmt(s['e2e_ms']['mean'], 0)}",
            f"{fmt(s['prompt_tokens']['mean'])}/{fmt(s['output_tokens']['mean'])}",
            f"{fmt(s['usage_prompt_tokens']['mean'])}/{fmt(s['usage_output_tokens']['mean'])}",
            f"{'-' if s['prompt_mismatches'] is None else s['prompt_mismatches']}/"
            f"{'-' if s['output_mismatches'] is None else s['output_mismatches']}",
            "; ".join(s.get("notes", [])),
        ])
    print_rows(lines)
    # Against `servesim simulate` of the same send times and token counts.
    lines = [["client", "requests", "sim TTFT ms med", "client-sim TTFT ms med", "ITL client/sim", "E2E client/sim"]]
    for s in results:
        c = s.get("vs_simulate")
        if not c:
            continue
        lines.append([s["client"], str(c["requests"]), fmt(c["simulated_ttft_ms_median"], 2),
                      f"{c['ttft_delta_ms_median']:+.2f}",
                      "-" if c["itl_delta_pct"] is None else f"{c['itl_delta_pct']:+.2f} %",
                      "-" if c["e2e_delta_pct"] is None else f"{c['e2e_delta_pct']:+.2f} %"])
    if len(lines) > 1:
        print()
        print("against `servesim simulate` of the same send times:")
        print_rows(lines)
    for s in results:
        m = s.get("server_metrics")
        if m:
            print()
            print(f"{s['client']} reads {m['read']} vLLM metrics: {len(m['nonzero'])} non-zero during the run;"
                  f" zero: {', '.join(m['zero']) or 'none'}; absent: {', '.join(m['absent']) or 'none'}")


def print_rows(lines):
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    for i, r in enumerate(lines):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main():
    argv = sys.argv[1:]
    serve_flags = []
    if "--" in argv:
        i = argv.index("--")
        argv, serve_flags = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Flags after `--` go to `servesim serve`.")
    ap.add_argument("--servesim", type=Path, default=REPO / "target/release/servesim", help="servesim binary (default: %(default)s)")
    ap.add_argument("--cache", type=Path, default=REPO / ".venv-clients", help="folder of the clients' venvs (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "output/serve-clients", help="results folder (default: %(default)s)")
    ap.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="tokenizer folder given to the clients (default: %(default)s)")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated, of " + ", ".join(CLIENTS) + " (default: all)")
    ap.add_argument("--rate", type=float, default=5.0, help="requests per second (default: %(default)s)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of sending (default: %(default)s)")
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    ap.add_argument("--smoke", action="store_true", help="openai + guidellm, 2 req/s for 8 s, 64 output tokens; exit 1 on any failure or mismatch")
    ap.add_argument("--allow-mismatch", action="store_true", help="with --smoke: token mismatches do not fail the run")
    ap.add_argument("--install-only", action="store_true", help="create the venvs and stop")
    ap.add_argument("--python312", help="a Python >= 3.12 for inference-perf")
    args = ap.parse_args(argv)
    args.cache, args.out, args.tokenizer = args.cache.resolve(), args.out.resolve(), args.tokenizer.resolve()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if args.smoke:
        clients = SMOKE_CLIENTS
        args.rate, args.duration, args.output_tokens = 2.0, 8.0, 64
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        ap.error(f"unknown clients {unknown}")
    if not (args.tokenizer / "tokenizer.json").exists():
        ap.error(f"{args.tokenizer} has no tokenizer.json")

    bins, results = {}, []
    for c in clients:
        try:
            bins[c] = ensure_venv(c, args)
        except Skip as e:
            log(f"{c}: skipped: {e}")
            results.append({"client": c, "error": f"skipped: {e}", "skipped": True})
    if args.install_only:
        return 0
    if not args.servesim.exists():
        log(f"{args.servesim} does not exist (build it with `cargo build --release`, or give --servesim PATH)")
        return 2

    env = dict(os.environ, **OFFLINE_ENV)
    env["HF_HOME"] = str(args.cache / "hf-home")  # nothing from the user's cache, nothing written to it
    for c in clients:
        if c not in bins:
            continue
        outdir = args.out / c
        if outdir.exists():
            shutil.rmtree(outdir)
        outdir.mkdir(parents=True)
        shutil.copy(args.cache / c / "serve_clients.freeze.txt", outdir / "pip-freeze.txt")
        log(f"{c}: starting servesim serve {shlex.join(serve_flags)}")
        try:
            with Server(args.servesim, serve_flags, outdir / "server.log") as srv:
                before = srv.metrics()
                log(f"{c}: server at {srv.url}, model {srv.model}; running {args.rate} req/s for {args.duration} s")
                t = time.time()
                rows = RUNNERS[c](bins[c], srv, args, outdir, env)
                time.sleep(0.5)
                after = srv.metrics()
            recount(rows, args, outdir, env)
            write_requests_csv(outdir / "requests.csv", rows)
            s = summarize_rows(c, rows)
            s["version"] = client_version(args.cache / c, c)
            s["server_delta"] = {k: after[k] - before[k] for k in after}
            s["wall_s"] = time.time() - t
            s["vs_simulate"] = compare_with_simulate(rows, args, serve_flags, outdir)
            metrics_csv = outdir / "server_metrics.csv"
            if metrics_csv.exists():
                with open(metrics_csv) as f:
                    m = list(csv.DictReader(f))
                s["server_metrics"] = {
                    "read": len(m),
                    "nonzero": [r["metric"] for r in m if r["max_value"] and float(r["max_value"]) > 0],
                    "zero": [r["metric"] for r in m if r["max_value"] and float(r["max_value"]) == 0],
                    "absent": [r["metric"] for r in m if not r["max_value"]]}
            s["problems"], s["remarks"] = notes(s)
            s["notes"] = s["problems"] + s["remarks"]
            (outdir / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
            results.append(s)
            log(f"{c}: done in {s['wall_s']:.0f} s")
        except Exception as e:  # noqa: BLE001 - one client failing must not stop the others
            log(f"{c}: FAILED: {type(e).__name__}: {e}")
            results.append({"client": c, "error": f"failed: {type(e).__name__}: {e}"})

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({
        "python": sys.version.split()[0], "serve_flags": serve_flags, "rate": args.rate, "duration": args.duration,
        "prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens, "endpoint": args.endpoint,
        "tokenizer": str(args.tokenizer), "clients": results}, indent=2) + "\n")
    print_table(results)
    print(f"results in {args.out}")

    ran = [s for s in results if "error" not in s]
    if args.smoke:
        bad = [s["client"] for s in results if "error" in s]
        bad += [s["client"] for s in ran if s["failed"] or not s["succeeded"]]
        if not args.allow_mismatch:
            bad += [s["client"] for s in ran if s.get("prompt_mismatches") or s.get("output_mismatches") or s["problems"]]
        for s in ran:
            c = s.get("vs_simulate") or {}
            # Medians over requests: a client's first request carries its one-off set-up
            # (the openai SDK's is tens of ms), which moves a 16-request mean.
            lo, hi = SMOKE_TTFT_DELTA_MS
            if (c.get("ttft_delta_ms_median") is None or not lo <= c["ttft_delta_ms_median"] <= hi
                    or abs(c.get("e2e_delta_pct_median") or 0.0) > SMOKE_MAX_E2E_DELTA_PCT):
                log(f"{s['client']}: timing disagrees with `servesim simulate`: {c}")
                bad.append(s["client"])
        if bad:
            log(f"smoke FAILED: {sorted(set(bad))}")
            return 1
        log("smoke passed")
        return 0
    return 0 if ran else 1


def client_version(venv, name):
    pkg = {"openai": "openai"}.get(name, name).replace("-", "_")
    for line in (venv / "serve_clients.freeze.txt").read_text().splitlines():
        if line.lower().replace("-", "_").startswith(pkg + "=="):
            return line.split("==", 1)[1]
    return None


def notes(s):
    """(problems, remarks): disagreements between the usages the client recorded and the
    server's /metrics counters. A client that recorded fewer requests than the server
    finished (guidellm 0.8.1 sometimes leaves out the last one) is a remark, and the
    totals are then not comparable."""
    problems, remarks = [], []
    d = s.get("server_delta") or {}
    finished = d.get("requests_finished")
    if finished is not None and finished != s["succeeded"]:
        (remarks if finished > s["succeeded"] else problems).append(
            f"server finished {finished:.0f} requests, client recorded {s['succeeded']}")
    else:
        for mine, theirs, what in (("usage_prompt_tokens_total", "prompt_tokens", "prompt"),
                                   ("usage_output_tokens_total", "generation_tokens", "output")):
            if s.get(mine) and d.get(theirs) is not None and abs(s[mine] - d[theirs]) > 0.5:
                problems.append(f"server /metrics {what} tokens {d[theirs]:.0f} != usage total {s[mine]}")
    if s.get("usage_missing"):
        problems.append(f"{s['usage_missing']} requests without usage")
    return problems, remarks


if __name__ == "__main__":
    sys.exit(main())
