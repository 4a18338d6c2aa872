"""lift3d.optim.Adam: the same numbers as torch.optim.Adam, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lift3d.optim import Adam


def _run(opt_cls, dtype, steps=25):
    torch.manual_seed(0)
    a = torch.randn(40, 3, dtype=dtype, requires_grad=True)
    b = torch.randn(7, dtype=dtype, requires_grad=True)
    c = torch.randn(2, dtype=dtype, requires_grad=True)
    opt = opt_cls([{"params": [a], "lr": 0.02}, {"params": [b, c], "lr": 0.005, "betas": (0.8, 0.99)}], eps=1e-6)
    target = torch.linspace(-1.0, 1.0, 120, dtype=dtype).reshape(40, 3)
    for i in range(steps):
        opt.zero_grad()
        loss = ((a - target) ** 2).sum() + (b.sin() * 3).sum() + (c ** 4).sum() * (i % 3 > 0)
        loss.backward()
        if i % 3 == 0:
            c.grad = None  # a parameter without a gradient this step is left alone
        opt.step()
    return a.detach(), b.detach(), c.detach()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_matches_torch_bit_for_bit(dtype):
    for mine, ref in zip(_run(Adam, dtype), _run(torch.optim.Adam, dtype)):
        assert torch.equal(mine, ref)


def test_plain_parameter_list_and_bad_settings():
    x = torch.ones(3, requires_grad=True)
    opt = Adam([x], lr=0.1)
    (x * 2).sum().backward()
    opt.step()
    assert torch.allclose(x, torch.full((3,), 0.9))
    opt.zero_grad()
    assert x.grad is None
    with pytest.raises(ValueError):
        Adam([x], lr=-1.0)
    with pytest.raises(ValueError):
        Adam([])


def test_adam_does_not_import_dynamo():
    code = ("import sys, torch; from lift3d.optim import Adam\n"
            "x = torch.ones(3, requires_grad=True); o = Adam([x]); (x * x).sum().backward(); o.step()\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
