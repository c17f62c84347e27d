"""Background work: the Celery application, enqueue-after-commit, the beat schedule."""
