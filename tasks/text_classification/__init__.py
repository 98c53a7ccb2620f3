"""Text classification (pipeline id ``text-classification``): config, checks, data, train, predict, prune.

The task object (``task.py``) is registered here, lazily: finding the task imports nothing
heavy.
"""

from hub.registries import MODEL_TYPES, PRUNERS, TASKS

TASKS.register("text-classification", "tasks.text_classification.task:TASK")
PRUNERS.register("text-classification", "tasks.text_classification.recover:prune")
MODEL_TYPES.register("evalhub-pruned-bert", "tasks.text_classification.pruned_bert:register")
