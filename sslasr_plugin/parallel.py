"""This process's place among fairseq's data-parallel ranks, the one helper every module asks."""
from typing import Tuple

import torch


def rank_and_world() -> Tuple[int, int]:
    """(data-parallel rank, data-parallel world size); (0, 1) when not distributed."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0, 1
    from fairseq.distributed import utils as distributed_utils

    return distributed_utils.get_data_parallel_rank(), distributed_utils.get_data_parallel_world_size()
