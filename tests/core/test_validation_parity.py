"""MLTrack refuses at the call exactly what MLflow or one of its stores would refuse (issue 11).

Each generated input goes to a real MLTrack logging call and to MLflow itself, and the
verdicts must agree:

    MLTrack accepts  <=>  MLflow's client and validators accept
                          and every store accepts (sqlite, mlflow server on PostgreSQL)
                          and MLTrack's stated policy allows it

"MLflow's client and validators" is what ``MlflowClient`` does before any store sees
the data: ``convert_metric_value_to_float_if_possible`` and ``str(value)``, then
``_validate_metric`` / ``_validate_param`` / ``_validate_tag`` (with truncation of
long values off: MLTrack stores values as given or refuses them). The stores are real:
the sqlite tests log every input into a run of their own sqlite store, the server tests
into a run of a real ``mlflow server`` on PostgreSQL, in the order MLTrack saw them (so
an immutable param's second value is refused by both). At the end, what MLTrack stored
must equal what the reference run holds: accepted means stored, exactly.

Inputs MLTrack refuses that MLflow's validators accept are each sent to the stores
alone: at least one must refuse it. The sqlite-only tests take the server's extra
refusals from ``refused_by_the_server`` (which the server tests prove live), so they
run without PostgreSQL.

Generated inputs (one per Hypothesis example): the sqlite tests check 1,000 metric, 500
param, 400 tag and 120 start_run inputs (2,020); the server tests 330 more. Examples are
derandomized, so CI sees the same inputs every run. Accepted inputs reach the reference
stores in batches (a log_batch per input would take minutes).
"""

from __future__ import annotations

import numbers
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pytest
from conftest import fresh_sqlite_uri
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking.metric_value_conversion_utils import convert_metric_value_to_float_if_possible
from mlflow.utils.validation import _validate_metric, _validate_param, _validate_tag

import mltrack

# MLflow's client converts a numpy complex value by dropping its imaginary part, with a warning
pytestmark = pytest.mark.filterwarnings("ignore:Casting complex values to real discards the imaginary part")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# -- strategies ---------------------------------------------------------------------------------

EDGE_NAMES = [
    *[".", "..", "a/", "a//b", "..a", "/a", "a/.", "./a", "a/./b", "a/../b", "//a", "a/b/"],
    *[" a", "a ", " ", "a\n", "\n", "", "a\nb", "a\n\n", "\na", "a\tb", "a:b", "a#b", "a\\b", "a\x00b"],
    *["loss\ud800", "\udfff", "größe", "損失", "٣", "a\u3000b", "k" * 250, "k" * 251, "é" * 250, "é" * 251],
]
ANY_CHARACTER = st.characters(exclude_categories=[])  # every code point, lone surrogates included


def names() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(EDGE_NAMES),
        # a small alphabet, so that names repeat (a param's second value) and paths form
        st.text(st.sampled_from([*"ab_-. :/\n1", "é", "\ud800", "\x00", "\u3000"]), max_size=6),
        st.text(ANY_CHARACTER, max_size=10),
        st.builds(lambda n: "k" * n, st.integers(245, 255)),
    )


def keys() -> st.SearchStrategy[Any]:
    """Names of every kind; plain ones often, so a param's name comes again with another value."""
    plain = st.sampled_from(["a", "b", "loss", "train/loss", "opt.lr"])
    return st.one_of(plain, names(), names(), non_string_names())


def non_string_names() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.integers(),
        st.binary(max_size=3),
        st.lists(st.text(max_size=2), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    )


def _numpy(kind: str) -> Any:
    return {
        "array": np.array([1.0, 2.0]),
        "one-element": np.array([0.5]),
        "empty": np.array([]),
        "0-d": np.array(3),
        "0-d float": np.array(2.5),
        "int array": np.array([1, 2]),
        "np.float64 2.0": np.float64(2.0),
        "np.uint64 max": np.uint64(2**64 - 1),
        "np.int32": np.int32(-5),
        "np.bool_": np.bool_(True),
        "np.complex": np.complex128(1 + 2j),
    }[kind]


def numpy_oddities() -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [
            "array",
            "one-element",
            "empty",
            "0-d",
            "0-d float",
            "int array",
            "np.float64 2.0",
            "np.uint64 max",
            "np.int32",
            "np.bool_",
            "np.complex",
        ]
    ).map(_numpy)


def metric_values() -> st.SearchStrategy[Any]:
    largest = 2**1024 - 2**970  # float(largest) overflows (it rounds up); one less fits
    return st.one_of(
        st.floats(),  # nan, +/-inf, subnormals, -0.0
        st.integers(),
        st.sampled_from([10**400, -(10**400), 2**1024, largest, largest - 1, -(largest - 1), 2**53 + 1]),
        st.booleans(),
        st.floats(width=32).map(np.float32),
        st.floats().map(np.float64),
        st.integers(-(2**63), 2**63 - 1).map(np.int64),
        st.lists(st.floats(), max_size=2).map(np.array),
        st.floats().map(np.array),
        numpy_oddities(),
        st.sampled_from(["0.5", "abc", "", "nan", b"1"]),
        st.none(),
        st.complex_numbers(max_magnitude=10),
    )


def int64_edges(low: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(2**63 - 2, 2**63 + 1),
        st.integers(low - 1, low + 1),
        st.sampled_from([10**30, -(10**30), 10**400]),
    )


def steps() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.integers(-3, 3),
        st.integers(),
        int64_edges(-(2**63)),
        st.booleans(),
        st.floats(),
        st.integers(-(2**63), 2**63 - 1).map(np.int64),
        numpy_oddities(),
        st.just("3"),
    )


def timestamps() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(0, 2_000_000_000_000),
        st.integers(-3, 3),
        int64_edges(0),
        st.booleans(),
        st.floats(),
        st.integers(0, 2**63 - 1).map(np.int64),
        numpy_oddities(),
    )


def texts(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "a", " a ", "\x00", "a\x00b", "\ud800", "x\udfffy", "😀", "a\nb", "\uffff"]),
        st.text(ANY_CHARACTER, max_size=12),  # NUL, lone surrogates, anything
        st.text(st.sampled_from(["a", " ", "\x00", "é", "😀", "\ud800", "\n"]), max_size=6),
        # at the length limit, in characters of 1, 2 and 4 UTF-8 bytes
        st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "é", "😀"]), st.sampled_from([limit, limit + 1])),
    )


def scalar_values(limit: int) -> st.SearchStrategy[Any]:
    return st.one_of(texts(limit), st.integers(), st.floats(), st.booleans(), st.none())


@dataclass
class Case:
    """One logging call's input: a metric point, a param or a tag."""

    kind: str
    key: Any
    value: Any
    step: Any = None
    timestamp: Any = 0
    batch: bool = False  # log_metrics / log_params / set_tags instead of the one-item call

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={_short(getattr(self, name))}" for name in ("key", "value", "step", "timestamp"))
        return f"Case({self.kind}, {shown}, batch={self.batch})"

    def log_with_mltrack(self) -> None:
        batch = self.batch and _hashable(self.key)
        if self.kind == "metric":
            if batch:
                mltrack.log_metrics({self.key: self.value}, step=self.step, timestamp=self.timestamp)
            else:
                mltrack.log_metric(self.key, self.value, step=self.step, timestamp=self.timestamp)
        elif self.kind == "param":
            mltrack.log_params({self.key: self.value}) if batch else mltrack.log_param(self.key, self.value)
        else:
            mltrack.set_tags({self.key: self.value}) if batch else mltrack.set_tag(self.key, self.value)

    def as_mlflow_entity(self) -> Metric | Param | RunTag:
        """What MlflowClient.log_metric / log_param / set_tag would send for this input.

        numpy integer steps and timestamps become ints, as MLTrack stores them: given
        as they are, sqlite would store them as blobs.
        """
        if self.kind == "metric":
            step = 0 if self.step is None else self.step
            return Metric(self.key, self.value, _plain_int(self.timestamp), _plain_int(step))
        entity = Param if self.kind == "param" else RunTag
        return entity(self.key, str(self.value))


def _short(value: Any) -> str:
    """A repr that stays readable for 8,000-character values."""
    text = repr(value)
    if len(text) <= 80:
        return text
    return f"{text[:60]}...{text[-10:]} ({len(value) if isinstance(value, str) else '?'} characters)"


def _plain_int(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def metric_cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        kind=st.just("metric"),
        key=keys(),
        value=metric_values(),
        step=steps(),
        timestamp=timestamps(),
        batch=st.booleans(),
    )


def param_cases() -> st.SearchStrategy[Case]:
    return st.builds(Case, kind=st.just("param"), key=keys(), value=scalar_values(6000), batch=st.booleans())


def tag_cases() -> st.SearchStrategy[Case]:
    return st.builds(Case, kind=st.just("tag"), key=keys(), value=scalar_values(8000), batch=st.booleans())


# -- the verdicts ---------------------------------------------------------------------------------


def mltrack_accepts(case: Case) -> bool:
    """MLTrack's verdict. Any exception other than a refusal fails the test."""
    try:
        case.log_with_mltrack()
    except mltrack.InvalidInputError:
        return False
    return True


def mlflow_accepts(case: Case) -> bool:
    """The verdict of MLflow's client conversion and validators, before any store."""
    try:
        entity = case.as_mlflow_entity()
        if isinstance(entity, Metric):
            value = convert_metric_value_to_float_if_possible(entity.value)
            _validate_metric(entity.key, value, entity.timestamp, entity.step)
        elif isinstance(entity, Param):
            _validate_param(entity.key, entity.value)
        else:
            _validate_tag(entity.key, entity.value)
    except Exception:
        return False
    return True


def mltrack_policy_refuses(case: Case) -> bool:
    """Where MLTrack is stricter than MLflow on purpose (docs/user-guide.md gives the reasons).

    A metric value that is a string is refused, not parsed ("0.5" is usually a bug), and
    a complex one rather than stored without its imaginary part.
    """
    value = case.value
    return case.kind == "metric" and isinstance(value, (str, bytes, complex, np.complexfloating))


def refused_by_the_server(case: Case) -> bool:
    """What an ``mlflow server`` on PostgreSQL refuses although MLflow's validators and
    sqlite accept it. The server tests below prove each of these live.

    - a step or timestamp that is not an integer (a float, a bool): the REST protocol's
      int64 protobuf fields refuse it;
    - a param or tag value with a NUL character: PostgreSQL text cannot hold one.
    """
    if case.kind == "metric":
        return any(
            isinstance(number, bool) or not isinstance(number, numbers.Integral)
            for number in (0 if case.step is None else case.step, case.timestamp)
        )
    try:
        return "\x00" in str(case.value)
    except ValueError:
        return False


# -- reference runs in real stores ----------------------------------------------------------------


@dataclass
class ReferenceRun:
    """A run in a real store that gets the same inputs as MLTrack, in the same order."""

    name: str
    uri: str
    run_id: str = ""
    client: Any = None
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, RunTag] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = mlflow.MlflowClient(self.uri)
        self.run_id = self.client.create_run("0").info.run_id

    refusals: list[str] = field(default_factory=list)

    def add(self, case: Case) -> None:
        """Queue an input MLTrack accepted; it is sent with the next batch."""
        entity = case.as_mlflow_entity()
        if isinstance(entity, Metric):
            self.metrics.append(entity)
        elif isinstance(entity, Param):
            self.params.setdefault(entity.key, entity)  # the same value again: a no-op
        else:
            self.tags[entity.key] = entity  # a later value replaces an earlier one
        if len(self.metrics) >= 900 or len(self.params) >= 90 or len(self.tags) >= 90:  # MLflow's batch limits
            self.flush()

    def flush(self) -> None:
        """Send what is queued. A refusal is recorded (and asserted on after the examples),
        since the input that caused it belongs to an earlier Hypothesis example."""
        metrics, params, tags = self.metrics, list(self.params.values()), list(self.tags.values())
        self.metrics, self.params, self.tags = [], {}, {}
        if not (metrics or params or tags):
            return
        try:
            self.client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)
        except Exception as exc:
            for entity in [*metrics, *params, *tags]:  # name the input, not just the batch
                try:
                    self._log_one(entity)
                except Exception as one:
                    self.refusals.append(f"MLTrack accepted {entity!r}, but the {self.name} store refused it: {one}")
            if not self.refusals:
                self.refusals.append(f"the {self.name} store refused a batch MLTrack accepted: {exc}")

    def accepts_alone(self, case: Case) -> bool:
        self.flush()  # what came before it first, as MLTrack saw it
        try:
            self._log_one(case.as_mlflow_entity())
        except Exception:
            return False
        return True

    def _log_one(self, entity: Metric | Param | RunTag) -> None:
        kind = {Metric: "metrics", Param: "params", RunTag: "tags"}[type(entity)]
        self.client.log_batch(self.run_id, **{kind: [entity]})


@dataclass
class Parity:
    """Feeds generated inputs to MLTrack and the reference runs and compares verdicts."""

    references: list[ReferenceRun]
    server_rules_assumed: bool  # True without a live server: take refused_by_the_server as given
    accepted: list[Case] = field(default_factory=list)

    def check(self, case: Case) -> None:
        validators = mlflow_accepts(case)
        policy = mltrack_policy_refuses(case)
        server = self.server_rules_assumed and refused_by_the_server(case)
        if mltrack_accepts(case):
            assert validators, f"MLTrack accepted {case!r}, which MLflow's validators refuse"
            assert not policy, f"MLTrack accepted {case!r}, which its policy refuses"
            assert not server, f"MLTrack accepted {case!r}, which the server refuses"
            for reference in self.references:
                reference.add(case)
            self.accepted.append(case)
        elif validators and not policy and not server:
            refusing = [ref.name for ref in self.references if not ref.accepts_alone(case)]
            assert refusing, f"MLTrack refused {case!r}, which MLflow and every store accept"

    def finish(self) -> None:
        for reference in self.references:
            reference.flush()
        assert [r for ref in self.references for r in ref.refusals] == []

    def assert_stored_alike(self, mltrack_uri: str, run_id: str, reference: ReferenceRun) -> None:
        """What MLTrack accepted is in its run, exactly as the reference run holds it."""
        mltrack.flush()
        mine = mlflow.MlflowClient(mltrack_uri).get_run(run_id).data
        theirs = reference.client.get_run(reference.run_id).data
        assert mine.params == theirs.params
        tag_keys = {case.key for case in self.accepted if case.kind == "tag"}
        assert {k: mine.tags.get(k) for k in tag_keys} == {k: theirs.tags.get(k) for k in tag_keys}
        metric_keys = {case.key for case in self.accepted if case.kind == "metric"}
        assert _metric_rows(mltrack_uri, run_id, metric_keys) == _metric_rows(
            reference.uri, reference.run_id, metric_keys
        )


def _metric_rows(uri: str, run_id: str, keys: set[str]) -> set[tuple[Any, ...]]:
    if uri.startswith("sqlite:///"):  # one query instead of a history call per key
        with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
            rows = db.execute(
                "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?", (run_id,)
            ).fetchall()
        return {row for row in rows if row[0] in keys}  # not metrics a plugin may add
    client = mlflow.MlflowClient(uri)
    return {
        (key, repr(point.value), point.timestamp, point.step)
        for key in keys
        for point in client.get_metric_history(run_id, key)
    }


@pytest.fixture
def reference_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # MLTrack never truncates: compare with MLflow's validators refusing long values too
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    # a refused request is a verdict, not something to retry
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    # non-finite values are stored when allowed; the default refusal is tested in test_validation.py
    mltrack.configure(allow_nonfinite_metrics=True, context_tags=False)


def _run_parity(
    strategy: st.SearchStrategy[Case], examples: int, mltrack_uri: str, references: list[ReferenceRun], assumed: bool
) -> None:
    parity = Parity(references, server_rules_assumed=assumed)
    with mltrack.start_run(tracking_uri=mltrack_uri) as run:

        @_settings(examples)
        @given(strategy)
        def check(case: Case) -> None:
            parity.check(case)

        check()
        parity.finish()
        parity.assert_stored_alike(mltrack_uri, run.run_id, references[0])


# -- sqlite: MLflow's validators, a real sqlite store, the server's rules as stated -----------------


@pytest.fixture
def sqlite_reference(_sqlite_template: Any, tmp_path: Any, reference_env: None) -> ReferenceRun:
    folder = tmp_path / "reference"
    folder.mkdir()
    return ReferenceRun("sqlite", fresh_sqlite_uri(_sqlite_template, folder))


@pytest.mark.parametrize(
    ("strategy", "examples"),
    [(metric_cases(), 1000), (param_cases(), 500), (tag_cases(), 400)],
    ids=["metrics", "params", "tags"],
)
def test_mltrack_refuses_exactly_what_mlflow_or_sqlite_refuses(
    sqlite_uri: str, sqlite_reference: ReferenceRun, strategy: st.SearchStrategy[Case], examples: int
) -> None:
    _run_parity(strategy, examples, sqlite_uri, [sqlite_reference], assumed=True)


# -- the server: MLflow's validators, sqlite and a real mlflow server on PostgreSQL ----------------


@pytest.mark.server
@pytest.mark.parametrize(
    ("strategy", "examples"),
    [(metric_cases(), 120), (param_cases(), 100), (tag_cases(), 80)],
    ids=["metrics", "params", "tags"],
)
def test_mltrack_refuses_exactly_what_mlflow_sqlite_or_the_server_refuses(
    mlflow_server: str,
    sqlite_reference: ReferenceRun,
    strategy: st.SearchStrategy[Case],
    examples: int,
) -> None:
    server = ReferenceRun("server", mlflow_server)
    _run_parity(strategy, examples, mlflow_server, [server, sqlite_reference], assumed=False)


# -- start_run's run_name and description --------------------------------------------------------


@dataclass
class RunStart:
    run_name: Any
    description: Any

    def __repr__(self) -> str:
        return f"RunStart(run_name={_short(self.run_name)}, description={_short(self.description)})"

    def create_in(self, reference: ReferenceRun) -> None:
        tags = {"mlflow.note.content": self.description} if self.description else {}
        reference.client.create_run("0", run_name=self.run_name, tags=tags)


def run_starts() -> st.SearchStrategy[RunStart]:
    return st.builds(
        RunStart,
        run_name=st.one_of(st.none(), texts(250)),
        description=st.one_of(st.none(), texts(8000)),
    )


def run_start_refused_by_the_server(start: RunStart) -> bool:
    """runs.name is VARCHAR(250), the note a VARCHAR(8000) tag: PostgreSQL enforces both
    (sqlite does not); and PostgreSQL text holds no NUL. MLflow validates neither."""
    name, note = start.run_name or "", start.description or ""
    return len(name) > 250 or len(note) > 8000 or "\x00" in name + note


def check_run_start(start: RunStart, references: list[ReferenceRun], assumed: bool, uri: str) -> None:
    try:
        with mltrack.start_run(run_name=start.run_name, description=start.description, tracking_uri=uri) as run:
            pass
    except mltrack.InvalidInputError:
        if not (assumed and run_start_refused_by_the_server(start)):
            refusing = []
            for reference in references:
                try:
                    start.create_in(reference)
                except Exception:
                    refusing.append(reference.name)
            assert refusing, f"MLTrack refused {start!r}, which every store accepts"
        return
    assert not (assumed and run_start_refused_by_the_server(start)), f"MLTrack accepted {start!r}"
    for reference in references:
        start.create_in(reference)  # raises if the store refuses what MLTrack accepted
    got = mlflow.MlflowClient(uri).get_run(run.run_id)
    if start.run_name:
        assert got.info.run_name == start.run_name
    if start.description:
        assert got.data.tags["mlflow.note.content"] == start.description


def test_start_run_refuses_exactly_the_names_and_descriptions_a_store_refuses(
    sqlite_uri: str, sqlite_reference: ReferenceRun
) -> None:
    @_settings(120)
    @given(run_starts())
    def check(start: RunStart) -> None:
        check_run_start(start, [sqlite_reference], True, sqlite_uri)

    check()


@pytest.mark.server
def test_start_run_refuses_exactly_the_names_and_descriptions_the_server_refuses(
    mlflow_server: str, sqlite_reference: ReferenceRun
) -> None:
    server = ReferenceRun("server", mlflow_server)

    @_settings(20)
    @given(run_starts())
    def check(start: RunStart) -> None:
        check_run_start(start, [server, sqlite_reference], False, mlflow_server)

    check()
