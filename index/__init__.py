"""index: the ingestion side. Load files, chunk them, embed them, and keep them in an index folder."""
