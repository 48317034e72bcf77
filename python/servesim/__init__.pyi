"""Type stubs of the servesim package (see servesim/__init__.py for the docs)."""

import os
from typing import Any, Union

import pandas as pd
import pyarrow as pa

__version__: str
TRACE_COLUMNS: tuple[str, ...]

class ServesimError(Exception):
    """An error servesim reported (the CLI's message: file, line and field, or flag)."""

Trace = Union[str, os.PathLike[str], pd.DataFrame, pa.Table, Any]

class SimulationResult:
    summary: dict[str, Any]
    run_name: str
    requests_arrow: pa.Table
    timeseries_arrow: pa.Table
    @property
    def requests(self) -> pd.DataFrame: ...
    @property
    def timeseries(self) -> pd.DataFrame: ...
    def to_dir(self, path: Union[str, os.PathLike[str]]) -> str: ...

def simulate(trace: Trace | None = None, **options: Any) -> SimulationResult: ...
def sweep(grid: Union[str, os.PathLike[str], dict[str, Any]], **options: Any) -> pd.DataFrame: ...
def estimate(**options: Any) -> Union[dict[str, Any], pd.DataFrame]: ...
def list_models(**options: Any) -> pd.DataFrame: ...
def list_hardware(**options: Any) -> pd.DataFrame: ...
def list_stacks(**options: Any) -> pd.DataFrame: ...
