"""Training and evaluation of the DiSRT-In-Bed denoiser (SPEC §4-§6).

>>> from disrt_core.train import Trainer, load_config
>>> config = load_config("config/train_synth.yaml", ["stages.synth.epochs=3"])
>>> Trainer(config).fit()              # stages, checkpoints, logs in config.run.out_dir

Modules: :mod:`~disrt_core.train.config` (YAML schema), :mod:`~disrt_core.train.schedules`
(learning-rate schedules), :mod:`~disrt_core.train.data` (sources -> batches, DDP slices,
generator pools), :mod:`~disrt_core.train.trainer` (the loop), :mod:`~disrt_core.train.state`
(resume states), :mod:`~disrt_core.train.evaluation` (metrics tables),
:mod:`~disrt_core.train.sweep` (the Table 1 protocol).
"""

from disrt_core.train.config import ConfigError, TrainConfig, load_config, smoke_config

__all__ = ["ConfigError", "TrainConfig", "Trainer", "load_config", "smoke_config"]


def __getattr__(name: str):
    if name == "Trainer":  # keep `import disrt_core.train.config` light
        from disrt_core.train.trainer import Trainer

        return Trainer
    raise AttributeError(name)
