"""Tasks, one subpackage each, named by the Hugging Face pipeline id (``text_classification``, …).

Importing this package imports every subpackage, whose ``__init__`` registers its task in
``hub.registries.TASKS``: adding a task is adding a folder. What a task must provide is the
contract in :mod:`hub.task_spec`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")
