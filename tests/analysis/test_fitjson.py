"""The fit JSON: one writer, one reader, the same common fields for every fitter, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.fit import ChinchillaFit, DataConstrainedFit, EnvelopeFit, IsoFLOPFit, KaplanFit
from analysis.fitjson import SCHEMA_VERSION, read_fit, write_fit
from analysis.plan import Planner
from synthetic_sweep import SMALL_GRID, TRUE_LAW, synthetic_points

COMMON = ("schema_version", "approach", "n_points", "n_convention", "flops_convention", "data_range", "source",
          "columns")


@pytest.fixture(scope="module")
def fits():
    pts = synthetic_points(noise=0.002)
    curves = pd.DataFrame([{"run_id": f"r{i}", "params": N, "tokens": D, "val_loss": float(TRUE_LAW(N, D))}
                           for i, N in enumerate(np.geomspace(2e6, 2e8, 6)) for D in N * np.geomspace(2, 300, 25)])
    return {
        3: ChinchillaFit(init_grid=SMALL_GRID, bootstrap=20, random_state=0).fit(pts),
        "kaplan": KaplanFit(form="nd", bootstrap=10, random_state=0).fit(pts),
        2: IsoFLOPFit(bootstrap=10, random_state=0).fit(pts),
        1: EnvelopeFit().fit(curves),
        "data_constrained": DataConstrainedFit(init_grid=SMALL_GRID).fit(pts.assign(unique_tokens=pts["tokens"] / np.where(np.arange(len(pts)) % 2, 4.0, 1.0))),
    }


@pytest.mark.parametrize("approach", [3, "kaplan", 2, 1, "data_constrained"])
def test_every_fit_round_trips_through_the_one_writer_and_reader(fits, tmp_path, approach):
    fit = fits[approach]
    path = write_fit(fit, tmp_path / "fit.json")
    d = json.loads(path.read_text())
    assert all(key in d for key in COMMON)
    assert d["schema_version"] == SCHEMA_VERSION and d["approach"] == str(approach)
    back = read_fit(path)
    assert type(back) is type(fit)
    assert back.to_dict() == json.loads(fit.to_json())       # what was written is what is read back
    assert read_fit(d).to_dict() == back.to_dict()            # a dict reads the same as its file
    assert read_fit(fit) is fit                               # an estimator is already read


def test_the_recorded_flops_convention_is_the_data_s_for_every_fitter():
    pts = synthetic_points(noise=0.002)
    columns = {"n": "params", "d": "tokens", "c": "flops_detailed", "loss": "loss"}
    for est in (ChinchillaFit(init_grid=SMALL_GRID), KaplanFit(form="nd"), IsoFLOPFit()):
        assert est.fit(pts, columns=columns).to_dict()["flops_convention"] == "flops_detailed", type(est).__name__


def test_planner_from_a_file_equals_planner_from_the_estimator(fits, tmp_path):
    fit = fits[3]
    path = write_fit(fit, tmp_path / "fit.json")
    a, b = Planner.from_fit(path).budget(1e20), Planner.from_fit(fit).budget(1e20)
    assert a.N == pytest.approx(b.N, rel=1e-12) and a.intervals["N"] == pytest.approx(b.intervals["N"], rel=1e-12)
    assert a.n_bootstrap == 20


@pytest.mark.parametrize("d, match", [
    ({"approach": 3, "E": 1.8}, r"approach-3 fit has no field 'A'"),
    ({"approach": "kaplan", "alpha_N": 0.07}, r"approach-kaplan fit has no field 'N_c'"),
    ({"approach": 9}, r"field 'approach': 9 is not 1, 2, 3, 'kaplan', 'data_constrained' or 'auto'"),
    ({"approach": 3, "schema_version": SCHEMA_VERSION + 1, **TRUE_LAW.to_dict()}, r"field 'schema_version'"),
    ({"approach": 3, **TRUE_LAW.to_dict(), "bootstrap": {"E": [1.0, 2.0], "A": [1.0]}}, r"field 'bootstrap'"),
    ({"approach": 3, **{**TRUE_LAW.to_dict(), "E": "abc"}}, r"field 'E': 'abc' is not a finite number"),
])
def test_bad_fit_json_is_one_line_naming_the_field(d, match):
    with pytest.raises(InputError, match=match) as exc:
        read_fit({**d, "source": "hand-written"})
    assert str(exc.value).startswith("hand-written: ") and "\n" not in str(exc.value)


def test_files_name_themselves_and_a_kind_can_be_required(tmp_path):
    with pytest.raises(InputError, match=r"nope\.json: no such fit file \(not found\)"):
        read_fit(tmp_path / "nope.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"list\.json: not a fit JSON \(expected a JSON object"):
        read_fit(tmp_path / "list.json")
    (tmp_path / "a2.json").write_text(json.dumps({"approach": 2}))
    with pytest.raises(InputError, match=r"a2\.json: a plan needs an approach-3 fit \(got approach 2\)"):
        read_fit(tmp_path / "a2.json", approach=3, purpose="a plan")


@pytest.mark.parametrize("approach", [3, "kaplan", 2])
def test_a_version_1_file_reads_and_writes_back_as_version_2(fits, tmp_path, approach):
    from analysis.fitjson import fit_json

    old = fits[approach].to_dict()                     # the version-1 layout: approach a number, draws inside
    old.update(schema_version=1, n_convention="Model Size")
    (tmp_path / "old.json").write_text(json.dumps(old))
    back = read_fit(tmp_path / "old.json")
    new = json.loads(write_fit(back, tmp_path / "new.json").read_text())
    assert new["schema_version"] == 2 and new["approach"] == str(approach) and new["n_convention"] == "total"
    for name, iv in old["intervals"].items():
        assert new["intervals"][name] == pytest.approx(list(iv), rel=1e-12)
    assert "rss" not in new and (approach == 2 or new["objective_kind"])
    compact = fit_json(back)
    assert "bootstrap" not in compact and compact["n_bootstrap"] == len(next(iter(old["bootstrap"].values())))
    again = read_fit(compact)                          # a compact fit still carries its intervals
    assert set(again.intervals_) == set(back.intervals_) and fit_json(again)["n_bootstrap"] == compact["n_bootstrap"]
    for name, iv in back.intervals_.items():
        assert again.intervals_[name] == pytest.approx(iv, rel=1e-12)
    if approach == "kaplan":
        assert again.rss_ == pytest.approx(old["rss"])   # "objective" reads back as Kaplan's rss
