import pytest

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._errors import UserError


@pytest.mark.parametrize(
    ("global_size", "micro", "world", "expected"),
    [(32, None, 1, (32, 1)), (32, 8, 1, (8, 4)), (32, 16, 2, (16, 1)), (32, 8, 2, (8, 2)), (32, None, 4, (8, 1))],
)
def test_accumulation_is_derived(global_size, micro, world, expected):
    layout = BatchLayout.resolve(global_size, micro, world)
    assert (layout.micro_batch_size, layout.accumulate_grad_batches) == expected
    assert layout.micro_batch_size * layout.accumulate_grad_batches * layout.world_size == global_size


def test_indivisible_sizes_name_all_three_numbers():
    with pytest.raises(UserError) as err:
        BatchLayout.resolve(30, 8, 2)
    message = str(err.value)
    assert "data.global_batch_size=30" in message and "micro_batch_size=8" in message and "devices=2" in message


def test_global_batch_not_divisible_by_devices():
    with pytest.raises(UserError, match="not divisible by the 4 devices"):
        BatchLayout.resolve(30, None, 4)


def test_contradicting_accumulation_is_refused():
    with pytest.raises(UserError, match=r"accumulate_grad_batches=3 contradicts.*= 4"):
        BatchLayout.resolve(32, 8, 1, accumulate_grad_batches=3)
    assert BatchLayout.resolve(32, 8, 1, accumulate_grad_batches=4).accumulate_grad_batches == 4


@pytest.mark.parametrize("bad", [0, -4, 2.5, "32"])
def test_non_positive_sizes(bad):
    with pytest.raises(UserError, match="positive integer"):
        BatchLayout.resolve(bad, None, 1)
    with pytest.raises(UserError, match="positive integer"):
        BatchLayout.resolve(32, bad, 1)


def test_describe_mentions_every_factor():
    assert BatchLayout.resolve(32, 8, 2).describe() == "global batch 32 = micro 8 x accumulate 2 x 2 device(s)"
