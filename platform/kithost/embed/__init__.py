"""What the loader asks for: the published widget config (``GET /v1/embed/{pk}/config``),
its cache in each process, and the origin check every visitor route shares."""
