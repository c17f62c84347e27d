"""What serves visitors' pages, in one place: the published widget and its per-process cache
(``cache``), the widget config the loader asks for (``config``: ``GET /v1/embed/{pk}/config``),
the loader's scripts and the framed page (``loader``). The domains' visitor routes (the
session mint, events, the chat runtime) keep their handlers in their own packages."""
