"""A job's states and kinds (no SQLAlchemy import: the CLI's parser reads them)."""

PENDING, RUNNING, FINISHED, FAILED, CANCELLED = "PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"
STATUSES = (PENDING, RUNNING, FINISHED, FAILED, CANCELLED)
DONE = (FINISHED, FAILED, CANCELLED)
KINDS = ("eval", "build-engine")   # "train" is planned: the table needs no change for it
DEFAULT_MAX_ATTEMPTS = 3   # a job whose worker dies this often is FAILED
