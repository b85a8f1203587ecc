"""The replay buffer's ring order and the episode boundaries it recovers for risk labels."""

from __future__ import annotations

import numpy as np
import torch

from alam_control.learn.buffer import ReplayBuffer


def fill(buffer: ReplayBuffer, episodes: list[int], terminate_last: bool = False) -> None:
    """Episodes of the given lengths; observation = a global step counter, so consecutive steps chain."""
    t = 0
    for e, length in enumerate(episodes):
        obs = np.array([1000.0 * e])
        for k in range(length):
            nxt = obs + 1.0
            term = terminate_last and k == length - 1
            buffer.add(obs, np.zeros(1), 0.0, float(t % 3 == 0), nxt, term)
            obs, t = nxt, t + 1


def test_recent_returns_chronological_order_and_episode_ends_across_the_wrap() -> None:
    buffer = ReplayBuffer(capacity=5, obs_dim=1, act_dim=1)
    fill(buffer, [3, 4])  # 7 transitions in a ring of 5: the first two are overwritten
    obs, cost, ends = buffer.recent(5)
    assert obs[:, 0].tolist() == [2.0, 1000.0, 1001.0, 1002.0, 1003.0]
    assert cost.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]  # t = 2..6
    # Step 2 ends episode 0 (its next_obs 3 is not the next obs 1000); the newest is censored, so an end too.
    assert ends.tolist() == [True, False, False, False, True]
    assert isinstance(obs, torch.Tensor)


def test_recent_marks_terminations_and_caps_at_the_size() -> None:
    buffer = ReplayBuffer(capacity=10, obs_dim=1, act_dim=1)
    fill(buffer, [2, 2], terminate_last=True)
    obs, _, ends = buffer.recent(100)
    assert len(obs) == 4
    assert ends.tolist() == [False, True, False, True]
