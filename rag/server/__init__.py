"""Servers for other apps: the HTTP API (``rag serve``) and the MCP server (``rag mcp``), both over ``rag.service``."""
