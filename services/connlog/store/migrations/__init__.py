"""Versioned SQL migrations, applied in file-name order by ``connlog db migrate``."""
