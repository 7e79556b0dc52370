"""``DiscoverConfig`` checks every field at the edge (CLI, YAML and API alike), refuses a patch
pre-training cannot use, and picks a CPU-sized auto-encoder input by default (issue 14)."""

from __future__ import annotations

import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery import DiscoverConfig
from semantic_genesis.discovery.config import CPU_AE_SHAPE, GPU_AE_SHAPE, resolved
from semantic_genesis.io.manifests import read_discover_info
from semantic_genesis.utils.config import from_dict
from semantic_genesis.utils.errors import SemgenError


@pytest.mark.parametrize(("field", "value", "message"), [
    ("n_classes", 0, "n_classes = 0: must be at least 1"),
    ("instances", 0, "instances = 0: must be at least 1"),
    ("val_instances", -1, "must be at least 0"),
    ("patch", (0, 8, 8), "patch = \\(0, 8, 8\\): must be at least 8"),
    ("seed", -1, "seed = -1"),
    ("trials", 0, "trials = 0"),
    ("max_tissue", 1.5, "max_tissue = 1.5: must be at most 1"),
    ("max_tissue", float("nan"), "finite"),
    ("ae_epochs", 0, "ae_epochs"),
    ("ae_patience", 0, "ae_patience"),
    ("ae_width", -8, "ae_width"),
    ("ae_shape", (60, 64, 32), "multiples of 8"),
    ("ae_batch", 0, "ae_batch"),
    ("min_distance", -1.0, "min_distance"),
    ("device", "banana", "device 'banana' is not one of"),
    ("index", "hnsw", "must be one of flat, ivf"),
    ("n_classes", "3", "must be a whole number"),
])
def test_each_field_is_checked(field, value, message) -> None:
    with pytest.raises(SemgenError, match=message):
        DiscoverConfig(**{field: value})


def test_a_patch_pretraining_cannot_use_is_refused_with_the_reason() -> None:
    with pytest.raises(SemgenError, match="multiple of 8.*pre-training") as caught:
        DiscoverConfig(patch=(20, 20, 10))
    assert "[20, 20, 10]" in str(caught.value)
    assert DiscoverConfig(patch=(24, 16, 8)).patch == (24, 16, 8)


def test_yaml_settings_are_checked_too(tmp_path) -> None:
    with pytest.raises(SemgenError, match="ae_epochs = -3"):
        from_dict(DiscoverConfig, {"ae_epochs": -3}, tmp_path / "x.yaml")


@pytest.mark.parametrize("args", [["--device", "banana"], ["--classes", "0"], ["--seed", "-1"],
                                  ["--patch", "20", "20", "10"], ["--max-tissue", "nan"]])
def test_bad_options_are_one_line_before_any_work(args, tmp_path, capsys) -> None:
    out = tmp_path / "p"
    assert main(["discover", str(tmp_path / "nowhere"), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semgen discover: error:") and err.count("\n") == 0
    assert not out.exists()


def test_the_auto_encoder_input_is_cpu_sized_by_default_and_said() -> None:
    config = DiscoverConfig()
    cpu, notes = resolved(config, cuda=False)
    gpu, gpu_notes = resolved(config, cuda=True)
    assert (cpu.ae_shape, cpu.ae_width) == (CPU_AE_SHAPE, 8) == ((64, 64, 32), 8)
    assert (gpu.ae_shape, gpu.ae_width) == (GPU_AE_SHAPE, 32)
    assert any("--ae-shape 64 64 32 chosen automatically: no GPU" in n for n in notes)
    assert any("--ae-shape 128 128 64" in n and "a GPU" in n for n in gpu_notes)
    explicit = DiscoverConfig(ae_shape=(128, 128, 64), ae_width=4)
    assert resolved(explicit, cuda=False) == (explicit, [])  # an explicit choice stays


def test_discover_records_and_prints_the_automatic_choice(chests, tmp_path, capsys,
                                                          monkeypatch) -> None:
    monkeypatch.delenv("SEMGEN_QUIET", raising=False)
    out = tmp_path / "p"
    assert main(["discover", str(chests), "--out", str(out), "--classes", "2", "--instances",
                 "3", "--val-instances", "1", "--patch", "16", "16", "8", "--ae-width", "2",
                 "--ae-epochs", "1", "--device", "cpu"]) == 0
    assert "--ae-shape 64 64 32 chosen automatically: no GPU" in capsys.readouterr().err
    info = read_discover_info(out)
    assert info["config"]["ae_shape"] == [64, 64, 32]
    assert info["automatic"] == ["--ae-shape 64 64 32 chosen automatically: no GPU (a "
                                 "CPU-sized choice; set it to override)"]


def test_profile_reference_sets_every_reference_value_and_explicit_values_win() -> None:
    """--profile reference: the auto-encoder of train_autoencoder.py (32 wide, 128 x 128 x 64,
    batch 8, at most 10,000 epochs, patience 50) and a minimum class distance of 5, whatever
    the device; ours: 20 / 5 / batch 2 / distance 16 and the device-sized input."""
    ref = DiscoverConfig(profile="reference")
    values = {k: getattr(ref, k) for k in ("ae_width", "ae_shape", "ae_batch", "ae_epochs",
                                           "ae_patience", "min_distance")}
    print("discover --profile reference:", values)
    assert values == {"ae_width": 32, "ae_shape": (128, 128, 64), "ae_batch": 8,
                      "ae_epochs": 10_000, "ae_patience": 50, "min_distance": 5.0}
    assert resolved(ref, cuda=False) == (ref, [])  # nothing left to choose by device
    ours = DiscoverConfig()
    assert (ours.ae_epochs, ours.ae_patience, ours.ae_batch, ours.min_distance) == (
        20, 5, 2, 16.0)
    assert DiscoverConfig(profile="reference", min_distance=16.0, ae_epochs=3).min_distance == 16
    assert DiscoverConfig(profile="reference", ae_epochs=3).ae_epochs == 3
    with pytest.raises(SemgenError, match="profile"):
        DiscoverConfig(profile="paper")


def test_discover_cli_has_the_profile_and_the_key_ignores_it(capsys) -> None:
    """The profile's values, not its name, decide the result (same values, same key)."""
    from semantic_genesis.discovery.config import result_key

    explicit = DiscoverConfig(ae_width=32, ae_shape=(128, 128, 64), ae_batch=8, ae_epochs=10_000,
                              ae_patience=50, min_distance=5.0)
    assert result_key(explicit, "f") == result_key(DiscoverConfig(profile="reference"), "f")
    assert result_key(DiscoverConfig(), "f") != result_key(explicit, "f")
    with pytest.raises(SystemExit):
        main(["discover", "--help"])
    assert "--profile {ours,reference}" in capsys.readouterr().out
