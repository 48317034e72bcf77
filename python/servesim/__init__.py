"""servesim from Python: the simulator's commands as functions, results as DataFrames.

Each function takes the command's flags as keyword arguments, named as on the command
line with underscores (``tensor_parallel_size=2`` is ``--tensor-parallel-size 2``), with
the same defaults, because the native module parses them with the CLI's own definitions.
``True`` passes a switch, ``None`` or ``False`` leaves a flag out, a list or tuple
passes several values. Errors raise :class:`ServesimError` with the CLI's message.

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
            argv.append(flag)
            argv.extend(str(v) for v in value)
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
    if isinstance(grid, Mapping):
        # In the current folder, so that relative paths keep their meaning.
        fd, path = tempfile.mkstemp(prefix=".servesim-sweep-", suffix=".toml", dir=".")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(_toml(grid))
            text = _servesim.sweep(["--config", path] + _flags(options), write)
        finally:
            os.unlink(path)
    else:
        text = _servesim.sweep(["--config", os.fspath(grid)] + _flags(options), write)
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
