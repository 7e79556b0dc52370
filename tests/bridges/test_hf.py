"""Hugging Face-format weights (issue 17 item 3): ``semgen export --hf`` after a real (tiny)
pre-training, ``create_model(None, pretrained=DIR)`` and ``pretrained="hf-hub:ORG/NAME"`` from an
offline Hub cache, with no pickle involved."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from semantic_genesis.cli import main
from semantic_genesis.models import create_model, load_model, save_model
from semantic_genesis.utils.errors import SemgenError
from tests.bridges.single_thread import one_thread  # noqa: F401 (autouse)
from tests.pretrain.conftest import engine_cohort, engine_patterns  # noqa: F401 (fixtures)

PRETRAIN = ["--width", "4", "--epochs", "1", "--batch-size", "6", "--no-figures", "--no-multires"]
REPO = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def pretrained(engine_patterns: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """One epoch of Semantic Genesis pre-training at width 4: its best.pt."""
    run = tmp_path_factory.mktemp("hf_pretrain") / "run"
    assert main(["pretrain", str(engine_patterns), "--out", str(run), *PRETRAIN]) == 0
    return run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def hf_dir(pretrained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf_export") / "sg-hf"
    assert main(["export", str(pretrained), "--hf", str(out)]) == 0
    return out


def outputs(model: torch.nn.Module, seed: int = 0) -> tuple[torch.Tensor, ...]:
    x = torch.rand(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = model.eval()(x)
    return y if isinstance(y, tuple) else (y,)


def test_export_writes_config_safetensors_and_a_model_card(hf_dir: Path, pretrained: Path) -> None:
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["library_name"] == "semantic-genesis"
    assert config["architectures"] == ["ynet3d"] and config["width"] == 4
    assert config["n_classes"] == 3 and config["data_fingerprint"]
    head = (hf_dir / "model.safetensors").read_bytes()[:16]
    assert not head.startswith((b"PK", b"\x80"))  # neither a zip nor a pickle
    state = load_file(hf_dir / "model.safetensors")
    ours = load_model(pretrained).state_dict()
    assert state.keys() == ours.keys()
    assert all(torch.equal(state[k], ours[k]) for k in ours)
    readme = (hf_dir / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: semantic-genesis")
    for section in ("## Model", "## Data and input", "## Recipe", "## Metrics",
                    "## Intended use", "## Limits", "## How to load"):
        assert section in readme
    assert config["data_fingerprint"] in readme and "lambda_rec" in readme


def test_round_trip_gives_the_same_outputs_without_pickle(
    hf_dir: Path, pretrained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = outputs(load_model(pretrained))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    model = create_model(None, pretrained=hf_dir)
    assert model.model_name == "ynet3d" and model.load_report.ok
    got = outputs(model)
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    # arguments given still win over config.json: a 2-class head is new, the rest loads
    two = create_model(None, pretrained=hf_dir, n_classes=2, strict=False)
    assert two.n_classes == 2 and two.load_report.missing == ["clc_out.fc1.weight",
                                                              "clc_out.fc1.bias"]


def test_hf_hub_id_loads_from_an_offline_cache(hf_dir: Path, pretrained: Path,
                                               tmp_path: Path) -> None:
    """The Hub cache layout huggingface_hub itself reads: models--ORG--NAME/snapshots/<rev>/,
    refs/main naming the revision; HF_HUB_OFFLINE=1 so nothing is fetched."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--lab--semantic-genesis-tiny"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "README.md"):
        shutil.copy(hf_dir / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    script = (
        "import sys, torch\n"
        "from semantic_genesis.models import create_model\n"
        "from semantic_genesis.utils.errors import SemgenError\n"
        "m = create_model(None, pretrained='hf-hub:lab/semantic-genesis-tiny').eval()\n"
        "x = torch.rand(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))\n"
        "with torch.no_grad():\n"
        "    torch.save(m(x), sys.argv[1])\n"
        "try:\n"
        "    create_model(None, pretrained='hf-hub:lab/not-cached')\n"
        "except SemgenError as e:\n"
        "    print('ERROR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_HOME": str(tmp_path / "hf-home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.pt")], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    expected = outputs(load_model(pretrained))  # another process, maybe other threads:
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6)  # the same up to float rounding
               for a, b in zip(expected, got, strict=True))
    error = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(error) == 1 and "hf-hub:lab/not-cached" in error[0]
    assert "Hugging Face Hub" in error[0]


def test_bad_folders_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="holds no model.safetensors"):
        create_model(None, pretrained=tmp_path)
    model = create_model("unet3d", width=4)
    save_model(tmp_path / "plain.pt", model)
    out = tmp_path / "hf"
    assert main(["export", str(tmp_path / "plain.pt"), "--hf", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "width": -3}))
    with pytest.raises(SemgenError, match=r"config.json: model card field width"):
        create_model(None, pretrained=out)
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(SemgenError, match="not a readable safetensors file"):
        create_model(None, pretrained=out)
    with pytest.raises(SemgenError, match=r"ORG/NAME"):
        create_model(None, pretrained="hf-hub:no-slash")
    with pytest.raises(SemgenError, match="takes the architecture from the weights' model card"):
        create_model(None)


def test_export_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    save_model(tmp_path / "m.pt", create_model("unet3d", width=4))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["export", str(tmp_path / "m.pt"), "--hf", str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    assert main(["export", str(tmp_path / "m.pt"), "--hf", str(tmp_path / "a"),
                 "--out", str(tmp_path / "b.pt")]) == 2


def test_nnunet_network_whose_decoder_shares_the_encoder_round_trips(tmp_path: Path) -> None:
    """nnU-Net's decoder holds its encoder, so two state-dict keys name each encoder tensor;
    safetensors refuses shared memory, the export writes copies."""
    from semantic_genesis.bridges.convert import write_folder
    from semantic_genesis.bridges.nnunet import minimal_plans
    from semantic_genesis.models import card_from_model
    from semantic_genesis.models.registry import CARD_KWARGS

    torch.manual_seed(0)
    model = create_model("nnunet-ynet", plans=minimal_plans(patch_size=(16, 16, 16)),
                         n_classes=3, width=4)
    card = card_from_model(model, patch_size=(16, 16, 16),
                           notes={CARD_KWARGS: model.card_kwargs()})
    write_folder(model, card, "hf", tmp_path / "nn-hf", tmp_path / "nn.pt")
    again = create_model(None, pretrained=tmp_path / "nn-hf")
    assert again.load_report.ok
    assert all(torch.equal(a, b) for a, b in zip(outputs(model), outputs(again), strict=True))
