"""The tenant dashboard (``admin-ui/``), built into ``dist/`` and served at ``/admin/``."""
