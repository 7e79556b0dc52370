"""Small shared helpers: errors, atomic files, configs, seeding, distributed ranks, progress."""

from semantic_genesis.utils.atomic import (
    atomic_path,
    atomic_write_text,
    save_npy_atomic,
    write_json,
)
from semantic_genesis.utils.config import load_config, save_config, to_dict
from semantic_genesis.utils.dist import is_main, rank, shard, world_size
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress
from semantic_genesis.utils.seed import derive_rng, seed_everything

__all__ = [
    "SemgenError",
    "atomic_path",
    "atomic_write_text",
    "derive_rng",
    "is_main",
    "load_config",
    "progress",
    "rank",
    "save_config",
    "save_npy_atomic",
    "seed_everything",
    "shard",
    "to_dict",
    "world_size",
    "write_json",
]
