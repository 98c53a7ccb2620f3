"""The `train` section of a text-classification run config: the shared loop's, as it is."""

from hub.train_config import TrainConfig

__all__ = ["TrainConfig"]
