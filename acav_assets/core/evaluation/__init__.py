"""Quality evaluation: the correspondence-retrieval benchmark."""
