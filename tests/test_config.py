"""Configuration defaults, the paper's presets, and errors that name the fix."""

import pytest

from dql.config import ConfigError, DQLConfig
from dql.presets import UnknownTaskError, paper_presets, preset_config


def test_defaults_are_the_papers():
    cfg = DQLConfig()
    assert (cfg.T, cfg.beta_schedule, cfg.discount, cfg.tau) == (5, "vp", 0.99, 0.005)
    assert (cfg.batch_size, cfg.ema_decay, cfg.ema_start_step, cfg.ema_every) == (
        256,
        0.995,
        1000,
        5,
    )
    assert (cfg.action_selection, cfg.num_action_candidates) == ("softmax", 50)
    assert cfg.effective_critic_lr == 3e-4


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("T", 0, "T >= 1"),
        ("actor_lr", 0.0, "positive learning rate"),
        ("actor_lr", -1e-4, "positive learning rate"),
        ("critic_lr", -3e-4, "positive learning rate"),
        ("eta", -0.5, "must be >= 0"),
        ("grad_norm", -1.0, "disable clipping"),
        ("beta_schedule", "sigmoid", "vp, linear, cosine"),
        ("ema_warmup", "eager", "released, synced"),
        ("action_selection", "greedy", "softmax, argmax, sample"),
    ],
)
def test_impossible_hyperparameters_are_refused_with_the_fix(field, value, fragment):
    with pytest.raises(ConfigError, match=field) as error:
        DQLConfig(**{field: value})
    assert fragment in str(error.value)


def test_replace_rejects_unknown_names():
    with pytest.raises(ConfigError, match="etta"):
        DQLConfig().replace(etta=1.0)


def test_all_20_paper_tasks_have_presets():
    presets = paper_presets()
    assert len(presets) == 20
    domains = {task.split("-")[0] for task in presets}
    assert domains == {"halfcheetah", "hopper", "walker2d", "antmaze", "pen", "kitchen"}


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        # Values read off the paper's hyperparameter table.
        ("hopper-medium-v2", dict(actor_lr=3e-4, eta=1.0, grad_norm=9.0, num_epochs=2000)),
        ("walker2d-medium-v2", dict(grad_norm=1.0, top_k=1, eval_episodes=10)),
        (
            "antmaze-medium-play-v0",
            dict(actor_lr=1e-3, eta=2.0, max_q_backup=True, reward_tune="cql_antmaze"),
        ),
        ("pen-human-v1", dict(actor_lr=3e-5, eta=0.15, reward_tune="normalize", num_epochs=1000)),
        ("kitchen-complete-v0", dict(eta=0.005, num_epochs=250, eval_episodes=100)),
    ],
)
def test_presets_carry_the_papers_values(task, expected):
    cfg = preset_config(task)
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_preset_overrides_are_validated():
    assert preset_config("hopper-medium-v2", eta=2.5).eta == 2.5
    with pytest.raises(ConfigError, match="T="):
        preset_config("hopper-medium-v2", T=0)


def test_unknown_task_suggests_close_ids_and_lists_the_known_ones():
    with pytest.raises(UnknownTaskError) as error:
        preset_config("hoper-medium-v2")
    message = str(error.value)
    assert "Did you mean hopper-medium-v2" in message
    assert "kitchen-mixed-v0" in message  # the full list follows


def test_config_round_trips_through_a_dict():
    cfg = DQLConfig(eta=0.3, critic_lr=1e-3, ema_warmup="synced")
    assert DQLConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.quirks() == {
        "ema_warmup": "synced",
        "critic_lr": "own",
        "lr_schedule": "released_cosine",
    }
