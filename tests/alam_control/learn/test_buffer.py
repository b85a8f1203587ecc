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


def test_restoring_a_wrapped_ring_into_a_larger_capacity_keeps_every_transition_in_order() -> None:
    # A resume that raises train.total_steps restores a full ring of the old size into a bigger buffer.
    small = ReplayBuffer(capacity=5, obs_dim=1, act_dim=1)
    fill(small, [7])  # obs 0..6: slots hold [5, 6, 2, 3, 4], ptr 2
    big = ReplayBuffer(capacity=8, obs_dim=1, act_dim=1)
    big.load_state_dict(small.state_dict())
    assert big.observations()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    big.add(np.array([7.0]), np.zeros(1), 0.0, 0.0, np.array([8.0]), False)
    assert big.observations()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert big.recent(6)[0][:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_restoring_into_the_same_capacity_keeps_the_slots() -> None:
    # Bit-exact resume: sampled indices must address the same transitions as before the checkpoint.
    ring = ReplayBuffer(capacity=5, obs_dim=1, act_dim=1)
    fill(ring, [7])
    again = ReplayBuffer(capacity=5, obs_dim=1, act_dim=1)
    again.load_state_dict(ring.state_dict())
    assert again.observations()[:, 0].tolist() == [5.0, 6.0, 2.0, 3.0, 4.0] and again.ptr == ring.ptr == 2
