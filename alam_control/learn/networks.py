"""Networks: squashed-Gaussian actor, a batched critic ensemble (twin Q + cost Q), the multiplier network.

Shapes: ``B`` batch, ``O`` observation size, ``A`` action size, ``H`` critic heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG2 = math.log(2.0)


def full_precision(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``layer(x)`` in float32 even inside a reduced-precision autocast region.

    The agent may run an update under bf16 autocast (``train.precision``); hidden layers then run in bf16, but an
    output layer stays float32: a Q value of ~100 in bf16 has a spacing of 0.5, coarser than the TD errors the
    critic learns from, and log-std / logits feed exponentials.
    """
    if not torch.is_autocast_enabled(x.device.type):  # acting, evaluation, export, a float32 update: no context
        return layer(x)
    if x.dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    with torch.autocast(x.device.type, enabled=False):
        return layer(x)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """ReLU MLP ``in_dim -> hidden... -> out_dim`` (no output activation)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ObsNormalizer(nn.Module):
    """Fixed affine observation normalization ``(obs - mean) / std``, clipped to +-clip.

    Statistics are frozen once (from the warm-up data) rather than updated online, so the networks see a
    stationary input distribution and the export can bake the same affine map into the graph.
    """

    def __init__(self, obs_dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def fit(self, obs: Tensor, min_std: float = 0.1) -> None:
        """Set statistics from ``obs`` ``[N, O]``; ``min_std`` keeps near-constant inputs from exploding."""
        self.mean.copy_(obs.mean(dim=0))
        self.std.copy_(obs.std(dim=0).clamp(min=min_std))

    def forward(self, obs: Tensor) -> Tensor:
        return ((obs - self.mean) / self.std).clamp(-self.clip, self.clip)


class Actor(nn.Module):
    """Squashed-Gaussian policy: a = tanh(mu + sigma * eps), actions in [-1, 1]^A."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], log_std_bounds: tuple[float, float]):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(obs_dim, width), nn.ReLU()]
            obs_dim = width
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(obs_dim, 2 * act_dim)
        self.log_std_min, self.log_std_max = log_std_bounds

    def _dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_std = full_precision(self.head, self.trunk(obs)).chunk(2, dim=-1)
        # Smooth squashing of log_std into its bounds keeps gradients alive at the edges (unlike a hard clamp).
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1.0)
        return mu, log_std

    def forward(self, obs: Tensor) -> Tensor:
        """Deterministic action tanh(mu): ``[B, O] -> [B, A]``."""
        mu, _ = self._dist_params(obs)
        return torch.tanh(mu)

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None, eps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised sample and its log-probability: ``[B, O] -> ([B, A], [B])``.

        Args:
            eps: the standard-normal noise ``[B, A]``; drawn from ``generator`` when None. The update passes it in,
                so that no RNG call sits inside a compiled graph.
        """
        mu, log_std = self._dist_params(obs)
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        u = mu + log_std.exp() * eps
        # log N(u; mu, std) minus the tanh Jacobian log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stably.
        logp = (-0.5 * eps.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2.0 * (LOG2 - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), logp


class CriticEnsemble(nn.Module):
    """``H`` independent MLP heads Q_h(s, a) evaluated as one batched matmul per layer.

    Heads 0 and 1 are the reward twins; head 2 (when present) is the cost critic Q_c. One ``baddbmm`` per layer
    for all heads replaces H separate small matmuls and their Python overhead in the hot loop.
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], heads: int):
        super().__init__()
        self.heads = heads
        dims = (in_dim, *hidden, 1)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default init, per head
            self.weights.append(nn.Parameter(torch.empty(heads, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(heads, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, obs: Tensor, act: Tensor, detach_params: bool = False) -> Tensor:
        """Q values of every head: ``([B, O], [B, A]) -> [H, B]``.

        Args:
            detach_params: evaluate with detached weights, so the actor's loss sends gradients to the action
                only and no time is spent on critic weight gradients that would be thrown away.
        """
        x = torch.cat([obs, act], dim=-1).expand(self.heads, -1, -1)
        params = list(zip(self.weights, self.biases, strict=True))
        if detach_params:
            params = [(w.detach(), b.detach()) for w, b in params]
        for w, b in params[:-1]:
            x = F.relu(torch.baddbmm(b, x, w))
        w, b = params[-1]
        return full_precision(lambda h: torch.baddbmm(b, h, w), x).squeeze(-1)


class MultiplierNet(nn.Module):
    """lambda_phi(s) = lambda_max * sigmoid(MLP(s)), in [0, lambda_max] by construction.

    A clip of the regression target alone does not bound the network (a softplus head measured 10.1-10.7 at a
    cap of 10); the sigmoid does, for every update rule (regression or dual ascent). A negative output bias makes
    lambda start near 0.
    """

    def __init__(self, obs_dim: int, hidden: tuple[int, ...], init_bias: float, lambda_max: float):
        super().__init__()
        self.lambda_max = float(lambda_max)
        self.net = mlp(obs_dim, hidden, 1)
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.constant_(last.bias, init_bias)

    def logits(self, obs: Tensor) -> Tensor:
        """The pre-sigmoid output z, lambda = lambda_max * sigmoid(z): ``[B, O] -> [B]``."""
        *hidden, head = self.net  # not self.net[:-1]: slicing builds a new Sequential on every call (~12 us)
        for layer in hidden:
            obs = layer(obs)
        return full_precision(head, obs).squeeze(-1)

    def forward(self, obs: Tensor) -> Tensor:
        """``[B, O] -> [B]``."""
        return self.lambda_max * torch.sigmoid(self.logits(obs))
