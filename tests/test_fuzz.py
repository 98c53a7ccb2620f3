"""Property-based fuzzing of what users type: configs, suites and the CLI's id arguments.

Every outcome is a valid object or a :class:`~hub.errors.UserError`, never another
exception, within a bounded time per example; no output carries a control character.
The budget is small for CI: ``EVALHUB_FUZZ_EXAMPLES=2000 bash scripts/test.sh tests/test_fuzz.py``
runs each property on that many examples instead of the default 40.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (in the dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hub.errors import UserError  # noqa: E402
from hub.run_config import RunConfig  # noqa: E402
from tests.test_hardening import CONTROL, cli, trained  # noqa: E402,F401  (trained: a fixture)

EXAMPLES = int(os.environ.get("EVALHUB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), derandomize=not os.environ.get("EVALHUB_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EXAMPLE_CONFIGS = sorted((Path(__file__).parents[1] / "hub" / "examples").glob("*.yaml"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
keys = st.one_of(st.sampled_from(["task", "model", "data", "peft", "train", "eval", "tracking", "name", "seed",
                                  "method", "options", "r", "split", "suite", "source", "max_length",
                                  "learning_rate", "evaluators", "report_to"]), st.text(max_size=12))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=5)), max_leaves=20)


def outcome(load, *args):
    """What ``load(*args)`` gives: its result, or the UserError it raised (any other exception fails)."""
    try:
        return load(*args)
    except UserError as exc:
        assert str(exc), "a UserError says what was wrong"
        return exc


def _parse(mapping):
    from hub.run_config import parse_run_config

    got = outcome(parse_run_config, mapping, "fuzz.yaml")
    assert isinstance(got, (RunConfig, UserError)), got
    return got


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Import peft and the evaluators once, so the first example is not timed with the imports."""
    _parse({"peft": {"method": "lora"}})


@FUZZ
@given(documents)
def test_random_documents_parse_or_fail_with_a_user_error(doc):
    if isinstance(doc, dict):
        _parse(doc)
    else:
        from hub.config import from_dict

        got = outcome(from_dict, RunConfig, doc, "fuzz.yaml")
        assert isinstance(got, UserError) or (doc is None and isinstance(got, RunConfig)), got


@FUZZ
@given(st.text(max_size=300))
def test_random_yaml_text_reads_or_fails_with_a_user_error(tmp_path_factory, text):
    from hub.run_config import load_run_config

    path = tmp_path_factory.mktemp("yaml") / "run.yaml"
    try:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        return
    got = outcome(load_run_config, path)
    assert isinstance(got, (RunConfig, UserError)), got


def _paths(node, prefix=()):
    """Every key path of a nested mapping."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


@st.composite
def mutated_examples(draw):
    """An example config with one key path changed: a new value, deleted, renamed, or given a new key."""
    doc = yaml.safe_load(draw(st.sampled_from(EXAMPLE_CONFIGS)).read_text())
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(list(_paths(doc))))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["value", "delete", "rename", "add"]))
    if action == "value":
        parent[path[-1]] = draw(documents)
    elif action == "delete":
        del parent[path[-1]]
    elif action == "rename":
        parent[draw(keys)] = parent.pop(path[-1])
    else:
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
        target[draw(keys)] = draw(documents)
    return doc


@FUZZ
@given(mutated_examples())
def test_mutated_example_configs_parse_or_fail_with_a_user_error(doc):
    assert isinstance(_parse(doc), (RunConfig, UserError))


suite_steps = st.one_of(st.sampled_from(["classification", "robustness", "explain", "fairness", "toxicity", "nope"]),
                        st.dictionaries(st.sampled_from(["classification", "robustness", "explain", "fairness"]),
                                        documents, min_size=1, max_size=1),
                        documents)


@FUZZ
@given(st.one_of(st.dictionaries(st.sampled_from(["name", "description", "evaluators", "extra"]),
                                 st.one_of(documents, st.lists(suite_steps, max_size=4)), max_size=4), documents))
def test_random_suites_load_or_fail_with_a_user_error(tmp_path_factory, suite):
    from evaluators.base import load_suite

    path = tmp_path_factory.mktemp("suite") / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    from evaluators.base import Suite

    got = outcome(load_suite, str(path))
    assert isinstance(got, (Suite, UserError)), got
    if isinstance(got, Suite):   # a suite that loads names only evaluators that exist, each once
        names = [name for name, _ in got.steps()]
        assert names and len(names) == len(set(names)), names


@pytest.fixture(scope="module")
def store_home(trained):
    return trained["home"]


ids = st.one_of(st.text(max_size=80), st.text(alphabet=st.characters(max_codepoint=0x7f), max_size=40),
                st.builds(lambda c, n: c * n, st.characters(), st.integers(1, 20_000)),
                st.sampled_from(["best", "torch", "run-", "-", "--", "..", "/", "\x1b[31m", "\u202e", "%s%n"]))


@FUZZ
@given(ids, st.sampled_from(["show", "eval", "remove"]))
def test_random_ids_exit_2_or_find_something_and_print_no_control_characters(store_home, ref, command):
    if command == "remove" and not ref.startswith("-"):
        ref = ref + "\x00"     # never a whole id: a fuzzed remove must not delete the store's variant
    if "\x00" in ref and command != "remove":
        ref = ref.replace("\x00", "")   # argv cannot carry NUL; remove keeps it to be sure nothing matches
    args = [command, "--", ref] if command != "eval" else [command, "--suite", "nope-suite", "--", ref]
    code, out, err = cli(*args, home=store_home)
    assert code in (0, 2), err
    assert "Traceback" not in err
    assert not CONTROL & set(out + err), (out + err)[:200]
    assert len(err) < 2500
