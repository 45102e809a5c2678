"""The torch adapter: lazy import, device availability, and error classification on real torch errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradspec import contracts
from gradspec.adapters import torch_adapter
from gradspec.adapters.torch_adapter import TorchAdapter

from .conftest import CASES

torch = pytest.importorskip("torch")


def test_missing_torch_is_a_reason_not_an_import_error(monkeypatch):
    monkeypatch.setattr(torch_adapter, "torch", None)
    assert "torch is not installed" in TorchAdapter.unavailable_reason()
    assert TorchAdapter.version() == "not installed"


def test_cuda_availability_follows_torch():
    reason = TorchAdapter.device_unavailable_reason("cuda")
    assert (reason is None) == torch.cuda.is_available()
    assert TorchAdapter.device_unavailable_reason("cpu") is None


def test_unknown_messages_are_unclassified():
    adapter = TorchAdapter("cpu", "float64")
    assert adapter.classify(RuntimeError("something else entirely")) is None
    assert adapter.classify(ValueError("Trying to backward through the graph a second time")) is None


def test_observed_values_are_copies():
    adapter = TorchAdapter("cpu", "float64")
    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    seen = adapter.to_numpy(t)
    t.add_(1)
    assert seen.tolist() == [1.0, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_tensors_live_on_the_gpu_and_read_back():

    adapter = TorchAdapter("cuda", "float32")
    t = adapter.tensor(np.array([1.0, 2.0]), True, "float32")
    assert t.device.type == "cuda" and adapter.like(np.array([3.0, 4.0]), t).device.type == "cuda"
    assert adapter.to_numpy(t).tolist() == [1.0, 2.0]


def test_capabilities_leave_out_what_the_installed_torch_lacks(monkeypatch):
    """torch before 2.1: no materialize_grads, no post-accumulate-grad hooks (spec/versions.yaml)."""
    from types import SimpleNamespace

    old = SimpleNamespace(autograd=SimpleNamespace(grad=lambda outputs, inputs, grad_outputs=None: None), Tensor=object)
    monkeypatch.setattr(torch_adapter, "torch", old)
    lacking = set(contracts.capabilities()) - torch_adapter.installed_capabilities()
    assert lacking == {"materialize_grads", "post_accumulate_grad_hooks", "saved_hooks_version_check"}


def test_results_are_read_as_a_user_reads_them_with_no_repair():
    """An efficient zero tensor that escapes to the user cannot be read with .numpy(): the adapter does not repair
    it (SHAPE-5), so a case reading one fails on the engine, and says why."""
    adapter = TorchAdapter("cpu", "float64")
    zeros = torch._efficientzerotensor(3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="ZeroTensor"):
        adapter.to_numpy(zeros)
    plain = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True) * 1
    assert adapter.to_numpy(plain).tolist() == [1.5, -2.0]


def test_a_result_the_engine_cannot_read_fails_the_case_on_the_engine():
    from gradspec.language.loader import load_case
    from gradspec.running.interpreter import FAILED, run_case

    outcome = run_case(load_case(CASES / "higher_order" / "zero-second-derivative-is-readable.yaml"),
                       TorchAdapter("cpu", "float64"))
    assert outcome.status == FAILED and "cannot be read as a user reads it" in outcome.report()
