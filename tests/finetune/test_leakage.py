"""finetune.leakage (method.md §1.1): a target whose test case was pre-trained on is refused,
by `semgen finetune` and before any benchmark cell; the override runs it and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semantic_genesis.cli import main
from semantic_genesis.finetune import FinetuneConfig, finetune
from semantic_genesis.finetune.leakage import (
    check_grid,
    check_leakage,
    check_test_cases,
    find_leakage,
    seen_cases_of,
    target_split,
)
from semantic_genesis.prepare.groups import case_hashes
from semantic_genesis.utils.errors import SemgenError
from tests.luna import ALLOWED, HELD_OUT, IDS, write_luna

TINY = {"task": "classify", "epochs": 1, "patch": (16, 16, 16), "batch_size": 4,
        "steps_per_epoch": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def luna(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_luna(tmp_path_factory.mktemp("luna"))


def _checkpoint(path: Path, seen: list[str]) -> str:
    """A width-4 U-Net whose model card lists the hashes of ``seen`` as pre-training cases."""
    from semantic_genesis.models import card_from_model, create_model, save_model

    model = create_model("unet3d", width=4)
    save_model(path, model, card_from_model(model, patch_size=(16, 16, 16),
                                            seen_cases=case_hashes(seen)))
    return str(path)


def test_the_luna_folds_make_subsets_7_to_9_the_test(luna: Path) -> None:
    split = target_split(luna, FinetuneConfig(**TINY))
    assert sorted(i for i, s in split.items() if s == "test") == HELD_OUT
    assert sorted(i for i, s in split.items() if s != "test") == ALLOWED


def test_pretraining_on_subsets_0_to_6_is_allowed(luna: Path, tmp_path: Path) -> None:
    init = _checkpoint(tmp_path / "ok.pt", ALLOWED)
    assert seen_cases_of(init) == set(case_hashes(ALLOWED))
    res = finetune(luna, tmp_path / "run", FinetuneConfig(**TINY, init=init))
    metrics = json.loads((res.out_dir / "metrics.json").read_text())
    assert metrics["leakage"] == {"checked": True, "seen_train": 5, "seen_val": 2,
                                  "seen_test": 0, "cases": {"train": 5, "val": 2, "test": 3}}
    assert any("5 train case(s) were seen" in w for w in metrics["warnings"])
    assert seen_cases_of(res.out_dir / "model.pt") == set(case_hashes(ALLOWED))  # kept on


def test_a_seen_test_case_is_refused_before_any_output(luna: Path, tmp_path: Path) -> None:
    init = _checkpoint(tmp_path / "all.pt", IDS[:8])  # subset 7 was pre-trained on
    with pytest.raises(SemgenError) as caught:
        finetune(luna, tmp_path / "run", FinetuneConfig(**TINY, init=init))
    message = str(caught.value)
    assert "1 of the 3 test case(s)" in message and "phantom-0007" in message
    assert "--allow-seen-test-cases" in message and init in message
    assert not (tmp_path / "run").exists()


def test_the_override_runs_and_says_so(luna: Path, tmp_path: Path, capsys) -> None:
    init = _checkpoint(tmp_path / "all.pt", IDS)
    args = ["finetune", "--task", "classify", "--data", str(luna), "--init", init, "--epochs",
            "1", "--patch", "16", "16", "16", "--batch-size", "4", "--steps-per-epoch", "1",
            "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "refused")]) != 0
    assert "3 of the 3 test case(s)" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "run"), "--allow-seen-test-cases"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["leakage"]["seen_test"] == 3 and metrics["config"]["allow_seen_test_cases"]
    assert any("3 test case(s) were seen in pre-training" in w for w in metrics["warnings"])


def test_inits_without_seen_cases_are_not_checked(luna: Path, tmp_path: Path) -> None:
    assert check_leakage(luna, FinetuneConfig(**TINY)) == {"checked": False, "warnings": []}
    init = _checkpoint(tmp_path / "old.pt", [])  # a card from before seen_cases
    assert check_leakage(luna, FinetuneConfig(**TINY, init=init))["checked"] is False


def test_segmentation_targets_split_their_labelled_cases(tiny_data: Path) -> None:
    cfg = FinetuneConfig(task="segment", split_seed=1)
    split = target_split(tiny_data, cfg)
    assert sorted(split) == [f"case{i:02d}" for i in range(6)] and "test" in split.values()
    test = sorted(i for i, s in split.items() if s == "test")
    leak = find_leakage("x", split, set(case_hashes(test[:1])))
    assert leak.seen == {"test": test[:1]} and leak.count("train") == 0


def test_protocols_with_their_own_test_cases_are_checked(luna: Path, tmp_path: Path) -> None:
    init = _checkpoint(tmp_path / "ok.pt", ALLOWED)
    assert check_test_cases(init, HELD_OUT, luna) == 0
    assert check_test_cases("scratch", IDS, luna) == 0
    with pytest.raises(SemgenError, match="2 of the 5 test case"):
        check_test_cases(init, [*HELD_OUT, *ALLOWED[:2]], luna)
    assert check_test_cases(init, IDS, luna, allow=True) == 7


def test_the_grid_is_checked_once_per_init_and_split(luna: Path, tmp_path: Path) -> None:
    ok, bad = _checkpoint(tmp_path / "ok.pt", ALLOWED), _checkpoint(tmp_path / "bad.pt", IDS)
    cells = [(luna, FinetuneConfig(**TINY, init=i, seed=s)) for i in ("scratch", ok)
             for s in range(3)]
    check_grid(cells)
    with pytest.raises(SemgenError, match="3 of the 3 test case"):
        check_grid([*cells, (luna, FinetuneConfig(**TINY, init=bad))])
    check_grid([(luna, FinetuneConfig(**TINY, init=bad, allow_seen_test_cases=True))])


def test_the_whole_chain_pre_trains_on_subsets_0_to_6_only(luna: Path, tmp_path: Path) -> None:
    """prepare -> discover -> pretrain on the LUNA16 folder: the card hashes only cases of
    subsets 0-6 (the patients of the patterns), so fine-tuning on the same folder may run."""
    import warnings

    from semantic_genesis.discovery import discover
    from semantic_genesis.io.manifests import read_patterns
    from semantic_genesis.pretrain import PretrainConfig, pretrain
    from tests.discovery.conftest import fast_config
    from tests.luna import prepare_luna

    cohort = prepare_luna(luna, tmp_path / "cohort")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer neighbours than K on 10 patients
        discover(cohort, tmp_path / "patterns", fast_config(cohort, n_classes=3, instances=4))
    used = {r.patient_id for r in read_patterns(tmp_path / "patterns")}
    run = pretrain(tmp_path / "patterns", tmp_path / "run", PretrainConfig(
        width=4, batch_size=6, figures=False, multires=False, epochs=1, device="cpu"))
    seen = seen_cases_of(run.best_checkpoint)
    assert seen == set(case_hashes(used)) and seen <= set(case_hashes(ALLOWED))
    assert not seen & set(case_hashes(HELD_OUT))
    leakage = check_leakage(luna, FinetuneConfig(**TINY, init=str(run.best_checkpoint)))
    assert leakage["checked"] and leakage["seen_test"] == 0 and leakage["seen_train"] > 0
