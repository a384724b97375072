"""Where a model runs, said out loud: ``--device auto|cpu|gpu`` and each engine's device line (issue 35)."""

from __future__ import annotations

import pytest

from RMBG.runtime.device import DeviceError, keras_device_line, onnx_providers

CPU = "CPUExecutionProvider"


@pytest.mark.parametrize("available, device, expected", [
    ([ "CUDAExecutionProvider", CPU], "auto", ["CUDAExecutionProvider", CPU]),
    ([CPU], "auto", [CPU]),
    (["CUDAExecutionProvider", CPU], "cpu", [CPU]),
    (["CoreMLExecutionProvider", "ROCMExecutionProvider", CPU], "gpu", ["ROCMExecutionProvider", CPU]),
    (["DmlExecutionProvider", "CUDAExecutionProvider", CPU], "auto", ["CUDAExecutionProvider", CPU]),
    (["AzureExecutionProvider", "CoreMLExecutionProvider", CPU], "gpu", ["CoreMLExecutionProvider", CPU]),
])
def test_onnx_providers_prefer_the_installed_accelerator(available, device, expected):
    assert onnx_providers(device, available) == expected


def test_onnx_gpu_without_an_accelerated_provider_is_an_error_naming_the_fix():
    with pytest.raises(DeviceError, match="--device gpu.*onnxruntime-gpu"):
        onnx_providers("gpu", ["AzureExecutionProvider", CPU])
    with pytest.raises(DeviceError, match="choose one of auto, cpu, gpu"):
        onnx_providers("tpu", [CPU])


def test_keras_line_names_backend_and_device():
    assert keras_device_line("auto", gpus=["NVIDIA H100 80GB HBM3"]).endswith("on GPU 0: NVIDIA H100 80GB HBM3")
    assert keras_device_line("auto", gpus=[]) == "keras tensorflow on CPU"
    with pytest.raises(DeviceError, match="--device gpu: keras tensorflow sees no GPU"):
        keras_device_line("gpu", gpus=[])


def test_each_engine_says_what_runs_it(model_path, peer_onnx):
    from RMBG.runtime.engines import load_segmenter

    assert load_segmenter(model_path, runtime="tflite-int8").device_line == "LiteRT int8 on CPU, 2 threads"
    assert load_segmenter(model_path, runtime="tflite").device_line == "LiteRT fp32 on CPU, 2 threads"
    assert load_segmenter(peer_onnx, peer=True, device="cpu").device_line == f"onnxruntime {CPU}"


def test_remove_prints_the_device_once_and_refuses_gpu_here(tmp_path, shared_data, capsys):
    from RMBG.commands.remove import main as remove_main

    photo = sorted((shared_data / "people" / "images").glob("*.jpg"))[0]
    assert remove_main([str(photo), "--out", str(tmp_path / "ok")]) == 0
    err = capsys.readouterr().err
    assert err.count("remove: model on LiteRT int8 on CPU, 2 threads") == 1
    assert remove_main([str(photo), "--out", str(tmp_path / "gpu"), "--device", "gpu"]) == 2
    assert "--device gpu" in capsys.readouterr().err
    assert not (tmp_path / "gpu").exists()
    assert remove_main([str(photo), "--out", str(tmp_path / "gpu"), "--device", "gpu", "--runtime", "keras"]) == 2
    assert "sees no GPU" in capsys.readouterr().err and not (tmp_path / "gpu").exists()


def test_evaluate_prints_each_model_s_device_and_records_it(tmp_path, shared_data, peer_onnx, capsys):
    import json

    from shared_sets import link_pairs, pairs

    from RMBG.commands.evaluate import main as evaluate_main

    data = link_pairs(pairs(shared_data / "ecssd", 2), tmp_path / "data")
    assert evaluate_main(["--data", str(data), "--peer", str(peer_onnx), "--out", str(tmp_path / "r"),
                          "--gallery", "0", "--device", "cpu"]) == 0
    assert f"evaluate: model on onnxruntime {CPU}" in capsys.readouterr().err
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["models"][0]["device"] == f"onnxruntime {CPU}"
    assert evaluate_main(["--data", str(data), "--peer", str(peer_onnx), "--out", str(tmp_path / "g"),
                          "--device", "gpu"]) == 2
    assert "onnxruntime-gpu" in capsys.readouterr().err and not (tmp_path / "g").exists()


def test_train_refuses_gpu_here_before_touching_anything(tmp_path, shared_data, capsys):
    from shared_sets import link_pairs, pairs

    from RMBG.commands.train import main as train_main

    data = link_pairs(pairs(shared_data / "ecssd", 4), tmp_path / "data")
    out = tmp_path / "run"
    assert train_main(["--preset", "sample", "--data", str(data), "--out", str(out), "--device", "gpu"]) == 2
    assert "--device gpu: keras tensorflow sees no GPU" in capsys.readouterr().err
    assert not out.exists()
