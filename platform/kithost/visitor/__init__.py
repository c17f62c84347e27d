"""What serves visitors' pages, in one place: the published widget and its per-process cache
(``cache``), the origin check, CORS answers and :func:`~kithost.visitor.routes.visitor_route`
with the fast route class (``routes``), the widget config the loader asks for (``config``:
``GET /v1/embed/{pk}/config``), the loader's scripts and the framed page (``loader``). The
domains' visitor routes (the session mint, events, the chat runtime) keep their handlers in
their own packages and register them through ``visitor_route``."""
