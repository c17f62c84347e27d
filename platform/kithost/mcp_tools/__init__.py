"""Widgets' ``mcp`` tools: their secrets (write-only) and listing a server's tools."""
