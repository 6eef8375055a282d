import pytest

from trainsentry.producers.save_config import SaveConfig, SavePlan


def saved(config: SaveConfig, steps: range, mode: str = "TRAIN") -> list[int]:
    return [s for s in steps if config.should_save(s, mode)]


def test_interval_counts_from_step_zero_like_sagemaker() -> None:
    assert saved(SaveConfig(save_interval=4), range(13)) == [0, 4, 8, 12]
    # start_step bounds the range; the multiples are of the step itself, not of step - start
    assert saved(SaveConfig(save_interval=4, start_step=3), range(13)) == [4, 8, 12]


def test_end_step_is_exclusive_and_explicit_steps_are_always_saved() -> None:
    config = SaveConfig(save_interval=5, end_step=10, save_steps=frozenset({7, 42}))
    assert saved(config, range(50)) == [0, 5, 7, 42]


def test_a_mode_can_have_its_own_config() -> None:
    config = SaveConfig(save_interval=100, modes={"EVAL": SaveConfig(save_interval=2)})
    assert saved(config, range(6), "EVAL") == [0, 2, 4]
    assert saved(config, range(6), "TRAIN") == [0]


def test_a_tensor_is_saved_when_any_of_its_collections_saves_the_step() -> None:
    plan = SavePlan(SaveConfig(save_interval=10), {"losses": SaveConfig(save_interval=1),
                                                   "weights": SaveConfig(save_interval=5)})
    assert plan.should_save(3, "TRAIN", ("losses",))
    assert not plan.should_save(3, "TRAIN", ("weights",))
    assert plan.should_save(3, "TRAIN", ("weights", "losses"))
    assert plan.should_save(10, "TRAIN", ("custom",))  # unconfigured: the default
    assert not plan.should_save(5, "TRAIN", ())
    assert plan.should_save(5, "TRAIN", ("weights",))


@pytest.mark.parametrize("kwargs", [dict(save_interval=0), dict(start_step=-1),
                                    dict(start_step=5, end_step=2), dict(modes={"TRAINING": SaveConfig()})])
def test_invalid_configs_fail_at_once(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SaveConfig(**kwargs)
