"""Loading weights: official layouts, Models Genesis, Keras .h5, adaptation, refusal of pickles."""

from __future__ import annotations

import json
import os
import pickle
import shlex
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semantic_genesis.models import (
    adapt_input_conv,
    create_model,
    guess_model_kwargs,
    load_model,
    load_weights,
    read_weights,
    save_model,
)
from semantic_genesis.models.checkpoint import save_checkpoint
from semantic_genesis.utils.errors import SemgenError


def ynet_state(width: int = 8, n_classes: int = 44, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model("ynet3d", width=width, n_classes=n_classes)
    for name, buf in model.named_buffers():  # non-trivial running stats
        if name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
        elif name.endswith("running_mean"):
            buf.normal_()
    return model.state_dict()


def official_sg_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """The released Semantic Genesis layout: a training dict, DataParallel + wrapper prefixes,
    and leftovers of a contrastive wrapper (method.md §6)."""
    wrapped = {f"module.classficationNet.{k}": v for k, v in state.items()}
    wrapped["module.projection_head.0.weight"] = torch.zeros(4, 8)
    wrapped["module.projection_head.0.bias"] = torch.zeros(4)
    wrapped["module.prototypes.weight"] = torch.zeros(10, 4)
    torch.save({"epoch": 12, "state_dict": wrapped, "best_loss": 0.1, "best_acc": 0.5}, path)
    return path


def test_official_semantic_genesis_layout_loads_strictly(tmp_path: Path) -> None:
    state = ynet_state()
    path = official_sg_checkpoint(tmp_path / "semantic_genesis_chest_ct.pt", state)
    model = create_model("ynet3d", width=8, n_classes=44)
    report = load_weights(model, path, strict=True)
    assert report.ok
    assert len(report.matched) == 115 and not report.adapted
    assert sorted(k for k, _ in report.dropped) == [
        "module.projection_head.0.bias",
        "module.projection_head.0.weight",
        "module.prototypes.weight",
    ]
    assert any("classficationNet." in n for n in report.notes)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    text = str(report)
    assert "matched" in text and "115" in text and "projection head" in text


def test_official_layout_into_a_unet_drops_the_head(tmp_path: Path) -> None:
    path = official_sg_checkpoint(tmp_path / "sg.pt", ynet_state())
    report = load_weights(create_model("unet3d", width=8), path, strict=True)
    assert len(report.matched) == 106
    head = [k for k, why in report.dropped if k.startswith("clc_out.")]
    assert len(head) == 9 and len(report.dropped) == 12


def test_new_class_count_keeps_the_head_body_and_reports_the_rest(tmp_path: Path) -> None:
    path = official_sg_checkpoint(tmp_path / "sg.pt", ynet_state(n_classes=44))
    model = create_model("ynet3d", width=8, n_classes=2)
    report = load_weights(model, path)
    assert len(report.matched) == 113  # everything but clc_out.fc1.{weight,bias}
    assert report.missing == ["clc_out.fc1.weight", "clc_out.fc1.bias"]
    with pytest.raises(SemgenError, match="2 missing"):
        load_weights(model, path, strict=True)


def test_models_genesis_layout_loads_strictly(tmp_path: Path) -> None:
    torch.manual_seed(1)
    unet = create_model("unet3d", width=8)
    path = tmp_path / "Genesis_Chest_CT.pt"
    torch.save(
        {
            "state_dict": {f"module.{k}": v for k, v in unet.state_dict().items()},
            "optimizer_state_dict": {"state": {}, "param_groups": []},
        },
        path,
    )
    target = create_model("unet3d", width=8)
    report = load_weights(target, path, strict=True)
    assert len(report.matched) == 106 and not report.dropped
    assert report.notes == ["stripped prefix 'module.' from 106 keys"]
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(target.eval()(x), unet.eval()(x))
    # the encoder classifier takes the encoder; its new head is reported missing
    report = load_weights(create_model("encoder3d", width=8, n_classes=2), path)
    assert len(report.matched) == 56 and len(report.unexpected) == 50
    assert all(k.startswith("clc_out.") for k in report.missing)


def test_plain_state_dict_and_our_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = create_model("ynet3d", width=8, n_classes=3, head="keras")
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    assert read_weights(plain).format == "plain state dict"
    ours = save_model(tmp_path / "ours.pt", model, epoch=4)
    loaded = load_model(ours)
    assert loaded.model_card.head == "keras" and loaded.model_card.n_classes == 3
    assert loaded.load_report.ok and read_weights(ours).extras == ["epoch"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_strict_lists_the_problems_and_leaves_the_model_alone() -> None:
    state = ynet_state(width=8)
    state["down_tr64.ops.0.conv1.bias"] = torch.zeros(5)
    state["extra.weight"] = torch.zeros(1)
    model = create_model("ynet3d", width=8, n_classes=44)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SemgenError) as err:
        load_weights(model, state, strict=True)
    assert "unexpected (extra.weight)" in str(err.value)
    assert "down_tr64.ops.0.conv1.bias (5,) vs model (8,)" in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    report = load_weights(model, state)
    assert report.shape_mismatch == [("down_tr64.ops.0.conv1.bias", (5,), (8,))]
    assert report.unexpected == ["extra.weight"]
    assert report.missing == ["down_tr64.ops.0.conv1.bias"]


def test_weights_move_between_norms() -> None:
    state = ynet_state()
    model = create_model("ynet3d", width=8, n_classes=44, norm="group")
    report = load_weights(model, state, strict=True)
    stats = [k for k, why in report.dropped if "running statistics" in why]
    assert len(stats) == 3 * 15 and len(report.matched) == 115 - 3 * 15  # 15 norm layers
    assert torch.equal(model.clc_out.bn1.weight, state["clc_out.bn1.weight"])


def test_in_channels_four_from_one_channel_weights() -> None:
    torch.manual_seed(3)
    one = create_model("unet3d", width=8).eval()
    four = create_model(
        "unet3d", width=8, in_channels=4, pretrained=one.state_dict(), strict=True
    ).eval()
    assert four.load_report.adapted[0][0] == "down_tr64.ops.0.conv1.weight"
    x = torch.rand(2, 1, 16, 16, 16)
    x4 = x.repeat(1, 4, 1, 1, 1)
    with torch.no_grad():
        conv1, conv4 = one.down_tr64.ops[0].conv1, four.down_tr64.ops[0].conv1
        assert torch.allclose(conv4(x4), conv1(x), atol=1e-5)
        # each channel's response is a quarter of the original: they sum to it
        per_channel = [F.conv3d(x, conv4.weight[:, c : c + 1], padding=1) for c in range(4)]
        assert torch.allclose(
            sum(per_channel) + conv4.bias.view(1, -1, 1, 1, 1), conv1(x), atol=1e-5
        )
        assert torch.allclose(four(x4), one(x), atol=1e-4)


def test_adapt_input_conv_other_directions() -> None:
    weight = torch.randn(5, 3, 3, 3, 3)
    assert torch.allclose(adapt_input_conv(weight, 1), weight.sum(1, keepdim=True))
    four = adapt_input_conv(weight, 4)
    assert four.shape == (5, 4, 3, 3, 3)
    assert torch.allclose(four[:, 3], weight[:, 0] * 0.75)


def write_keras_h5(
    path: Path, layers: dict[str, dict[str, np.ndarray]], full_model: bool = True
) -> None:
    """Keras 2 HDF5 layout: <root>/<layer>/<layer>/<weight>:0, with name attributes."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        if full_model:  # model.save() also stores the architecture, BN epsilons included
            bn = [{"class_name": "BatchNormalization", "config": {"epsilon": 0.001}}]
            f.attrs["model_config"] = json.dumps({"config": {"layers": bn}}).encode()
        root = f.create_group("model_weights") if full_model else f
        names = ["input_1", *layers, "max_pooling3d_1"]
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = root.create_group(name)
            weights = layers.get(name, {})
            group.attrs["weight_names"] = np.array([f"{name}/{w}:0".encode() for w in weights])
            for w, array in weights.items():
                group.create_dataset(f"{name}/{w}:0", data=array)


def keras_unet_layers(
    width: int, rng: np.random.Generator, decoder: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    channels = [(1, width), (width, 2 * width)]
    for level in range(1, 4):
        c = width * 2**level
        channels += [(c, c), (c, 2 * c)]
    if decoder:  # concat [up, skip] -> skip channels, twice (method.md §4.2)
        for skip in (8 * width, 4 * width, 2 * width):
            channels += [(skip * 3, skip), (skip, skip)]
    layers = {}
    for i, (cin, cout) in enumerate(channels):
        layers[f"depth_{i}_conv"] = {
            "kernel": rng.normal(size=(3, 3, 3, cin, cout)),
            "bias": rng.normal(size=cout),
        }
        layers[f"depth_{i}_bn"] = {
            "gamma": rng.uniform(0.5, 2, cout),
            "beta": rng.normal(size=cout),
            "moving_mean": rng.normal(size=cout),
            "moving_variance": rng.uniform(0.5, 2, cout),
        }
    if decoder:
        layers["final_conv"] = {
            "kernel": rng.normal(size=(1, 1, 1, 2 * width, 1)),
            "bias": rng.normal(size=1),
        }
    return {k: {w: a.astype(np.float32) for w, a in v.items()} for k, v in layers.items()}


def test_keras_h5_loads_into_the_encoder(tmp_path: Path) -> None:
    layers = keras_unet_layers(8, np.random.default_rng(0))
    layers["dense_7"] = {"kernel": np.zeros((4, 2), np.float32)}
    path = tmp_path / "Genesis_Chest_CT.h5"
    write_keras_h5(path, layers)
    model = create_model("encoder3d", width=8, n_classes=0)
    report = load_weights(model, path, strict=True)
    assert len(report.matched) == 8 * 2 + 8 * 5
    assert report.dropped == [("dense_7", "Keras layer with no PyTorch counterpart")]
    assert any("eps 0.001 vs PyTorch 1e-5" in note for note in report.notes)
    kernel = layers["depth_3_conv"]["kernel"]  # (kx, ky, kz, in, out)
    weight = model.down_tr128.ops[1].conv1.weight  # (out, in, kx, ky, kz)
    assert weight.shape == (32, 16, 3, 3, 3)
    assert weight[5, 2, 0, 1, 2] == torch.tensor(kernel[0, 1, 2, 2, 5])
    assert torch.equal(weight, torch.from_numpy(kernel).permute(4, 3, 0, 1, 2))
    bn = model.down_tr512.ops[0].bn1
    assert torch.equal(bn.weight, torch.from_numpy(layers["depth_6_bn"]["gamma"]))
    assert torch.equal(bn.running_var, torch.from_numpy(layers["depth_6_bn"]["moving_variance"]))
    assert torch.equal(bn.running_mean, torch.from_numpy(layers["depth_6_bn"]["moving_mean"]))


def test_keras_save_weights_layout_with_decoder_is_a_full_unet(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    write_keras_h5(
        path, keras_unet_layers(4, np.random.default_rng(1), decoder=True), full_model=False
    )
    model = create_model("unet3d", width=4)
    report = load_weights(model, path, strict=True)
    assert len(report.adapted) == 6 and all("up_conv" in k for k, _ in report.adapted)
    x = torch.rand(1, 64, 2, 2, 2)
    with torch.no_grad():  # the transposed conv now equals Keras' UpSampling3D
        assert torch.equal(model.up_tr256.up_conv(x), F.interpolate(x, scale_factor=2))


def test_keras_ynet_head_maps_to_the_keras_head(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    layers = keras_unet_layers(4, rng)
    wider = keras_unet_layers(8, rng)  # its depth_6 block is 64 -> 64, as Keras' head at width 4
    layers["depth_14_conv"], layers["depth_14_bn"] = wider["depth_6_conv"], wider["depth_6_bn"]
    layers["cls_fc"] = {
        "kernel": rng.normal(size=(64, 128)).astype(np.float32),
        "bias": np.zeros(128, np.float32),
    }
    layers["cls_output"] = {
        "kernel": rng.normal(size=(128, 5)).astype(np.float32),
        "bias": np.ones(5, np.float32),
    }
    path = tmp_path / "ynet.h5"
    write_keras_h5(path, layers)
    model = create_model("encoder3d", width=4, n_classes=5, head="keras")
    report = load_weights(model, path, strict=True)
    assert len(report.matched) == 56 + 7 + 4
    fc2 = torch.from_numpy(layers["cls_output"]["kernel"]).T
    assert torch.equal(model.clc_out.fc2.weight, fc2)
    # the reference PyTorch head has other shapes: its keys are dropped, never half-loaded
    report = load_weights(create_model("encoder3d", width=4, n_classes=5), path)
    head_keys = {k for k in layers_to_keys(layers) if k.startswith("clc_out.")}
    assert len(head_keys) == 11
    assert {k for k, _ in report.dropped} == head_keys and not report.matched[56:]
    assert all(k.startswith("clc_out.") for k in report.missing)


def layers_to_keys(layers: dict[str, dict[str, np.ndarray]]) -> set[str]:
    from semantic_genesis.models.keras import keras_layer_map

    names = {
        "kernel": "weight",
        "bias": "bias",
        "gamma": "weight",
        "beta": "bias",
        "moving_mean": "running_mean",
        "moving_variance": "running_var",
    }
    keys = {f"{keras_layer_map()[layer]}.{names[w]}" for layer, ws in layers.items() for w in ws}
    return keys | {
        k.replace("running_var", "num_batches_tracked") for k in keys if k.endswith("running_var")
    }


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {shlex.quote(str(marker))}",)

    zipped, legacy = tmp_path / "evil.pt", tmp_path / "evil_legacy.pt"
    torch.save({"state_dict": ynet_state(width=4), "trap": Payload()}, zipped)
    with open(legacy, "wb") as fh:
        pickle.dump({"state_dict": {}, "trap": Payload()}, fh, protocol=2)
    for path in (zipped, legacy):
        with pytest.raises(SemgenError, match="refused: the file needs arbitrary Python") as err:
            load_weights(create_model("ynet3d", width=4), path)
        assert "posix.system" in str(err.value) and str(path) in str(err.value)
        with pytest.raises(SemgenError, match="could run code"):
            create_model("unet3d", width=4, pretrained=path)
    assert not marker.exists()


def test_unreadable_sources_are_one_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    fake_h5 = tmp_path / "fake.h5"
    fake_h5.write_bytes(b"nope")
    empty_h5 = tmp_path / "empty.h5"
    h5py.File(empty_h5, "w").close()
    model = create_model("unet3d", width=4)
    for path, message in [
        (garbage, "not a PyTorch/Keras checkpoint: the file holds text"),
        (fake_h5, "not a readable HDF5"),
        (empty_h5, "no Keras layers"),
        (tmp_path / "missing.pt", "not found"),
    ]:
        with pytest.raises(SemgenError, match=message) as err:
            load_weights(model, path)
        assert str(path) in str(err.value)
    save_checkpoint({"epoch": 3}, tmp_path / "no_weights.pt")
    with pytest.raises(SemgenError, match="no weights found"):
        load_weights(model, tmp_path / "no_weights.pt")


def test_guess_model_kwargs_from_keys() -> None:
    assert guess_model_kwargs(ynet_state(width=8, n_classes=7)) == {
        "name": "ynet3d",
        "width": 8,
        "in_channels": 1,
        "norm": "batch",
        "out_channels": 1,
        "head": "torch",
        "n_classes": 7,
    }
    enc = create_model("encoder3d", width=4, n_classes=3, head="mlp", in_channels=2)
    assert guess_model_kwargs(enc.state_dict()) == {
        "name": "encoder3d",
        "width": 4,
        "in_channels": 2,
        "norm": "batch",
        "head": "mlp",
        "n_classes": 3,
    }
    with pytest.raises(SemgenError, match="cannot tell the architecture"):
        guess_model_kwargs({"fc.weight": torch.zeros(1)})


def test_wrapped_models_load_through_the_inner_model(tmp_path: Path) -> None:
    state = ynet_state(width=4, n_classes=2)
    wrapped = torch.nn.DataParallel(create_model("ynet3d", width=4, n_classes=2))
    assert load_weights(wrapped, {f"module.{k}": v for k, v in state.items()}, strict=True).ok
    assert torch.equal(wrapped.module.clc_out.fc1.weight, state["clc_out.fc1.weight"])
    saved = torch.load(save_model(tmp_path / "w.pt", wrapped), weights_only=True)
    assert list(saved["state_dict"]) == list(state)  # no "module." prefix
    assert saved["model_card"]["architecture"] == "ynet3d"
