"""Adam without ``torch.optim``: the same updates, without importing ``torch._dynamo``.

``torch.optim``'s optimisers import ``torch._dynamo`` when they are built and
on their first ``step()`` (their methods are wrapped to disable compilation),
which costs seconds on a cold process and buys nothing here: lift3d never
compiles a graph. :class:`Adam` implements the plain Adam of Kingma and Ba
with exactly the arithmetic of torch's single-tensor implementation (the one
torch uses for CPU tensors), so a switch from ``torch.optim.Adam`` changes no
result: the tests check bit-for-bit agreement.

Supported: parameter groups (``{"params": [...], "lr": ...}``), ``lr``,
``betas``, ``eps``, ``zero_grad``, ``step``; not supported: weight decay,
AMSGrad, closures, state dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam over tensors or parameter groups, as ``torch.optim.Adam(params, lr, betas, eps)``."""

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if lr < 0.0 or eps < 0.0 or not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}")
        self.defaults = {"lr": lr, "betas": tuple(betas), "eps": eps}
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            group = {**self.defaults, **group}
            group["params"] = [group["params"]] if isinstance(group["params"], torch.Tensor) \
                else list(group["params"])
            self.param_groups.append(group)
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (to None by default, as torch does)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {
                        "step": 0.0,
                        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                    }
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1.0  # a float, as torch's step tensor's item()
                step = state["step"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)  # ** 0.5, as torch (not sqrt)
                p.addcdiv_(exp_avg, denom, value=-step_size)
