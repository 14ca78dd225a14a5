"""The score store: scoring runs under `settings.score_store`, written atomically.

Layout:

    scores/
      runs/<run_id>/run.json        run metadata: month, model, extract manifest, counts, drift
      runs/<run_id>/people.parquet  one row per eligible person (see scoring.rules.build_list)
      runs/<run_id>/features.parquet  the model inputs the run scored: person_id and the model's
                                    feature columns (float), one row per people.parquet row
      runs/<run_id>/summary.md      the run summary
      months/<YYYY-MM>.json         which run is current for the month, and the history
      .staging/                     runs being written (never read)

A run is written into `.staging/<host>-<pid>-<random>/` and renamed into `runs/<run_id>/` only
when complete, so a run is either wholly there or not there; the month pointer is replaced
atomically after that. Every file is readable by its owner only (0600, folders 0700: they hold
person-level scores) and flushed to disk (fsync) before the rename. A writer that was killed
leaves its staging folder behind; the next write on the same host removes folders whose process
is gone.
A failure at any point leaves the previous runs and the pointer as they were. Runs are never
rewritten: the run id is a fingerprint of month, model version, extract, list rules and the
earlier months' current runs (`history`), so the same inputs give the same id and the stored run
is reused. The month-on-month flags of a run follow the earlier months' current runs when they
change after it (`people`, `scoring.history`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from features.dates import Month

RUN_FILE = "run.json"
PEOPLE_FILE = "people.parquet"
FEATURES_FILE = "features.parquet"
SUMMARY_FILE = "summary.md"
# How old the months folder must be before its pointers are kept in memory (`_pointers`): longer
# than any file system's timestamp tick (ext4 and XFS ~4 ms, NFS and FAT up to 2 s).
SNAPSHOT_SETTLE_NS = 2_000_000_000


class StoreError(Exception):
    """A run or month the store does not hold, or a store in a state it cannot read."""


class FeaturesMissing(StoreError):
    """A stored run without its model inputs (written before runs kept them)."""


@dataclass
class ScoringRun:
    """Everything one scoring run writes: metadata, the per-person table, the model inputs it
    scored (person_id and the model's features as float, in `people`'s row order) and the
    summary."""

    run_id: str
    month: str
    meta: dict[str, Any]
    people: pd.DataFrame
    features: pd.DataFrame | InputBatches
    summary: str


class InputBatches(Protocol):
    """Model inputs too large to hold, given a frame at a time in the run's order
    (`scoring.inputs.SpooledInputs`)."""

    def batches(self) -> Iterator[pd.DataFrame]: ...


def _seal(path: Path) -> None:
    """Owner-only and on disk: chmod 0600, then fsync."""
    os.chmod(path, 0o600)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    _seal(path)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False, compression="zstd")
    _seal(path)


def _staging_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _check_features(features: pd.DataFrame, person_ids: pd.Series, run_id: str) -> None:
    """The model inputs must be one row per person of the run, in the run's order."""
    if "person_id" not in features.columns:
        raise StoreError(f"model inputs of run {run_id!r} have no person_id column")
    ids = features["person_id"].astype(str).to_numpy()
    if len(ids) != len(person_ids) or not (ids == person_ids.astype(str).to_numpy()).all():
        raise StoreError(
            f"model inputs of run {run_id!r} do not match its people: {len(features):,} input "
            f"rows for {len(person_ids):,} people, or in another order"
        )


def _write_input_batches(
    batches: Iterator[pd.DataFrame], person_ids: pd.Series, path: Path, run_id: str
) -> None:
    """Write model inputs given a frame at a time to `path`, checking as they come that they
    are one row per person of the run, in the run's order (`_check_features`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = person_ids.astype(str).to_numpy()
    start, writer = 0, None
    try:
        for frame in batches:
            if "person_id" not in frame.columns:
                raise StoreError(f"model inputs of run {run_id!r} have no person_id column")
            part = frame["person_id"].astype(str).to_numpy()
            if start + len(part) > len(ids) or not (part == ids[start : start + len(part)]).all():
                raise StoreError(
                    f"model inputs of run {run_id!r} do not match its people: more rows than its "
                    f"{len(ids):,} people, or in another order (from input row {start:,})"
                )
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            start += len(part)
    finally:
        if writer is not None:
            writer.close()
    if writer is None or start != len(ids):
        raise StoreError(
            f"model inputs of run {run_id!r} do not match its people: {start:,} input rows for "
            f"{len(ids):,} people"
        )
    _seal(path)


def _replace_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    _write_json(tmp, data)  # sealed: 0600 and fsynced
    os.replace(tmp, path)


class ScoreStore:
    """Scoring runs on disk (Parquet + JSON) under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.months_dir = self.root / "months"
        self.staging_dir = self.root / ".staging"
        self._snapshot: tuple[tuple[int, int, int], dict[str, dict[str, Any]]] | None = None

    # Writing
    def clean_staging(self) -> list[str]:
        """Remove staging folders left by writers on this host whose process is gone (a killed
        `score`); returns their names. Folders of live writers and other hosts are kept."""
        if not self.staging_dir.is_dir():
            return []
        host, removed = socket.gethostname(), []
        for folder in self.staging_dir.iterdir():
            owner, _, rest = folder.name.rpartition("-")[0].rpartition("-")
            pid = int(rest) if rest.isdigit() else None
            legacy = "-" not in folder.name  # written before folders named their writer
            if legacy or (owner == host and pid is not None and _process_gone(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed

    def write(self, run: ScoringRun) -> Path:
        """Store `run` (unless a run with its id is already stored) and make it the month's
        current run. Returns the run's folder."""
        month = Month(run.month)
        final = self.runs_dir / run.run_id
        if not final.is_dir():
            for folder in (self.root, self.runs_dir, self.months_dir, self.staging_dir):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.clean_staging()
            staging = self.staging_dir / _staging_name()
            staging.mkdir(mode=0o700)
            try:
                inputs, ids = run.features, run.people["person_id"]
                if isinstance(inputs, pd.DataFrame):
                    _check_features(inputs, ids, run.run_id)
                _write_parquet(run.people, staging / PEOPLE_FILE)
                if isinstance(inputs, pd.DataFrame):
                    _write_parquet(inputs, staging / FEATURES_FILE)
                else:
                    _write_input_batches(inputs.batches(), ids, staging / FEATURES_FILE, run.run_id)
                (staging / SUMMARY_FILE).write_text(run.summary, "utf-8")
                _seal(staging / SUMMARY_FILE)
                _write_json(staging / RUN_FILE, {**run.meta, "run_id": run.run_id, "month": month})
                _fsync_folder(staging)
                try:
                    os.rename(staging, final)
                except OSError:
                    if not (final / RUN_FILE).is_file():  # not a concurrent writer of the same run
                        raise
                _fsync_folder(self.runs_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        self.set_current(month, run.run_id)
        return final

    def add_features(self, run_id: str, features: pd.DataFrame) -> Path:
        """Give a run stored without model inputs its inputs (they must be one row per person of
        the run, in its order). The file appears whole or not at all; the run's other files are
        not touched. Returns the file's path."""
        path = self.runs_dir / run_id / FEATURES_FILE
        _check_features(features, self.people(run_id, columns=["person_id"])["person_id"], run_id)
        tmp = path.with_name(f".{FEATURES_FILE}.{uuid.uuid4().hex}.tmp")
        try:
            _write_parquet(features, tmp)  # sealed: 0600 and fsynced
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def set_current(self, month: str, run_id: str) -> None:
        """Make `run_id` the current run of `month` (atomic replace of the month pointer)."""
        month = Month(month)
        if not (self.runs_dir / run_id / RUN_FILE).is_file():
            raise StoreError(f"no stored run {run_id!r}")
        self.months_dir.mkdir(parents=True, exist_ok=True)
        with open(self.months_dir / ".lock", "w") as lock:  # one pointer update at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            pointer = self._pointer(month)
            history = pointer.get("history", [])
            history.append({"run_id": run_id, "made_current": datetime.now(UTC).isoformat()})
            _replace_atomically(
                self.months_dir / f"{month}.json",
                {"month": month, "current": run_id, "history": history},
            )

    # Reading
    def _pointer(self, month: str) -> dict[str, Any]:
        """The month's pointer as it is on disk now (what a pointer update must read)."""
        path = self.months_dir / f"{month}.json"
        if not path.is_file():
            return {}
        return json.loads(path.read_text("utf-8"))

    def _pointers(self) -> dict[str, dict[str, Any]]:
        """Every month's pointer, month -> pointer. Read again whenever the months folder has
        changed (a pointer is only ever replaced by a rename into it, which changes the folder's
        modification time), else kept: a service request resolves months without reading files.
        A snapshot is kept only once the folder is older than `SNAPSHOT_SETTLE_NS`, so two
        updates within one tick of the file system's clock cannot hide the second."""
        try:
            st = os.stat(self.months_dir)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] == stamp:
            return snapshot[1]
        pointers = {}
        for path in sorted(self.months_dir.glob("*.json")):
            try:
                pointers[path.stem] = json.loads(path.read_text("utf-8"))
            except FileNotFoundError:  # removed since the listing (a pointer is never renamed away)
                continue
        if time.time_ns() - st.st_mtime_ns > SNAPSHOT_SETTLE_NS:
            self._snapshot = (stamp, pointers)  # one assignment: readers see old or new whole
        return pointers

    def has_run(self, run_id: str) -> bool:
        return (self.runs_dir / run_id / RUN_FILE).is_file()

    def current_run_id(self, month: str) -> str | None:
        """The current run of `month`, or None when the month has not been scored."""
        return self._pointers().get(str(Month(month)), {}).get("current")

    def resolve(self, month: str | None = None, run_id: str | None = None) -> str:
        """`run_id` if given (checked), else the current run of `month`; StoreError otherwise."""
        if run_id is not None:
            if not self.has_run(run_id):
                raise StoreError(f"no stored run {run_id!r} in {self.root}")
            return run_id
        if month is None:
            raise StoreError("give a month or a run id")
        current = self.current_run_id(month)
        if current is None:
            raise StoreError(f"month {month} has not been scored (no run in {self.root})")
        return current

    def history(self, month: str) -> dict[str, str]:
        """The current run of every scored month before `month`: the runs its month-on-month
        flags are computed against."""
        month = Month(month)
        runs = {m: self.current_run_id(m) for m in self.months() if m < month}
        return {m: run_id for m, run_id in runs.items() if run_id}

    def meta(self, run_id: str) -> dict[str, Any]:
        """The run's metadata, with `current`: whether it is its month's current run, and
        `history_changed`: whether earlier months' current runs differ from those its stored
        flags, counts and summary were computed against (its lists' flags follow them anyway)."""
        path = self.runs_dir / run_id / RUN_FILE
        if not path.is_file():
            raise StoreError(f"no stored run {run_id!r} in {self.root}")
        meta = json.loads(path.read_text("utf-8"))
        meta["current"] = self.current_run_id(meta["month"]) == run_id
        meta["history_changed"] = meta.get("history") != self.history(meta["month"])
        return meta

    def people(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The run's per-person table (optionally only `columns`), its month-on-month flags
        (`scoring.history.MONTH_COLUMNS`) true of the earlier months' current runs now: they
        are recomputed when an earlier month was scored, or re-scored, after this run."""
        from scoring.history import MONTH_COLUMNS, refresh_month_columns

        if columns is not None and not set(columns) & set(MONTH_COLUMNS):
            return self.stored_people(run_id, columns)
        meta = self.meta(run_id)
        if not meta["history_changed"]:
            return self.stored_people(run_id, columns)
        people = refresh_month_columns(
            self.stored_people(run_id),
            meta,
            self.previous_list(meta["month"]),
            self.listed_before(meta["month"]),
        )
        return people if columns is None else people[columns]

    def stored_people(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The run's per-person table as it was written (optionally only `columns`)."""
        path = self.runs_dir / run_id / PEOPLE_FILE
        if not path.is_file():
            raise StoreError(f"no stored run {run_id!r} in {self.root}")
        return pd.read_parquet(path, columns=columns)

    def has_features(self, run_id: str) -> bool:
        return (self.runs_dir / run_id / FEATURES_FILE).is_file()

    def features(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The model inputs the run scored: person_id and the model's features (float), one row
        per person of the run (optionally only `columns`). FeaturesMissing for a run stored
        before runs kept their inputs."""
        if not self.has_features(run_id):
            meta = self.meta(run_id)  # StoreError when there is no such run
            raise FeaturesMissing(
                f"run {run_id!r} has no stored model inputs ({FEATURES_FILE}): it was scored "
                "before runs kept them. Re-score its month to add them: `casefinder score "
                f"<extract folder> --month {meta['month']} --model {meta['model']['version']}`"
            )
        return pd.read_parquet(self.runs_dir / run_id / FEATURES_FILE, columns=columns)

    def summary(self, run_id: str) -> str:
        """The run summary; with a note when earlier months were scored (or re-scored) since,
        so its month-on-month counts are out of date."""
        path = self.runs_dir / run_id / SUMMARY_FILE
        if not path.is_file():
            raise StoreError(f"no stored run {run_id!r} in {self.root}")
        text = path.read_text("utf-8")
        meta = self.meta(run_id)
        if meta["history_changed"]:
            text += (
                f"\n**Note:** earlier months were scored after this run, so the month-on-month "
                f"counts above (new this month, on last month's list, risk risen, moved segment) "
                f"are out of date; its lists show the flags as they are now. Score "
                f"{meta['month']} again for a summary with them: `casefinder score "
                f"<extract folder> --month {meta['month']}`.\n"
            )
        return text

    def months(self) -> list[str]:
        """Months with a current run, oldest first."""
        return sorted(self._pointers())

    def runs(self, month: str | None = None) -> list[dict[str, Any]]:
        """Metadata of every stored run (of `month` if given), oldest month first."""
        if not self.runs_dir.is_dir():
            return []
        metas = [self.meta(p.name) for p in sorted(self.runs_dir.iterdir()) if p.is_dir()]
        if month is not None:
            metas = [m for m in metas if m["month"] == Month(month)]
        return sorted(metas, key=lambda m: (m["month"], m.get("created", "")))

    def previous_list(self, month: str) -> pd.DataFrame | None:
        """person_id, probability, listed (and segment, for runs that kept segments) of the
        current run of the month before `month`."""
        run_id = self.current_run_id(Month(month).previous())
        if run_id is None:
            return None
        import pyarrow.parquet as pq

        names = pq.read_schema(self.runs_dir / run_id / PEOPLE_FILE).names
        columns = ["person_id", "probability", "listed"]
        return self.stored_people(run_id, columns + [c for c in ("segment",) if c in names])

    def listed_before(self, month: str) -> set[str]:
        """Everyone listed in the current run of any month before `month`."""
        month = Month(month)
        ids: set[str] = set()
        for earlier in self.months():
            run_id = self.current_run_id(earlier) if earlier < month else None
            if run_id:
                table = self.stored_people(run_id, columns=["person_id", "listed"])
                ids.update(table.loc[table["listed"], "person_id"].astype(str))
        return ids
