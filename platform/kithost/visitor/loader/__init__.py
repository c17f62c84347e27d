"""The loader script (``/embed.js``) and the framed widget page (``/w/{pk}``)."""
