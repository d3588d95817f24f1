"""What every open-model backend shares: loaded once, one pipeline at a time per device, clear load errors."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from storyflow.backends.torch_models import (
    DiffusionOptions,
    TorchOptions,
    Warm,
    loading,
    model_source,
    on_device,
    resolve_device,
    resolve_dtype,
    seeded,
)
from storyflow.core.errors import BackendUnavailableError


def test_two_tasks_on_one_device_never_run_at_once_and_other_devices_do():
    active: dict[str, int] = {"cuda:0": 0, "cuda:1": 0}
    most: dict[str, int] = {"cuda:0": 0, "cuda:1": 0}
    overlap = threading.Event()
    lock = threading.Lock()

    def pipeline_call(device: str) -> None:
        with on_device(device):
            with lock:
                active[device] += 1
                most[device] = max(most[device], active[device])
                if active["cuda:0"] and active["cuda:1"]:
                    overlap.set()
            time.sleep(0.05)
            with lock:
                active[device] -= 1

    threads = [threading.Thread(target=pipeline_call, args=(device,)) for device in ["cuda:0", "cuda:1"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == {"cuda:0": 1, "cuda:1": 1}  # never two pipelines on one GPU
    assert overlap.is_set()  # but two GPUs work side by side


def test_a_model_asked_for_by_many_shots_at_once_is_loaded_once():
    warm = Warm()
    loads = []

    def load() -> object:
        loads.append(1)
        time.sleep(0.05)
        return object()

    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(warm.get(("wan", "folder"), load))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and warm.loads[("wan", "folder")] == 1 and len({id(g) for g in got}) == 1


def test_a_missing_folder_or_one_without_a_model_is_named(tmp_path):
    with pytest.raises(BackendUnavailableError) as caught:
        model_source(str(tmp_path / "nope"), "video", "wan")
    assert str(tmp_path / "nope") in caught.value.message and "--video-option model=" in caught.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailableError, match="holds no model"):
        model_source(str(tmp_path / "empty"), "video", "wan")
    assert model_source("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "video", "wan") == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


def test_loading_failures_name_the_fix(tmp_path):
    import torch

    with pytest.raises(BackendUnavailableError) as caught, loading("the video backend 'wan'", "org/model", "cpu"):
        raise OSError("org/model is not a local folder and is not a valid model identifier")
    assert "cannot load the hub id org/model" in caught.value.message and "HF_HUB_OFFLINE" in caught.value.fix
    with pytest.raises(BackendUnavailableError) as caught, loading("the video backend 'wan'", "org/model", "cuda"):
        raise torch.OutOfMemoryError("CUDA out of memory")
    assert "does not fit in memory on cuda" in caught.value.message
    assert "offload=model" in caught.value.fix and "dtype=float16" in caught.value.fix


def test_devices_and_precisions_are_checked():
    with pytest.raises(ValidationError, match="cuda:N"):
        TorchOptions(model="m", device="gpu")
    with pytest.raises(ValidationError):
        DiffusionOptions(model="m", offload="always")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto") in ("cpu", "mps")
    assert resolve_dtype("auto", "cpu") is torch.float32 and resolve_dtype("float16", "cpu") is torch.float16


def test_where_a_model_runs_is_not_part_of_what_it_makes(tmp_path):
    from storyflow.backends.registry import load_backend
    from tests.tiny_sound import build_tiny_vits

    folder = build_tiny_vits(tmp_path / "vits")
    on_cpu = load_backend("speech", "vits", {"model": str(folder), "device": "cpu"})
    anywhere = load_backend("speech", "vits", {"model": str(folder), "device": "auto"})
    assert on_cpu.identity() == anywhere.identity()  # the same cache keys: nothing is made again
    assert "device" in on_cpu.options_dict()  # ...while the catalog still records where it ran
    faster = load_backend("speech", "vits", {"model": str(folder), "speaking_rate": 2.0})
    assert faster.identity() != on_cpu.identity()


def test_seeded_calls_repeat_and_leave_the_global_generator_alone():
    import torch

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    with seeded(7, "cpu"):
        first = torch.rand(3)
    with seeded(7, "cpu"):
        second = torch.rand(3)
    assert torch.equal(first, second)
    assert torch.equal(torch.rand(1), expected_next)
