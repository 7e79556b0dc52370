"""The whole nnU-Net chain on CPU (slow): `semgen phantoms --layout nnunet`, nnU-Net's own
planner and preprocessor, our pre-training of the network of those plans, `semgen export
--nnunet`, then one nnU-Net training epoch started from the exported file.

nnU-Net runs in subprocesses: ``nnunetv2.paths`` reads ``nnUNet_raw`` / ``nnUNet_preprocessed`` /
``nnUNet_results`` once, when it is first imported. Planning and preprocessing are nnU-Net's own
command ``nnUNetv2_plan_and_preprocess``. Training is driven from Python with nnU-Net's own
``nnUNetTrainer`` and ``run_training.maybe_load_checkpoint`` (the function ``nnUNetv2_train
-pretrained_weights`` calls), with ``num_epochs = 1`` and a few iterations set on the trainer:
nnU-Net's epoch is 250 iterations, and ``nnUNetv2_train -tr nnUNetTrainer_1epoch`` cannot be
used here because nnU-Net's trainer search imports every trainer module, one of which imports
timm, which fails in this environment's torchvision (an environment fault, not nnU-Net's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semantic_genesis.bridges.nnunet import SEG_LAYERS, WEIGHTS_KEY
from semantic_genesis.cli import main
from tests.helpers import make_cohort
from tests.pretrain.conftest import write_engine_patterns

DATASET = "Dataset501_Phantoms"
TRAIN = r"""
import sys, torch
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.run.run_training import maybe_load_checkpoint
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

plans_file, dataset_file, weights_file = sys.argv[1:4]
plans = load_json(plans_file)
plans["continue_training"] = False  # what run_training.get_trainer_from_args adds
trainer = nnUNetTrainer(plans=plans, configuration="3d_fullres", fold=0,
                        dataset_json=load_json(dataset_file), device=torch.device("cpu"))
trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = 1, 4, 2
maybe_load_checkpoint(trainer, False, False, weights_file)  # nnUNetv2_train -pretrained_weights
ours = torch.load(weights_file, weights_only=True)["network_weights"]
loaded = trainer.network.state_dict()
same = [k for k in ours if torch.equal(loaded[k].cpu(), ours[k])]
print(f"SEMGEN-CHECK matched {len(same)} of {len(ours)} exported keys; network has "
      f"{len(loaded)} keys, {sum('.seg_layers.' in k for k in loaded)} in seg_layers", flush=True)
trainer.run_training()
print("SEMGEN-CHECK trained", trainer.current_epoch, "epoch(s)", flush=True)
"""


def _nnunet(args: list[str], env: dict[str, str], timeout: int = 900) -> str:
    """Run an nnU-Net command (or Python with ``-c``) and return its output; fail with it."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _tiny_plans(pre: Path) -> Path:
    """nnU-Net's plans with 4, 8, 16 ... features (so one CPU epoch takes seconds), saved as
    ``nnUNetPlansTiny.json``; the data identifier stays, so nnU-Net's preprocessed data serve."""
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    plans["plans_name"] = "nnUNetPlansTiny"
    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    arch["features_per_stage"] = [min(4 * 2**i, 32) for i in range(arch["n_stages"])]
    path = pre / "nnUNetPlansTiny.json"
    path.write_text(json.dumps(plans, indent=1))
    return path


@pytest.mark.slow
def test_one_nnunet_epoch_starts_from_our_checkpoint(tmp_path: Path) -> None:
    raw, pre, results = tmp_path / "raw", tmp_path / "preprocessed", tmp_path / "results"
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(results), "nnUNet_n_proc_DA": "1"}
    assert main(["phantoms", "--out", str(raw / DATASET), "--layout", "nnunet", "--n", "5",
                 "--shape", "48", "48", "32", "--workers", "1"]) == 0
    bin_dir = Path(sys.executable).parent
    _nnunet([str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", "501", "-c", "3d_fullres",
             "-np", "1", "-npfp", "1", "--verify_dataset_integrity"], env)
    plans = _tiny_plans(pre / DATASET)

    records = make_cohort(tmp_path / "cohort", n=6, shape=(48, 48, 32), n_val=2, seed=1)
    patterns = write_engine_patterns(tmp_path / "patterns", tmp_path / "cohort", records,
                                     corners=((10, 16, 8), (16, 16, 8), (0, 0, 8)))
    run = tmp_path / "run"
    assert main(["pretrain", str(patterns), "--out", str(run), "--backbone", "nnunet", "--plans",
                 str(plans), "--epochs", "1", "--batch-size", "6", "--no-figures",
                 "--no-multires"]) == 0
    weights = tmp_path / "sg-nnunet.pth"
    assert main(["export", str(run / "checkpoints" / "best.pt"), "--nnunet", str(weights),
                 "--nnunet-plans", str(plans)]) == 0

    output = _nnunet([sys.executable, "-c", TRAIN, str(plans), str(pre / DATASET / "dataset.json"),
                      str(weights)], {**env, "nnUNet_n_proc_DA": "0"})
    print("\n".join(line for line in output.splitlines()
                    if "pretrained" in line.lower() or "SEMGEN-CHECK" in line))
    import torch

    exported = torch.load(weights, weights_only=True)[WEIGHTS_KEY]
    assert f"Loading pretrained weights from file  {weights}" in output
    assert f"SEMGEN-CHECK matched {len(exported)} of {len(exported)} exported keys" in output
    assert all(SEG_LAYERS not in k for k in exported)
    assert "SEMGEN-CHECK trained 1 epoch(s)" in output
    folder = results / DATASET / "nnUNetTrainer__nnUNetPlansTiny__3d_fullres" / "fold_0"
    assert (folder / "checkpoint_final.pth").is_file()
