"""servesim from Python: the simulator's commands as functions, results as DataFrames.

Each function takes the command's flags as keyword arguments, named as on the command
line with underscores (``tensor_parallel_size=2`` is ``--tensor-parallel-size 2``), with
the same defaults, because the native module parses them with the CLI's own definitions.
``True`` passes a switch, ``None`` or ``False`` leaves a flag out, a list or tuple
repeats the flag once per value (``select=["model=llama", "tp=2"]``). Errors raise
:class:`ServesimError` with the CLI's message.

    >>> import servesim
    >>> r = servesim.simulate("traces/azure_conv_5min.csv")
    >>> r.summary["ttft_s"]["p99"]            # summary.json as a dict
    >>> r.requests.head()                     # requests.csv as a pandas DataFrame
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterable, Mapping

from . import _servesim
from ._servesim import ServesimError

__all__ = [
    "ServesimError",
    "SimulationResult",
    "simulate",
    "list_models",
    "list_hardware",
    "list_stacks",
    "sweep",
    "estimate",
    "memory",
    "plan",
    "PlanResult",
    "validate",
    "ValidationResult",
    "__version__",
]

__version__ = _servesim.version()

#: Columns a trace given as a DataFrame or Arrow table must have (the native format);
#: ``request_id``, ``session_id``, ``prefix_hash_ids`` and ``hash_block_tokens`` are
#: optional.
TRACE_COLUMNS = ("arrival_time_s", "input_tokens", "output_tokens")
_OPTIONAL_TRACE_COLUMNS = ("request_id", "session_id", "prefix_hash_ids", "hash_block_tokens")


def _flags(options: Mapping[str, Any]) -> list[str]:
    """Keyword arguments as command-line flags, in the order given."""
    argv: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                argv.extend([flag, os.fspath(v) if isinstance(v, os.PathLike) else str(v)])
        else:
            argv.extend([flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)])
    return argv


def _arrow_table(columns: Mapping[str, list]):
    import pyarrow as pa

    return pa.table(dict(columns))


def _to_arrow(trace):
    """A pandas or polars DataFrame, or a pyarrow Table, as a pyarrow Table."""
    import pyarrow as pa

    if isinstance(trace, pa.Table):
        return trace
    module = type(trace).__module__.split(".")[0]
    if module == "polars":
        return trace.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(trace, preserve_index=False)
    raise TypeError(
        f"a trace is a path, a pandas or polars DataFrame or a pyarrow Table; got {type(trace).__name__}"
    )


def _trace_file(trace, tmpdir: str) -> str:
    """The trace as a native CSV file: a path is used as it is; a table is written
    (its native columns only) into ``tmpdir``."""
    if isinstance(trace, (str, os.PathLike)):
        return os.fspath(trace)
    import pyarrow.csv as pacsv

    table = _to_arrow(trace)
    missing = [c for c in TRACE_COLUMNS if c not in table.column_names]
    if missing:
        raise ServesimError(
            f"trace table: missing column(s) {', '.join(missing)} (needs {', '.join(TRACE_COLUMNS)})"
        )
    keep = [c for c in ("request_id",) + TRACE_COLUMNS + _OPTIONAL_TRACE_COLUMNS[1:] if c in table.column_names]
    path = os.path.join(tmpdir, "trace.csv")
    pacsv.write_csv(table.select(keep), path)
    return path


class SimulationResult:
    """A run's results: ``summary`` (a dict equal to ``summary.json``), ``requests`` and
    ``timeseries`` (pandas DataFrames with ``requests.csv``'s and ``timeseries.csv``'s
    columns, made through Arrow; ``requests_arrow`` / ``timeseries_arrow`` are the
    tables themselves), ``run_name``, and :meth:`to_dir`."""

    def __init__(self, raw: Mapping[str, Any], trace, flags: list[str]):
        self.summary: dict = json.loads(raw["summary_json"])
        self.run_name: str = raw["run_name"]
        self.requests_arrow = _arrow_table(raw["requests"])
        self.timeseries_arrow = _arrow_table(raw["timeseries"])
        self._trace = trace
        self._flags = flags

    @property
    def requests(self):
        """One row per request, in the order they ended (``requests.csv``)."""
        return self.requests_arrow.to_pandas()

    @property
    def timeseries(self):
        """One row per simulated second (``timeseries.csv``'s base columns)."""
        return self.timeseries_arrow.to_pandas()

    def to_dir(self, path: str | os.PathLike) -> str:
        """Write the files the CLI writes (``requests.csv``, ``timeseries.csv``,
        ``summary.json``, ``config.json``, ``distributions.csv``, ``throughput.csv``,
        ``report.html``) into ``path``, by running the same simulation again with that
        output folder (runs are deterministic: the files match this result)."""
        path = os.fspath(path)
        _run(self._trace, self._flags + ["--output-dir", path])
        return path

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"SimulationResult({self.run_name!r}: {s.get('completed')} completed, "
            f"TTFT p50 {s['ttft_s']['p50'] * 1e3:.1f} ms, TPOT p50 {s['tpot_s']['p50'] * 1e3:.2f} ms)"
        )


def _without(argv: list[str], switches: Iterable[str], valued: Iterable[str]) -> list[str]:
    """`argv` without the `switches` and without the `valued` flags and their values."""
    out, skip = [], False
    switches, valued = set(switches), set(valued)
    for a in argv:
        if skip:
            skip = False
        elif a in valued:
            skip = True
        elif a not in switches:
            out.append(a)
    return out


def _run(trace, flags: list[str]) -> Mapping[str, Any]:
    """The native simulate with `trace` (written to a temporary native CSV when it is a
    table) and `flags`; the GIL is released inside."""
    with tempfile.TemporaryDirectory(prefix="servesim-") as tmp:
        argv = list(flags)
        if trace is not None:
            argv = ["--trace", _trace_file(trace, tmp)] + argv
        return _servesim.simulate(argv)


def simulate(trace=None, **options) -> SimulationResult:
    """Replay a request trace through simulated serving replicas (``servesim simulate``).

    ``trace``: a path (any format the CLI reads), a pandas or polars DataFrame or a
    pyarrow Table with the native columns (``arrival_time_s``, ``input_tokens``,
    ``output_tokens``, optionally ``request_id``, ``session_id``, ``hash_block_tokens``),
    or None for the shipped default trace. ``options``: the CLI's flags, e.g.
    ``model="llama-3.1-70b", hardware="h100", tensor_parallel_size=4,
    scheduler="vllm-v1", rate_scale=2.0, seed=1, config="examples/x.toml"``.
    No files are written unless ``output_dir`` is given (or later, with
    :meth:`SimulationResult.to_dir`). The GIL is released while the simulation runs.
    """
    if trace is not None and not isinstance(trace, (str, os.PathLike)):
        trace = _to_arrow(trace)
    flags = _flags(options)
    argv = flags if "output_dir" in options else flags + ["--no-output"]
    raw = _run(trace, argv)
    rerun = [a for a in flags if a != "--no-output"]
    if "output_dir" in options:
        rerun = _without(rerun, (), ("--output-dir",))
    return SimulationResult(raw, trace, rerun)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, os.PathLike)):
        return json.dumps(os.fspath(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"a sweep grid holds numbers, strings, booleans and lists of them; got {type(v).__name__}")


def _toml(grid: Mapping[str, Any]) -> str:
    """A sweep grid (a dict of top-level keys and tables) as TOML text."""
    lines, tables = [], []
    for k, v in grid.items():
        if isinstance(v, Mapping):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _with_config(grid, what: str, run):
    """`run(path)` with `grid` as a TOML file: a path as it is, a dict written to a
    temporary file in the current folder (so that relative paths keep their meaning)."""
    if not isinstance(grid, Mapping):
        return run(os.fspath(grid))
    fd, path = tempfile.mkstemp(prefix=f".servesim-{what}-", suffix=".toml", dir=".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_toml(grid))
        return run(path)
    finally:
        os.unlink(path)


def sweep(grid, **options):
    """Simulate every point of a grid (``servesim sweep``), in parallel as the CLI does;
    one row per point as a DataFrame with ``points.csv``'s columns.

    ``grid``: a sweep TOML file, or a dict with the same keys (``{"name": ..., "grid":
    {"hardware": [...], "tensor-parallel-size": [...]}, "workload": {...}, "slo": {...}}``;
    relative paths in a dict are relative to the current directory). ``options``: the
    CLI's flags (``jobs=``, ``price_per_gpu_hour=[...]``, ``output_dir=`` to also write
    the CLI's files).
    """
    import pandas as pd

    write = options.get("output_dir") is not None
    text = _with_config(grid, "sweep", lambda path: _servesim.sweep(["--config", path] + _flags(options), write))
    return pd.DataFrame(json.loads(text))


def estimate(**options):
    """One static batch through the simulated engine (``servesim estimate``): TTFT, TPOT,
    end-to-end latency, the operator breakdown and the bottleneck, as the dict
    ``--format json`` prints. Several values of ``batch_size``, ``input_len`` or
    ``output_len`` (lists) make a sweep of batches: a DataFrame, one row per batch.
    ``options``: the CLI's flags (``model=``, ``hardware=``, ``tensor_parallel_size=``,
    ``batch_size=``, ``input_len=``, ``output_len=``, ...)."""
    argv = []
    for k, v in options.items():
        # The CLI takes several batch sizes or lengths comma-separated.
        if k in ("batch_size", "input_len", "output_len") and isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        argv += _flags({k: v})
    out = json.loads(_servesim.estimate(argv))
    if isinstance(out, list):
        import pandas as pd

        return pd.DataFrame(out)
    return out


def _list(what: str, options: Mapping[str, Any]):
    import pandas as pd

    rows = json.loads(_servesim.list([what] + _flags(options)))
    return pd.DataFrame(rows)


def list_models(**options):
    """The model catalog (``servesim list models``) as a DataFrame; ``family=``,
    ``min_params=``, ``max_params=`` filter it."""
    return _list("models", options)


def list_hardware(**options):
    """The hardware catalog (``servesim list hardware``) as a DataFrame; ``all=True``
    adds the database tier, ``type=``, ``vendor=``, ``min_memory_gib=`` filter it."""
    return _list("hardware", options)


def list_stacks(**options):
    """The serving stacks (``servesim list stacks``) as a DataFrame."""
    return _list("stacks", options)


def _flat(row: Mapping[str, Any], sep: str = "") -> dict:
    """A JSON object with its nested objects' fields lifted to the top level
    (``{"per_gpu": {"used_gib": 1}}`` is ``{"used_gib": 1}``; with ``sep``, prefixed:
    ``per_gpu_used_gib``)."""
    out: dict = {}
    for k, v in row.items():
        if isinstance(v, Mapping):
            for k2, v2 in _flat(v, sep).items():
                out[f"{k}{sep}{k2}" if sep else k2] = v2
        else:
            out[k] = v
    return out


def memory(**options):
    """Memory per GPU of a deployment (``servesim memory``), as ``--format json``
    prints it.

    ``options``: the CLI's flags (``model=``, ``hardware=``, ``tensor_parallel_size=``,
    ``max_model_len=``, ``min_gpus=True``, ``concurrency=``, ``seq_len=``,
    ``train="lora"``, ``recommend=True``, ``chart="memory.svg"``, ...). Returns:

    - a dict for one deployment's plan (with ``min_gpus=True``: the fewest GPUs), a
      load on one device (``concurrency=`` with ``hardware=``) or a fine-tuning plan
      (``train=``). A plan that does not fit is returned with ``fits`` False and its
      ``shortfall_bytes_per_gpu`` (the CLI prints it, then exits with an error);
    - a DataFrame, one row per catalog device, without ``hardware=`` (the fewest GPUs
      that fit each);
    - a dict whose ``fits`` is a DataFrame (one row per device that fits, nested
      per-GPU figures as columns) and ``do_not_fit`` a list, for a load over the
      catalog (``concurrency=`` without ``hardware=``) or a fine-tuning ranking
      (``recommend=True``).

    ``chart=`` draws the SVG the CLI draws. ``format=`` does not apply.
    """
    import pandas as pd

    out = json.loads(_servesim.memory(_flags(options)))
    if isinstance(out, list):
        return pd.DataFrame(out)
    if isinstance(out.get("fits"), list):
        out["fits"] = pd.DataFrame([_flat(f) for f in out["fits"]])
    return out


class PlanResult:
    """A capacity plan (``servesim plan``): ``summary`` (a dict: ``name``, ``slo`` in
    words, ``tolerance``, ``target_rps``, ``headroom``), ``max_rate`` (a DataFrame with
    ``max_rate.csv``'s columns: the maximum sustainable rate of each configuration, by
    configuration index), ``target`` (``target.csv``'s rows, ranked by $/hour, with
    ``on_frontier``; None without ``target_rps``), and :meth:`to_dir`."""

    def __init__(self, native):
        import pandas as pd

        self._native = native
        out = json.loads(native.json())
        self.max_rate = pd.DataFrame(out.pop("max_rate"))
        target = out.pop("target")
        self.target = None if target is None else pd.DataFrame(target)
        self.summary: dict = out

    def to_dir(self, path: str | os.PathLike) -> str:
        """Write the files the CLI writes (``max_rate.csv``, ``target.csv`` with a target,
        ``frontier.svg``) into ``path``, from this result (nothing is run again)."""
        path = os.fspath(path)
        self._native.write(path)
        return path

    def __repr__(self) -> str:
        n = len(self.max_rate)
        return f"PlanResult({self.summary['name']!r}: {n} configuration{'s' if n != 1 else ''}, {self.summary['slo']})"


def plan(config, **options) -> PlanResult:
    """Capacity planning (``servesim plan``): the maximum sustainable rate of every
    configuration of a grid under an SLO, and with ``target_rps=`` the fewest replicas
    of each for that rate, ranked by cost.

    ``config``: a grid TOML file as for :func:`sweep`, or a dict with the same keys.
    ``options``: the CLI's flags (``slo_ttft_s=``, ``slo_tpot_s=``,
    ``slo_percentile=``, ``slo_attainment=``, ``tolerance=``, ``target_rps=``,
    ``max_replicas=``, ``headroom=``, ``replications=``, ``frontier_latency=``,
    ``jobs=``, ``price_per_gpu_hour=[...]``). No files are written unless
    ``output_dir`` is given (or later, with :meth:`PlanResult.to_dir`). The searches run
    in parallel with the GIL released.
    """
    native = _with_config(config, "plan", lambda path: _servesim.plan(["--config", path] + _flags(options)))
    return PlanResult(native)


def _comparison_frame(columns: Mapping[str, list]):
    """``comparison.csv``'s columns as a DataFrame: key columns that are all numbers
    become numbers, the others stay text."""
    import pandas as pd

    df = pd.DataFrame(dict(columns))
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            try:
                df[c] = pd.to_numeric(df[c])
            except (ValueError, TypeError):
                pass
    return df


def _metrics_frame(validation: Mapping[str, Any]):
    """One row per metric of a ``validation.json``: ``metric``, then the simulated and
    measured quantiles and the errors as ``simulated_p50``, ``errors_mape_pct``, ..."""
    import pandas as pd

    return pd.DataFrame([_flat(m, "_") for m in validation.get("metrics", [])])


class ValidationResult:
    """A measurement compared with its simulation (``servesim validate``).

    ``kind`` is ``"run"`` for one measured run, ``"sets"`` for a table validated set by
    set. ``summary``: ``validation.json`` (a run) or ``summary.json`` (sets) as a dict.
    ``comparison``: ``comparison.csv``'s rows as a DataFrame (key columns, then
    ``measured_*``, ``simulated_*`` and ``error_*_pct`` per metric); for sets, every
    set's rows with a leading ``set`` column. ``metrics``: the errors per metric
    (``metric``, ``errors_median_abs_pct``, ``errors_mape_pct``, ``errors_bias_pct``,
    ``errors_pearson_r``, the simulated and measured quantiles); for sets, with a
    leading ``set`` column. ``sets``: ``summary.json``'s sets as a DataFrame (None for
    a run); :meth:`set` gives one set's result. :meth:`to_dir` writes the CLI's files.
    """

    def __init__(self, native, set_name: str | None = None):
        self._native = native
        self._set = set_name
        self.kind: str = "run" if set_name is not None else native.kind()
        self.name: str = set_name if set_name is not None else native.name()
        if set_name is None:
            self.summary: dict = json.loads(native.summary())
        else:
            self.summary = json.loads(native.validation(set_name))

    def _names(self) -> list[str]:
        return [] if self.kind == "run" else self._native.sets()

    @property
    def comparison(self):
        """The per-row comparison (``comparison.csv``)."""
        import pandas as pd

        if self.kind == "run":
            return _comparison_frame(self._native.comparison(self._set))
        frames = [_comparison_frame(self._native.comparison(n)).assign(set=n) for n in self._names()]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        return df[["set"] + [c for c in df.columns if c != "set"]]

    @property
    def metrics(self):
        """The errors per metric."""
        import pandas as pd

        if self.kind == "run":
            return _metrics_frame(self.summary)
        frames = []
        for n in self._names():
            m = _metrics_frame(json.loads(self._native.validation(n)))
            m.insert(0, "set", n)
            frames.append(m)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def sets(self):
        """One row per set of a table (``summary.json``'s ``sets``, nested errors as
        ``ttft_errors_mape_pct``, ...); None for a run."""
        import pandas as pd

        if self.kind == "run":
            return None
        return pd.DataFrame([_flat(s, "_") for s in self.summary.get("sets", [])])

    def set(self, name: str) -> "ValidationResult":
        """The result of one set of a table (a run's result: its ``summary`` is the
        set's ``validation.json``)."""
        if self.kind == "run":
            raise ServesimError("a measured run has no sets")
        return ValidationResult(self._native, name)

    def to_dir(self, path: str | os.PathLike) -> str:
        """Write the files the CLI writes into ``path``, from this result (nothing is
        run again): ``validation.json``, ``comparison.csv`` and ``validation.svg`` for a
        run (or one set); ``summary.json`` and a folder per set for a table."""
        path = os.fspath(path)
        self._native.write(path, self._set)
        return path

    def __repr__(self) -> str:
        if self.kind == "run":
            return f"ValidationResult({self.name!r}: {len(self.summary.get('metrics', []))} metrics)"
        return f"ValidationResult({self.name!r}: {len(self._names())} sets)"


def validate(measurement, **options) -> ValidationResult:
    """Replay a measured benchmark through the simulator and compare
    (``servesim validate``).

    ``measurement``: a path the CLI reads (a vLLM benchmark result, an LLMServingSim
    run folder or requests.jsonl, a per-request CSV, a GenZ-style table, an Argonne or
    Splitwise static-batch table, a TensorRT-LLM throughput table, an AIConfigurator
    serving summary). ``options``: the CLI's flags (``model=``, ``hardware=``,
    ``tensor_parallel_size=``, ``max_num_seqs=``, ``num_replicas=``, ``seed=``,
    ``select=["model=llama", "tp=2"]``, ``format=`` for the input's format,
    ``config=``, ``name=``, ...). No files are written unless ``output_dir`` is given
    (or the ``config`` file names one), or later with :meth:`ValidationResult.to_dir`.
    The simulation runs with the GIL released.
    """
    return ValidationResult(_servesim.validate([os.fspath(measurement)] + _flags(options)))
