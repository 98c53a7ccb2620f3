"""Text classification (pipeline id ``text-classification``): config, checks, data, train, predict."""

from hub.task_spec import TaskSpec
from tasks.text_classification.config import TrainConfig


def _train(cfg, store, **options):
    from tasks.text_classification.train import train

    return train(cfg, store, **options)


def _check(cfg):
    from tasks.text_classification.checks import check_run

    return check_run(cfg)


def _load_predictor(store, record, **options):
    from tasks.text_classification.predict import load_predictor

    return load_predictor(store, record, **options)


TASK = TaskSpec(name="text-classification", train_config=TrainConfig, train=_train,
                load_predictor=_load_predictor, check=_check)
